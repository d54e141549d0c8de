"""The graph policy registry and :func:`plan_graph`.

Each policy is a pure planner ``planner(costs: GraphCosts, **params) -> GraphPlan``; every plan
it returns has been replayed (:func:`~checkpoint_ad.graphs.replay.replay`) and carries the
numbers the replay gives.
"""
from __future__ import annotations

from ...plans.registry import Registry
from ..costs import GraphCosts, checked_costs
from ..plans import GraphPlan
from . import checkmate, checkmate_lp, chen, cpsat, dtr, fixed, optimal
from .footprint import require_fits

REGISTRY = Registry("graph policy")
for _spec in (fixed.STORE_ALL, fixed.RECOMPUTE_ALL, fixed.SAVE_OPS, optimal.SPEC, checkmate.SPEC,
              checkmate_lp.SPEC, dtr.SPEC, chen.SPEC, cpsat.SPEC):
    REGISTRY.register(_spec)

names = REGISTRY.names
get_policy = REGISTRY.get


def plan_graph(policy: str, costs: GraphCosts, **params: object) -> GraphPlan:
    """Plan ``costs`` with the graph policy named ``policy`` (see :func:`names`), refusing
    first a graph whose planning would exceed the planner memory limit (:mod:`.footprint`).
    ``bandwidth`` (docs/offload_model.md) goes to the policies that plan transfers; the others
    take None or 0 (no offload) and refuse any other value (:func:`without_transfers`)."""
    checked_costs(costs, "plan_graph")
    spec = get_policy(policy)
    params = without_transfers(policy, params)
    require_fits(policy, costs)
    return spec.plan(costs, **params)


def without_transfers(policy: str, params: dict[str, object]) -> dict[str, object]:
    """``params`` for ``policy``: unchanged for a policy that plans transfers; for the others,
    without a ``bandwidth`` of None or 0 and without a valid ``host_budget_bytes``, and a
    :class:`PolicyError` naming the policies that do for any other bandwidth."""
    return REGISTRY.without_transfers(policy, params)


__all__ = ["REGISTRY", "get_policy", "names", "plan_graph", "without_transfers"]
