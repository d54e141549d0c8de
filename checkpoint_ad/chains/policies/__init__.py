"""The chain policy registry: ``get_policy(name)``, ``make_plan(name, costs, **params)``.

Each policy lives in its own module and exports a
:class:`~checkpoint_ad.plans.registry.PolicySpec` named ``SPEC``.
"""
from __future__ import annotations

from ...plans.registry import Parameter, PolicySpec, Registry
from ..plans import ChainCosts, Plan
from . import store_all, recompute_all, sqrt_n, revolve, optimal

REGISTRY = Registry("policy")
for _module in (store_all, recompute_all, sqrt_n, revolve, optimal):
    REGISTRY.register(_module.SPEC)

register = REGISTRY.register
names = REGISTRY.names
get_policy = REGISTRY.get


def make_plan(name: str, costs: ChainCosts | int, **params: object) -> Plan:
    """Plan ``name`` for ``costs`` (an int n means a homogeneous chain of unit costs)."""
    if isinstance(costs, int):
        costs = ChainCosts.unit(costs)
    return get_policy(name).plan(costs, **params)


def check_params(name: str, **params: object) -> None:
    """Refuse an unknown policy, unknown parameters or bad values before any costs are known."""
    get_policy(name).check_params(**params)


__all__ = ["Parameter", "PolicySpec", "REGISTRY", "check_params", "get_policy", "make_plan",
           "names", "register"]
