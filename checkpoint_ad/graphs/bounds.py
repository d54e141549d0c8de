"""The best lower bound on a graph's cost under a byte budget that the package can prove, and
the formulation it bounds.

* **all plans** (docs/graph_model.md's whole vocabulary): the exact search's optimum when it
  finishes within ``max_states``; otherwise the trivial bound ``costs.total_cost`` (every op is
  computed at least once by any plan).
* **checkmate**: the larger of the LP relaxation's value and HiGHS's dual bound of Checkmate's
  MILP within ``time_limit`` (:mod:`.policies.checkmate_model`). It bounds only that
  formulation's plans (index order inside stages): the least cost over all plans can be
  lower. It is returned only when it beats the trivial bound.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import BudgetError
from ..plans.registry import budget_value, positive_int, positive_seconds
from .costs import GraphCosts, checked_costs
from .policies import exact, optimal
from .policies.checkmate import DEFAULT_TIME_LIMIT, capped
from .policies.checkmate_model import Model

DEFAULT_MAX_STATES = 200_000


@dataclass(frozen=True)
class GraphLowerBound:
    """A proven lower bound of the cost (sum of ``costs`` over evaluations): ``value``,
    ``formulation`` ("all plans" or "checkmate": the set of plans it bounds) and ``method``
    ("exact search", "every op once", "checkmate LP relaxation", "checkmate MILP dual
    bound")."""

    value: float
    formulation: str
    method: str


def graph_lower_bound(costs: GraphCosts, budget_bytes: int | None = None,
                      max_states: int = DEFAULT_MAX_STATES,
                      time_limit: float = DEFAULT_TIME_LIMIT) -> GraphLowerBound:
    """The best bound on the cost of plans within ``budget_bytes`` (None: no limit): exact
    search up to ``max_states`` states, else Checkmate's LP or MILP bound (``time_limit``
    seconds each) if it beats ``costs.total_cost``. A budget no plan meets raises BudgetError."""
    checked_costs(costs, "graph_lower_bound")
    budget = budget_value("graph_lower_bound", budget_bytes)
    seconds = positive_seconds("graph_lower_bound", "time_limit", time_limit)
    max_states = positive_int("graph_lower_bound", "max_states", max_states)
    try:
        cost = exact.search(costs, budget, max_states)[1]
        return GraphLowerBound(cost, "all plans", "exact search")
    except exact.SearchLimit:  # past max_states: fall back to the bounds below
        pass
    except BudgetError:
        raise BudgetError(f"policy 'optimal': budget_bytes={budget_bytes} is below the minimum "
                          f"of {optimal.minimum_budget(costs, max_states)} bytes for this "
                          "graph") from None
    trivial = GraphLowerBound(costs.total_cost, "all plans", "every op once")
    model = Model(costs)
    if not model.exact:  # sizes rounded up: its optimum bounds nothing from below
        return trivial
    found = []
    for integral, method in ((False, "checkmate LP relaxation"),
                             (True, "checkmate MILP dual bound")):
        solution = model.solve(budget, integral=integral, time_limit=seconds)
        if solution.status == "infeasible":  # no plan of the formulation fits
            return trivial
        if solution.bound is not None:
            value = solution.bound if solution.objective is None else capped(
                solution.bound, solution.objective)
            found.append(GraphLowerBound(value, "checkmate", method))
    best = max(found, key=lambda bound: bound.value, default=trivial)
    return best if best.value > trivial.value else trivial
