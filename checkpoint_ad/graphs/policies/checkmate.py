"""``checkmate``: the least-cost plan of Checkmate's MILP (Jain et al., MLSys 2020) under a byte
budget, solved by HiGHS (see :mod:`.checkmate_model` for the formulation and its adaptation).

It is optimal **for its formulation**: inside a stage, ops are (re)computed in index order,
each at most once, and values are freed after their last use. :func:`~.optimal.plan_optimal`
ranges over all plans and can be cheaper. The plan carries HiGHS's status ("optimal", or
"time_limit" with the best schedule found) and its dual bound as ``lower_bound`` (a bound for
this formulation only).
"""
from __future__ import annotations

import dataclasses
import time

from ...errors import BudgetError, PolicyError, TimeLimitError
from ...plans.registry import Parameter, PolicySpec
from ..costs import GraphCosts
from ..plans import GraphPlan
from .checkmate_model import Model, OutOfTime
from .optimal import budget_value, positive_seconds

DEFAULT_TIME_LIMIT = 10.0


def out_of_time(policy: str, seconds: float, ops: int) -> TimeLimitError:
    """The error for a time limit spent before HiGHS could solve: ``time_limit`` counts the
    model's building too."""
    return TimeLimitError(f"policy {policy!r}: time_limit={seconds:g} s ran out on this {ops}-op "
                       f"graph before HiGHS could solve (building Checkmate's model counts); "
                       f"raise time_limit")


def plan_checkmate(costs: GraphCosts, budget_bytes: int | None = None,
                   time_limit: float = DEFAULT_TIME_LIMIT) -> GraphPlan:
    """Checkmate's MILP plan under ``budget_bytes`` (None: no limit), within ``time_limit``
    seconds of building the model and solving it with HiGHS."""
    budget = budget_value("checkmate", budget_bytes)
    seconds = positive_seconds("checkmate", "time_limit", time_limit)
    started = time.perf_counter()
    try:
        model = Model(costs, started + seconds)
        solution = model.solve(budget, integral=True)
        if solution.status == "infeasible":
            raise budget_error("checkmate", model, budget_bytes, seconds)
    except OutOfTime:
        raise out_of_time("checkmate", seconds, len(costs.op_nodes)) from None
    if solution.R is None:
        raise BudgetError(f"policy 'checkmate': HiGHS found no schedule within time_limit="
                          f"{seconds:g} s ({solution.status}); raise time_limit, or use "
                          "'checkmate_lp'")
    steps = model.decode(solution.R)
    params = {"time_limit": seconds} if budget_bytes is None else {
        "budget_bytes": budget_bytes, "time_limit": seconds}
    plan = GraphPlan.build(costs, steps, "checkmate", params, method="milp",
                           status=solution.status, solve_s=time.perf_counter() - started,
                           details={"objective": solution.objective, "stages": model.stages})
    return within_budget(dataclasses.replace(plan, lower_bound=capped(solution.bound, plan.cost)),
                         budget)


def capped(bound: float | None, cost: float) -> float | None:
    """HiGHS's bound, with floating-point noise above the (exact) cost removed: a bound above
    the cost by more than 1e-9 relative is kept as is, visibly wrong."""
    if bound is None or bound > cost + 1e-9 * max(1.0, abs(cost)):
        return bound
    return min(bound, cost)


def within_budget(plan: GraphPlan, budget: float) -> GraphPlan:
    """``plan``, after checking its replayed peak fits (the formulation guarantees it)."""
    if plan.peak_bytes > budget:
        raise PolicyError(f"policy {plan.policy!r}: the decoded schedule peaks at "
                          f"{plan.peak_bytes} bytes, above budget_bytes={budget:g}; this is "
                          "a bug, please report it")
    return plan


def budget_error(policy: str, model: Model, budget_bytes: object, seconds: float
                 ) -> BudgetError:
    """The error for a budget Checkmate's formulation cannot meet, naming its least peak
    (a MILP minimising the peak, in what is left of the time limit)."""
    try:
        least, proven = model.least_peak()
    except OutOfTime:
        least, proven = None, False
    if least is None:
        return BudgetError(f"policy {policy!r}: budget_bytes={budget_bytes} is below what "
                           "Checkmate's formulation needs on this graph (its least peak was "
                           f"not found within time_limit={seconds:g} s)")
    what = "the minimum" if proven else "the least peak found within time_limit"
    return BudgetError(f"policy {policy!r}: budget_bytes={budget_bytes} is below {what} of "
                       f"{least} bytes for Checkmate's formulation on this graph")


SPEC = PolicySpec(
    "checkmate", "Checkmate's MILP (Jain et al. 2020) under a byte budget, solved by HiGHS",
    plan_checkmate,
    (Parameter("budget_bytes", int, None, "byte budget for activations (values and "
               "cotangents); default: no limit"),
     Parameter("time_limit", float, DEFAULT_TIME_LIMIT, "seconds for building the model "
               "and HiGHS's search; on timeout the best schedule found is returned (status "
               "'time_limit')")))
