"""The best lower bound on a graph's cost under a byte budget that the package can prove, and
the formulation it bounds.

* **all plans** (docs/graph_model.md's whole vocabulary): the exact search's optimum when it
  finishes within ``max_states``; otherwise the closure bound of :mod:`.floors` (the retention
  bound strengthened by what recomputation needs, solved as small LPs) when it is above
  ``costs.total_cost``, else that trivial bound (every op is computed at least once by any
  plan). The closure bound is tried on graphs of at most :data:`CLOSURE_OPS_LIMIT` ops.
* **checkmate**: the larger of the LP relaxation's value and HiGHS's dual bound of Checkmate's
  MILP (:mod:`.policies.checkmate_model`). It bounds only that formulation's plans (index
  order inside stages): the least cost over all plans can be lower. It is returned only when
  it beats the bound of all plans above.

A bound is a courtesy: ``time_limit`` bounds the whole call (exact search, building Checkmate's
model and both solves), and a search or model whose estimated memory is above the planner
memory limit (:mod:`checkpoint_ad.plans.limits`; ``limited(memory_bytes=...)`` lowers it) is
not started. The bound then says in ``note`` why no stronger bound was found.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace

from ..errors import BudgetError
from ..plans import limits
from ..plans.registry import budget_value, positive_int, positive_seconds
from . import solvers
from .costs import GraphCosts, checked_costs
from .floors import CLOSURE_OPS_LIMIT, closure_bound
from .policies import exact, optimal
from .policies.checkmate import DEFAULT_TIME_LIMIT, capped
from .policies.checkmate_model import Model, OutOfTime, graph_model_bytes

DEFAULT_MAX_STATES = 200_000


@dataclass(frozen=True)
class GraphLowerBound:
    """A proven lower bound of the cost (sum of ``costs`` over evaluations): ``value``,
    ``formulation`` ("all plans" or "checkmate": the set of plans it bounds), ``method``
    ("exact search", "every op once", "closure bound", "checkmate LP relaxation",
    "checkmate MILP dual bound") and ``note``: why a stronger bound was not tried or not found (None: nothing was
    cut short)."""

    value: float
    formulation: str
    method: str
    note: str | None = None


def graph_lower_bound(costs: GraphCosts, budget_bytes: int | None = None,
                      max_states: int = DEFAULT_MAX_STATES,
                      time_limit: float = DEFAULT_TIME_LIMIT) -> GraphLowerBound:
    """The best bound on the cost of plans within ``budget_bytes`` (None: no limit): exact
    search up to ``max_states`` states, else the larger of ``costs.total_cost`` and the closure
    bound, or Checkmate's LP or MILP bound if it beats that, all within ``time_limit`` seconds and the planner memory limit (see
    the module docstring). A budget that exact search proves no plan meets raises BudgetError."""
    checked_costs(costs, "graph_lower_bound")
    budget = budget_value("graph_lower_bound", budget_bytes)
    seconds = positive_seconds("graph_lower_bound", "time_limit", time_limit)
    max_states = positive_int("graph_lower_bound", "max_states", max_states)
    solvers.load(solvers.HIGHS)
    deadline = time.perf_counter() + seconds
    allowance = limits.current().memory_bytes
    if exact.table_bytes(costs) <= allowance:
        try:
            cost = exact.search(costs, budget, max_states, deadline=deadline)[1]
            return GraphLowerBound(cost, "all plans", "exact search")
        except exact.SearchLimit:  # past max_states or the time: fall back to the bounds below
            pass
        except BudgetError:
            raise BudgetError(f"policy 'optimal': budget_bytes={budget_bytes} is below the "
                              f"minimum of {optimal.minimum_budget(costs, max_states)} bytes "
                              "for this graph") from None
    trivial = _all_plans_bound(costs, budget, deadline)
    needs = graph_model_bytes(costs)
    if needs > allowance:
        return replace(trivial, note=f"Checkmate's bound not tried: its model of this "
                                     f"{len(costs.op_nodes):,}-op graph needs about {needs:,} "
                                     f"bytes, more than the {allowance:,} allowed")
    return _checkmate_bound(costs, budget, deadline, seconds, trivial)


def _all_plans_bound(costs: GraphCosts, budget: float, deadline: float) -> GraphLowerBound:
    """The closure bound (:func:`.floors.closure_bound`, its LPs solved until ``deadline``)
    when it beats every op once, else every op once; on graphs of more than
    :data:`CLOSURE_OPS_LIMIT` ops every op once (the bound's knapsacks take quadratic time)."""
    if len(costs.op_nodes) > CLOSURE_OPS_LIMIT:
        return GraphLowerBound(costs.total_cost, "all plans", "every op once")
    closure = closure_bound(costs, budget, deadline)
    if closure > costs.total_cost:
        return GraphLowerBound(closure, "all plans", "closure bound")
    return GraphLowerBound(costs.total_cost, "all plans", "every op once")


def _checkmate_bound(costs: GraphCosts, budget: float, deadline: float, seconds: float,
                     trivial: GraphLowerBound) -> GraphLowerBound:
    """The larger of Checkmate's LP and MILP bounds if it beats ``trivial``, solved one after
    the other until ``deadline``; ``trivial`` with a note when time ran out before either."""
    found = []
    try:
        model = Model(costs, deadline)
        if not model.exact:  # sizes rounded up: its optimum bounds nothing from below
            return replace(trivial, note="Checkmate's bound not tried: this graph's sizes would "
                                         "be rounded up (see checkmate_model.MAX_UNITS)")
        for integral, method in ((False, "checkmate LP relaxation"),
                                 (True, "checkmate MILP dual bound")):
            solution = model.solve(budget, integral=integral)
            if solution.status == "infeasible":  # no plan of the formulation fits
                return trivial
            if solution.bound is not None:
                value = solution.bound if solution.objective is None else capped(
                    solution.bound, solution.objective)
                found.append(GraphLowerBound(value, "checkmate", method))
    except OutOfTime:
        if not found:
            return replace(trivial, note=f"Checkmate's bound not found: time_limit={seconds:g} "
                                         "s ran out before its model was solved")
    best = max(found, key=lambda bound: bound.value, default=trivial)
    return best if best.value > trivial.value else trivial
