"""``optimal``: the least-cost graph plan under ``budget_bytes`` (exact search, see
:mod:`.exact`)."""
from __future__ import annotations

import math
import time
from dataclasses import replace

from ...checks import whole_number
from ...errors import BudgetError, PolicyError
from ...plans.registry import Parameter, PolicySpec, positive_int
from ..costs import GraphCosts
from ..plans import GraphPlan
from . import exact
from .fixed import plan_store_all
from .hierarchical import plan_hierarchical

DEFAULT_TIME_LIMIT = 10.0
EXACT_OPS_LIMIT = 40  # past this, the state space is out of reach: plan hierarchically at once
MILP_OPS_LIMIT = 40  # Checkmate's MILP finds plans within seconds only on graphs this small
METHODS = ("auto", "hierarchical")


def budget_value(policy: str, budget_bytes: object) -> float:
    """Validate a byte budget: a whole number of bytes >= 0 (None: no limit)."""
    if budget_bytes is None:
        return math.inf
    return whole_number(budget_bytes, f"policy {policy!r}: budget_bytes", error=PolicyError,
                        noun="whole number of bytes")


def minimum_budget(costs: GraphCosts, max_states: int = exact.DEFAULT_MAX_STATES) -> int:
    """The least peak of any plan: the smallest feasible budget, in bytes."""
    return int(exact.search(costs, math.inf, max_states, minimise_peak=True)[2])


def plan_optimal(costs: GraphCosts, budget_bytes: int | None = None,
                 max_states: int = exact.DEFAULT_MAX_STATES,
                 time_limit: float = DEFAULT_TIME_LIMIT, method: str = "auto") -> GraphPlan:
    """The least-cost plan whose peak fits ``budget_bytes`` (None: no limit). ``method="auto"``:
    proven by exact search when it finishes within ``max_states`` states and ``time_limit`` seconds
    (half of it on graphs of at most :data:`MILP_OPS_LIMIT` ops), else the cheapest of the
    hierarchical plan (a sequence of blocks, several options each; :mod:`.hierarchical`), ``dtr``
    (online, and offline ``next_use``), ``chen`` and, on graphs of at most :data:`MILP_OPS_LIMIT`
    ops, Checkmate's MILP in the rest of ``time_limit``. ``method="hierarchical"``: the
    hierarchical plan alone, without exact search."""
    budget = budget_value("optimal", budget_bytes)
    max_states = positive_int("optimal", "max_states", max_states)
    limit = positive_seconds("optimal", "time_limit", time_limit)
    if method not in METHODS:
        raise PolicyError(f"policy 'optimal': method must be one of {', '.join(METHODS)}, "
                          f"got {method!r}")
    params = {} if budget_bytes is None else {"budget_bytes": budget_bytes}
    if method != "auto":
        params["method"] = method
    started = time.perf_counter()
    if method == "hierarchical":
        plan = plan_hierarchical(costs, budget, "optimal", params)
        return replace(plan, solve_s=time.perf_counter() - started)
    if budget >= plan_store_all(costs).peak_bytes:  # store_all fits: nothing to trade
        return GraphPlan.build(costs, plan_store_all(costs).steps, "optimal", params,
                               method="exact", status="optimal", lower_bound=costs.total_cost)
    milp = len(costs.op_nodes) <= MILP_OPS_LIMIT
    try:
        if len(costs.op_nodes) > EXACT_OPS_LIMIT:
            raise exact.SearchLimit(f"the graph has {len(costs.op_nodes)} ops; exact search "
                                    f"handles graphs up to about {EXACT_OPS_LIMIT}")
        steps, cost, _ = exact.search(costs, budget, max_states,
                                      deadline=started + (limit / 2 if milp else limit))
    except exact.SearchLimit as limit_reached:
        return _past_exact_search(costs, budget, params, started, limit_reached,
                                  started + limit if milp else None)
    except BudgetError:
        raise _below_minimum(costs, budget_bytes, max_states) from None
    return GraphPlan.build(costs, steps, "optimal", params, method="exact", status="optimal",
                           lower_bound=cost, solve_s=time.perf_counter() - started)


MINIMUM_SEARCH_STATES = 50_000  # naming the least budget is a courtesy: it must stay quick


def _below_minimum(costs: GraphCosts, budget_bytes: object, max_states: int) -> BudgetError:
    """The error for a budget exact search proved no plan meets, naming the least budget when
    a short search finds it."""
    try:
        least = minimum_budget(costs, min(max_states, MINIMUM_SEARCH_STATES))
    except exact.SearchLimit:
        return BudgetError(f"policy 'optimal': no plan of this {len(costs.op_nodes)}-op graph "
                           f"fits budget_bytes={budget_bytes} (exact search proved it); give "
                           f"a larger budget")
    return BudgetError(f"policy 'optimal': budget_bytes={budget_bytes} is below the minimum "
                       f"of {least} bytes for this graph")


def _past_exact_search(costs: GraphCosts, budget: float, params: dict, started: float,
                       reason: Exception, milp_deadline: float | None) -> GraphPlan:
    """Past exact search: the cheapest of the hierarchical plan and the plans of ``dtr`` (its
    online h_DTR_eq and its offline ``next_use``) and ``chen`` at the same budget (so never
    worse than any), and of Checkmate's MILP until ``milp_deadline`` (None: not tried), each
    replayed and checked; ``method`` names the one chosen."""
    from .checkmate import plan_checkmate  # they validate budgets with this module's
    from .chen import plan_chen  # budget_value
    from .dtr import plan_dtr
    budget_bytes = int(budget)
    candidates, refusals = [], [f"exact search could not decide ({reason})"]
    planners = [("hierarchical", lambda: plan_hierarchical(costs, budget)),
                ("dtr", lambda: plan_dtr(costs, budget_bytes=budget_bytes)),
                ("dtr:next_use", lambda: plan_dtr(costs, budget_bytes=budget_bytes,
                                                  heuristic="next_use")),
                ("chen", lambda: plan_chen(costs, budget_bytes=budget_bytes))]
    if milp_deadline is not None and milp_deadline > time.perf_counter():
        planners.append(("milp", lambda: plan_checkmate(
            costs, budget_bytes=budget_bytes, time_limit=milp_deadline - time.perf_counter())))
    for method, planner in planners:
        try:
            candidates.append((method, planner()))
        except PolicyError as error:
            refusals.append(f"{method}: {error}")
    if not candidates:
        raise BudgetError(f"policy 'optimal': no planner fits budget_bytes={budget_bytes} on "
                          f"this {len(costs.op_nodes)}-op graph; " + "; ".join(refusals))
    method, best = min(candidates, key=lambda found: (found[1].cost, found[1].peak_bytes))
    return replace(best, policy="optimal", params=params, method=method, status="feasible",
                   lower_bound=costs.total_cost, solve_s=time.perf_counter() - started,
                   details={"tried": {m: p.cost for m, p in candidates}})  # already replayed


def positive_seconds(policy: str, name: str, value: object) -> float:
    """Validate a time limit: a finite number of seconds > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            math.isfinite(value) and value > 0):
        raise PolicyError(f"policy {policy!r}: {name} must be a number of seconds > 0, "
                          f"got {value!r}")
    return float(value)


SPEC = PolicySpec("optimal", "the least-cost plan under a byte budget (exact search; past "
                  "its limits the cheapest of a hierarchical plan, dtr, chen and, up to "
                  f"{MILP_OPS_LIMIT} ops, Checkmate's MILP)", plan_optimal,
                  (Parameter("budget_bytes", int, None, "byte budget for activations "
                             "(values and cotangents); default: no limit"),
                   Parameter("max_states", int, exact.DEFAULT_MAX_STATES,
                             "states the exact search may expand before planning "
                             "hierarchically"),
                   Parameter("time_limit", float, DEFAULT_TIME_LIMIT,
                             "seconds the exact search may take before planning "
                             f"hierarchically (on graphs of at most {MILP_OPS_LIMIT} ops, "
                             "half of them, Checkmate's MILP taking the rest)"),
                   Parameter("method", str, "auto",
                             "auto (exact search, then the cheapest of hierarchical, dtr, "
                             "chen and the MILP) or hierarchical (the block plan alone)")))
