"""The least budget a planner meets, for chains and graphs alike: ``minimum_budget(costs)``.

``budget_bytes`` means one thing in both families: the whole activation peak the executor's
Meter counts (bytes; values, tapes, the working value and cotangents; parameters and inputs
apart). Below the number returned here ``optimal`` refuses the budget.
"""
from __future__ import annotations

from ..chains.costs import ChainCosts
from ..chains.policies import optimal as chain_optimal
from ..errors import PolicyError
from ..graphs.costs import GraphCosts
from ..graphs.policies import exact
from ..graphs.policies import optimal as graph_optimal


def minimum_budget(costs: ChainCosts | GraphCosts, *, tapes: bool = True,
                   max_states: int = exact.DEFAULT_MAX_STATES) -> int:
    """The least ``budget_bytes`` (bytes) within which ``optimal`` plans for ``costs``.

    A chain's (:class:`ChainCosts`, e.g. ``profile.costs()``): the least whole peak of the
    plans of its DP (``tapes=False``: without held tapes). A graph's (:class:`GraphCosts`, e.g.
    ``ca.graph_costs(ca.trace(fn, *args))``): the least peak of any plan, proved by exact search
    within ``max_states`` states; a graph too large for that is refused with
    :class:`PolicyError`."""
    if isinstance(costs, ChainCosts):
        return chain_optimal.minimum_budget(costs, tapes=tapes)
    if isinstance(costs, GraphCosts):
        try:
            return graph_optimal.minimum_budget(costs, max_states)
        except exact.SearchLimit as reason:
            raise PolicyError(f"minimum_budget: exact search cannot settle the least budget of "
                              f"this {len(costs.op_nodes)}-op graph ({reason}); plan with "
                              f"optimal at a budget and read its refusal, or raise "
                              f"max_states") from None
    raise PolicyError(f"minimum_budget: costs must be a chain's ChainCosts (profile.costs()) or "
                      f"a graph's GraphCosts (ca.graph_costs(ca.trace(fn, *args))), got "
                      f"{type(costs).__name__}")
