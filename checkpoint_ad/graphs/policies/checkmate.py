"""``checkmate``: the least-cost plan of Checkmate's MILP (Jain et al., MLSys 2020) under a byte
budget, solved by HiGHS (see :mod:`.checkmate_model` for the formulation and its adaptation).

It is optimal **for its formulation**: inside a stage, ops are (re)computed in index order,
each at most once, and values are freed after their last use. :func:`~.optimal.plan_optimal`
ranges over all plans and can be cheaper. The plan carries HiGHS's status ("optimal", or
"time_limit" with the best schedule found) and its dual bound as ``lower_bound`` (a bound for
this formulation only); on a model whose sizes were rounded up to keep HiGHS's numbers exact
(:attr:`.checkmate_model.Model.exact` False) it is "feasible", without a bound. Where store_all
fits the budget and the MILP's plan costs more, store_all's plan is returned instead.
"""
from __future__ import annotations

import time
from dataclasses import replace

from ...errors import BudgetError, PolicyError, TimeLimitError
from ...plans.registry import Parameter, PolicySpec, budget_value, positive_seconds
from .. import solvers
from ..costs import GraphCosts
from ..floors import least_peak_floor
from ..plans import GraphPlan
from .checkmate_model import Model, OutOfTime, Solution
from .fixed import plan_store_all

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
    seconds of building the model and solving it with HiGHS. When store_all fits the budget
    and the MILP's plan costs more (or none was found), store_all's plan is returned: no plan
    costs less (see :func:`store_all_if_cheaper`)."""
    budget = budget_value("checkmate", budget_bytes)
    seconds = positive_seconds("checkmate", "time_limit", time_limit)
    solvers.load(solvers.HIGHS)
    started = time.perf_counter()
    params = {"time_limit": seconds} if budget_bytes is None else {
        "budget_bytes": budget_bytes, "time_limit": seconds}
    try:
        model = Model(costs, started + seconds)
        solution = model.solve(budget, integral=True)
    except OutOfTime:
        raise out_of_time("checkmate", seconds, len(costs.op_nodes)) from None
    plan = _milp_plan(model, solution, params)
    cheaper = store_all_if_cheaper(costs, budget, plan, "checkmate", params)
    if cheaper is not None:
        return replace(cheaper, solve_s=time.perf_counter() - started)
    if solution.status == "infeasible":
        raise budget_error("checkmate", model, budget_bytes, seconds)
    if plan is None:
        raise BudgetError(f"policy 'checkmate': HiGHS found no schedule within time_limit="
                          f"{seconds:g} s ({solution.status}; no plan fits below "
                          f"{least_peak_floor(costs):,} bytes); raise time_limit, or use "
                          "'checkmate_lp'")
    return within_budget(replace(plan, solve_s=time.perf_counter() - started), budget)


def _milp_plan(model: Model, solution: Solution, params: dict) -> GraphPlan | None:
    """The decoded MILP plan (None without a point): HiGHS's status and dual bound stand only
    when the model counts bytes exactly; on a rounded model it is a feasible plan, unbounded."""
    if solution.R is None:
        return None
    plan = GraphPlan.build(model.costs, model.decode(solution.R), "checkmate", params,
                           method="milp", status=solution.status if model.exact else "feasible",
                           details={"objective": solution.objective, "stages": model.stages,
                                    "unit_bytes": model.unit})
    bound = capped(solution.bound, plan.cost) if model.exact else None
    return replace(plan, lower_bound=bound)


def store_all_if_cheaper(costs: GraphCosts, budget: float, plan: GraphPlan | None,
                         policy: str, params: dict) -> GraphPlan | None:
    """store_all's steps as ``policy``'s plan when they fit ``budget`` and ``plan`` (None:
    none found) costs more; else None. Computing every op once is the least cost of any plan,
    so this one is proven optimal; a solver's plan costing more is numerical trouble or a
    rounded model (:attr:`.checkmate_model.Model.exact`), never an optimum."""
    fallback = plan_store_all(costs)
    if fallback.peak_bytes > budget or (plan is not None and plan.cost <= fallback.cost):
        return None
    found = None if plan is None else plan.cost
    return GraphPlan.build(costs, fallback.steps, policy, params, method="store_all",
                           status="optimal", lower_bound=costs.total_cost,
                           details={"solver_cost": found})


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
                           f"not found within time_limit={seconds:g} s; no plan fits below "
                           f"{least_peak_floor(model.costs):,} bytes)")
    what = "the minimum" if proven else "the least peak found within time_limit"
    rounded = "" if model.exact else (f" with sizes rounded up to multiples of {model.unit} "
                                      "bytes (to keep HiGHS's numbers exact)")
    return BudgetError(f"policy {policy!r}: budget_bytes={budget_bytes} is below {what} of "
                       f"{least} bytes for Checkmate's formulation on this graph{rounded}")


SPEC = PolicySpec(
    "checkmate", "Checkmate's MILP (Jain et al. 2020) under a byte budget, solved by HiGHS",
    plan_checkmate,
    (Parameter("budget_bytes", int, None, "byte budget for activations (values and "
               "cotangents); default: no limit"),
     Parameter("time_limit", float, DEFAULT_TIME_LIMIT, "seconds for building the model "
               "and HiGHS's search; on timeout the best schedule found is returned (status "
               "'time_limit')")))
