"""The policy registry: ``get_policy(name)``, ``make_plan(name, costs, **params)``.

Each policy lives in its own module and exports a :class:`~.base.PolicySpec` named ``SPEC``.
"""
from __future__ import annotations

from ..errors import UnknownNameError
from ..plans import ChainCosts, Plan
from .base import Parameter, PolicySpec
from . import store_all, recompute_all, sqrt_n, revolve, optimal

_REGISTRY: dict[str, PolicySpec] = {}


def register(spec: PolicySpec) -> PolicySpec:
    _REGISTRY[spec.name] = spec
    return spec


for _module in (store_all, recompute_all, sqrt_n, revolve, optimal):
    register(_module.SPEC)


def names() -> list[str]:
    """The registered policy names, in registration order."""
    return list(_REGISTRY)


def get_policy(name: str) -> PolicySpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownNameError(
            f"unknown policy {name!r}; known policies: {', '.join(_REGISTRY)}") from None


def make_plan(name: str, costs: ChainCosts | int, **params: object) -> Plan:
    """Plan ``name`` for ``costs`` (an int n means a homogeneous chain of unit costs)."""
    if isinstance(costs, int):
        costs = ChainCosts.unit(costs)
    return get_policy(name).plan(costs, **params)


__all__ = ["Parameter", "PolicySpec", "get_policy", "make_plan", "names", "register"]
