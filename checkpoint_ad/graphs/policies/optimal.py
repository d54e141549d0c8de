"""``optimal``: the least-cost graph plan under ``budget_bytes`` (exact search, see
:mod:`.exact`)."""
from __future__ import annotations

import math
import time

from ...errors import BudgetError, PolicyError
from ...plans.registry import Parameter, PolicySpec, positive_int
from ..costs import GraphCosts
from ..plans import GraphPlan
from . import exact


def budget_value(policy: str, budget_bytes: object) -> float:
    """Validate a byte budget: a whole number of bytes >= 0 (None: no limit)."""
    if budget_bytes is None:
        return math.inf
    if isinstance(budget_bytes, bool) or not isinstance(budget_bytes, int) or budget_bytes < 0:
        raise PolicyError(f"policy {policy!r}: budget_bytes must be a whole number of bytes "
                          f">= 0, got {budget_bytes!r}")
    return budget_bytes


def minimum_budget(costs: GraphCosts, max_states: int = exact.DEFAULT_MAX_STATES) -> int:
    """The least peak of any plan: the smallest feasible budget, in bytes."""
    return int(exact.search(costs, math.inf, max_states, minimise_peak=True)[2])


def plan_optimal(costs: GraphCosts, budget_bytes: int | None = None,
                 max_states: int = exact.DEFAULT_MAX_STATES) -> GraphPlan:
    """The least-cost plan whose peak fits ``budget_bytes`` (None: no limit)."""
    budget = budget_value("optimal", budget_bytes)
    max_states = positive_int("optimal", "max_states", max_states)
    started = time.perf_counter()
    try:
        steps, cost, _ = exact.search(costs, budget, max_states)
    except BudgetError:
        least = minimum_budget(costs, max_states)
        raise BudgetError(f"policy 'optimal': budget_bytes={budget_bytes} is below the minimum "
                          f"of {least} bytes for this graph") from None
    params = {} if budget_bytes is None else {"budget_bytes": budget_bytes}
    return GraphPlan.build(costs, steps, "optimal", params, method="exact", status="optimal",
                           lower_bound=cost, solve_s=time.perf_counter() - started)


SPEC = PolicySpec("optimal", "the least-cost plan under a byte budget (exact search)",
                  plan_optimal,
                  (Parameter("budget_bytes", int, None, "byte budget for activations "
                             "(values and cotangents); default: no limit"),
                   Parameter("max_states", int, exact.DEFAULT_MAX_STATES,
                             "states the exact search may expand before giving up")))
