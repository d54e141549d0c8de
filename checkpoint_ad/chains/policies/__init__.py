"""The chain policy registry: ``get_policy(name)``, ``make_plan(name, costs, **params)``.

Each policy lives in its own module and exports a
:class:`~checkpoint_ad.plans.registry.PolicySpec` named ``SPEC`` and ``footprint(n, **params)``,
what planning n unit stages takes (see :mod:`..limits`).
"""
from __future__ import annotations

from collections.abc import Callable

from ...plans.registry import Parameter, PolicySpec, Registry
from ...plans import limits
from ..costs import ChainCosts
from ..plans import Plan
from ..replay import as_run
from . import optimal, recompute_all, revolve, sqrt_n, store_all

REGISTRY = Registry("policy")
FOOTPRINTS: dict[str, Callable[..., limits.Footprint]] = {}  # name -> footprint(n, **params)
for _module in (store_all, recompute_all, sqrt_n, revolve, optimal):
    REGISTRY.register(_module.SPEC)
    FOOTPRINTS[_module.SPEC.name] = _module.footprint

register = REGISTRY.register
names = REGISTRY.names
get_policy = REGISTRY.get


def make_plan(name: str, costs: ChainCosts | int, **params: object) -> Plan:
    """Plan ``name`` for ``costs`` (an int n means a homogeneous chain of unit costs), as it
    runs on that chain; ``bandwidth`` (docs/chain_offload.md) goes to ``optimal``, the others
    take None or 0 and refuse any other value (:func:`..replay.as_run`: stage n's tape held when the chain returns
    its output before its cotangent is known)."""
    if isinstance(costs, int):
        costs = ChainCosts.unit(costs)
    params = REGISTRY.without_transfers(name, params)
    return as_run(get_policy(name).plan(costs, **params), costs)


def check_fits(name: str, n: int, **params: object) -> limits.Footprint | None:
    """Refuse, before the chain's costs are even built, planning ``name`` for n unit stages
    when its estimate is above the planner limits; the estimate, or None for a policy that
    gives none (or parameters it does not take). Each planner checks again itself."""
    spec = get_policy(name)
    footprint = FOOTPRINTS.get(spec.name)
    if footprint is None or set(params) - {parameter.name for parameter in spec.parameters}:
        return None  # the planner names the unknown parameter itself
    described = ", ".join(f"{key}={value}" for key, value in sorted(params.items()))
    what = f"n={n:,}" + (f" with {described}" if described else "")
    return limits.require(name, what, n, lambda m: footprint(m, **params))


def check_params(name: str, **params: object) -> None:
    """Refuse an unknown policy, unknown parameters or bad values before any costs are known
    (a ``bandwidth`` > 0 given to a policy that plans no transfers among them)."""
    get_policy(name).check_params(**REGISTRY.without_transfers(name, params))


__all__ = ["check_fits", "check_params", "Parameter", "PolicySpec", "REGISTRY", "get_policy",
           "make_plan", "names", "register"]
