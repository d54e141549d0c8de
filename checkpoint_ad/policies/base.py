"""The policy interface: a named, documented, pure planner.

A policy sees only :class:`~checkpoint_ad.plans.ChainCosts` (stage count, costs and sizes) and
its own parameters, and returns an immutable :class:`~checkpoint_ad.plans.Plan`. It never
touches arrays, and never imports numpy, the executor or anything downstream.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import PolicyError
from ..plans import ChainCosts, Plan


@dataclass(frozen=True)
class Parameter:
    """One policy parameter: its name, Python type, default (None: computed) and meaning."""

    name: str
    kind: type
    default: object
    help: str


@dataclass(frozen=True)
class PolicySpec:
    """A registered policy: ``planner(costs, **params) -> Plan``."""

    name: str
    summary: str
    planner: Callable[..., Plan]
    parameters: tuple[Parameter, ...] = ()

    def plan(self, costs: ChainCosts, **params: object) -> Plan:
        known = {p.name for p in self.parameters}
        unknown = sorted(set(params) - known)
        if unknown:
            accepted = ", ".join(sorted(known)) or "none"
            raise PolicyError(f"policy {self.name!r} has no parameter {', '.join(unknown)} "
                              f"(accepted: {accepted})")
        return self.planner(costs, **params)


def positive_int(policy: str, name: str, value: object) -> int:
    """Validate a count parameter (slots, segments): a whole number >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PolicyError(f"policy {policy!r}: {name} must be a positive integer, got {value!r}")
    return value
