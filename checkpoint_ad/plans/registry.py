"""The policy interface and registry that chain and graph policies share.

A policy is a named, documented, pure planner: it sees only a family's cost data
(:class:`~checkpoint_ad.chains.costs.ChainCosts` or
:class:`~checkpoint_ad.graphs.costs.GraphCosts`) and its own parameters, and returns an
immutable plan. It never touches arrays, and never imports numpy, an executor or anything
downstream. Each family keeps one :class:`Registry`.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..checks import plain, whole_number
from ..errors import PolicyError, UnknownNameError
from .transfers import bandwidth_value, host_budget_value


@dataclass(frozen=True)
class Parameter:
    """One policy parameter: its name, Python type, default (None: computed) and meaning."""

    name: str
    kind: type
    default: object
    help: str


def plain_params(params: dict[str, object]) -> dict[str, object]:
    """``params`` with numpy scalars (``np.int64(3)``) as the Python values they hold, so that
    every planner takes them wherever it takes ints, floats and bools."""
    return {name: plain(value) for name, value in params.items()}


def check_made_with(caller: str, made_by: str, made_with: Mapping[str, object], policy: str,
                    params: Mapping[str, object]) -> None:
    """Refuse a plan made earlier (by policy ``made_by`` with parameters ``made_with``) given
    beside a ``policy`` and ``params`` that contradict it: another policy, or a parameter the
    plan names with another value."""
    if made_by != policy:
        raise PolicyError(f"{caller}: the plan given was made by policy {made_by!r}, not "
                          f"{policy!r}; pass policy={made_by!r} with it")
    for name, value in params.items():
        if name in made_with and made_with[name] != value:
            raise PolicyError(f"{caller}: the plan given was made with "
                              f"{name}={made_with[name]!r}, not {name}={value!r}")


def _no_check(**params: object) -> None:
    """A policy without parameters has nothing to check beyond their names."""


@dataclass(frozen=True)
class PolicySpec:
    """A registered policy: ``planner(costs, **params) -> plan``.

    ``check(**params)`` validates the parameters without any costs (types, ranges, and
    combinations that mean nothing), raising :class:`~checkpoint_ad.errors.PolicyError`; the
    planner runs the same check itself, and :meth:`check_params` lets a caller refuse bad
    parameters before it knows the costs."""

    name: str
    summary: str
    planner: Callable[..., Any]
    parameters: tuple[Parameter, ...] = ()
    check: Callable[..., None] = _no_check

    def check_params(self, **params: object) -> None:
        """Refuse unknown parameter names, then bad values (see ``check``)."""
        self._check_names(params)
        self.check(**plain_params(params))

    def plan(self, costs: Any, **params: object) -> Any:
        """The planner's plan; numpy scalars among ``params`` are passed as Python values."""
        self._check_names(params)
        return self.planner(costs, **plain_params(params))

    def _check_names(self, params: dict[str, object]) -> None:
        known = {p.name for p in self.parameters}
        unknown = sorted(set(params) - known)
        if unknown:
            accepted = ", ".join(sorted(known)) or "none"
            raise PolicyError(f"policy {self.name!r} has no parameter {', '.join(unknown)} "
                              f"(accepted: {accepted})")


class Registry:
    """Named specs (anything with a ``name``) of one kind, in registration order: the
    policies of a family, or workloads.

    ``kind`` names them in errors ("policy", "graph policy", "graph workload"): an unknown name
    raises :class:`~checkpoint_ad.errors.UnknownNameError` listing the known ones.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._specs: dict[str, Any] = {}

    def register(self, spec: Any) -> Any:
        self._specs[spec.name] = spec
        return spec

    def names(self) -> list[str]:
        return list(self._specs)

    def get(self, name: str) -> Any:
        try:
            return self._specs[name]
        except (KeyError, TypeError):
            plural = self.kind[:-1] + "ies" if self.kind.endswith("y") else self.kind + "s"
            raise UnknownNameError(f"unknown {self.kind} {name!r}; known {plural}: "
                                   f"{', '.join(self._specs)}") from None

    def without_transfers(self, policy: str, params: dict[str, object]) -> dict[str, object]:
        """``params`` for ``policy``: unchanged for a policy that plans transfers (it takes a
        ``bandwidth``); for the others, without a ``bandwidth`` of None or 0 and without a
        valid ``host_budget_bytes`` (a plan without transfers holds no host bytes), and a
        :class:`PolicyError` naming the policies that do for any other bandwidth
        (docs/offload_model.md)."""
        spec = self.get(policy)
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
        movers = [name for name in self.names()
                  if any(p.name == "bandwidth" for p in self.get(name).parameters)]
        raise PolicyError(f"policy {policy!r} does not plan transfers to host memory (bandwidth="
                          f"{params['bandwidth']!r}); policies that do: {', '.join(movers)}")


def positive_int(policy: str, name: str, value: object) -> int:
    """Validate a count parameter (slots, segments): a whole number >= 1."""
    return whole_number(value, f"policy {policy!r}: {name}", minimum=1, error=PolicyError)


def budget_value(policy: str, budget_bytes: object) -> float:
    """Validate a byte budget: a whole number of bytes >= 0 (None: no limit)."""
    if budget_bytes is None:
        return math.inf
    return whole_number(budget_bytes, f"policy {policy!r}: budget_bytes", error=PolicyError,
                        noun="whole number of bytes")


def positive_seconds(policy: str, name: str, value: object) -> float:
    """Validate a time limit: a finite number of seconds > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            math.isfinite(value) and value > 0):
        raise PolicyError(f"policy {policy!r}: {name} must be a number of seconds > 0, "
                          f"got {value!r}")
    return float(value)
