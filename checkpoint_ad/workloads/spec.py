"""What every workload, chain or graph, is made of: documented size parameters, checked against
their types and against this machine's memory before anything is allocated, and a dtype."""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..engine.backend import xp
from ..errors import ExperimentError

Builder = Callable[[dict[str, Any], Any, Any], Any]  # (sizes, generator, dtype) -> the built arrays


@dataclass(frozen=True)
class SizeParameter:
    """One size parameter of a workload: name, Python type, default, meaning, allowed values."""

    name: str
    kind: type
    default: Any
    help: str
    choices: tuple[Any, ...] = ()


@dataclass(frozen=True)
class WorkloadSpec:
    """A registered workload: ``builder(sizes, generator, dtype)`` returns a chain workload's
    ``(Chain, x0)`` or a graph workload's ``(function, arguments)``; a chain workload may give
    ``cost_model(sizes) -> per-stage relative costs``; ``footprint(sizes)`` counts the elements
    it allocates (checked against this machine's memory before anything is built)."""

    name: str
    summary: str
    builder: Builder
    parameters: tuple[SizeParameter, ...]
    cost_model: Callable[[dict[str, Any]], list[float]] | None = field(default=None)
    footprint: Callable[[dict[str, Any]], int] | None = field(default=None)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.parameters}

    def resolve(self, sizes: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The defaults overridden by ``sizes``, each checked against its parameter."""
        sizes = dict(sizes or {})
        known = {p.name: p for p in self.parameters}
        unknown = sorted(set(sizes) - set(known))
        if unknown:
            raise ExperimentError(f"workload {self.name!r} has no size {', '.join(unknown)} "
                                  f"(accepted: {', '.join(known)})")
        resolved = self.defaults()
        for name, value in sizes.items():
            resolved[name] = _check_size(self.name, known[name], value)
        if self.footprint is not None:
            _check_fits(self.name, resolved, self.footprint(resolved))
        return resolved
BYTES_PER_ELEMENT = 8  # the builders draw float64 numbers, whatever the dtype
BYTES_PER_STAGE = 64  # a stage's bookkeeping (its entry, plan step, profile) at the very least


def machine_memory() -> int | None:
    """This machine's physical memory in bytes, or None where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def _check_fits(workload: str, sizes: dict[str, Any], elements: int) -> None:
    """Refuse sizes whose parameters, two states and per-stage bookkeeping cannot fit in this
    machine's memory, before anything is allocated (an estimate from below)."""
    needed = elements * BYTES_PER_ELEMENT + sizes["n"] * BYTES_PER_STAGE
    memory = machine_memory()
    if memory is not None and needed > memory:
        described = " ".join(f"{k}={v}" for k, v in sizes.items())
        raise ExperimentError(f"workload {workload!r} with {described} needs at least "
                              f"{needed:.3g} bytes (parameters, two states and {BYTES_PER_STAGE} "
                              f"bytes per stage), more than this machine's {memory:.3g} bytes "
                              f"of memory; choose smaller sizes")


def _check_size(workload: str, parameter: SizeParameter, value: Any) -> Any:
    if parameter.kind is int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ExperimentError(f"workload {workload!r}: size {parameter.name} must be a "
                                  f"positive integer, got {value!r}")
    elif not isinstance(value, parameter.kind):
        raise ExperimentError(f"workload {workload!r}: size {parameter.name} must be "
                              f"{parameter.kind.__name__}, got {value!r}")
    if parameter.choices and value not in parameter.choices:
        raise ExperimentError(f"workload {workload!r}: size {parameter.name} must be one of "
                              f"{', '.join(map(str, parameter.choices))}, got {value!r}")
    return value
def check_dtype(dtype: str) -> Any:
    """The array dtype named ``dtype``; raises ExperimentError unless it is a float type."""
    try:
        array_type = xp.dtype(dtype)
    except TypeError:
        raise ExperimentError(f"unknown dtype {dtype!r}") from None
    if array_type.kind != "f":
        raise ExperimentError(f"dtype must be a float type (float32, float64), got {dtype!r}")
    return array_type
