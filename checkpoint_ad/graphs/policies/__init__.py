"""The graph policy registry and :func:`plan_graph`.

Each policy is a pure planner ``planner(costs: GraphCosts, **params) -> GraphPlan``; every plan
it returns has been replayed (:func:`~checkpoint_ad.graphs.plans.replay`) and carries the
numbers the replay gives.
"""
from __future__ import annotations

from ...errors import PolicyError
from ...plans.registry import Registry
from ..costs import GraphCosts, checked_costs
from ..plans import GraphPlan
from ..transfers import bandwidth_value, host_budget_value
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
    without a ``bandwidth`` of None or 0 and without a valid ``host_budget_bytes`` (a plan
    without transfers holds no host bytes), and a :class:`PolicyError` naming the policies
    that do for any other bandwidth."""
    spec = get_policy(policy)
    if any(p.name == "bandwidth" for p in spec.parameters):
        return params
    if "host_budget_bytes" in params:
        host_budget_value(params["host_budget_bytes"], f"policy {policy!r}", PolicyError)
        params = {name: value for name, value in params.items() if name != "host_budget_bytes"}
    if "bandwidth" not in params:
        return params
    rest = {name: value for name, value in params.items() if name != "bandwidth"}
    if bandwidth_value(params["bandwidth"], f"policy {policy!r}", PolicyError) is None:
        return rest
    movers = [name for name in names()
              if any(p.name == "bandwidth" for p in get_policy(name).parameters)]
    raise PolicyError(f"policy {policy!r} does not plan transfers to host memory (bandwidth="
                      f"{params['bandwidth']!r}); policies that do: {', '.join(movers)}")


__all__ = ["REGISTRY", "get_policy", "names", "plan_graph", "without_transfers"]
