"""What a chain planner may take before it starts: memory, and for the DP its table work.

Every chain planner estimates, from n and its parameters alone, the bytes it will hold (the
chain's costs, its own tables, the plan's steps and what checking the plan keeps) and refuses,
before allocating anything, a chain above the limit, in one line that names the estimate and
the largest n that fits. The ``optimal`` DP also counts its table operations, which grow as n³.

The limits default to half of this machine's physical memory and 10¹¹ table operations (a
few minutes on one core); :func:`limited` overrides them for a block of code, e.g.
``with limited(memory_bytes=2**30): make_plan(...)`` (the CLI's ``plan --planner-memory``).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from ..errors import PolicyError

MEMORY_FRACTION = 0.5  # of the machine's physical memory, by default
FALLBACK_MEMORY = 4 * 2**30  # where the machine does not say how much it has
DEFAULT_OPERATIONS = 10**11
COST_BYTES_PER_STAGE = 32  # a unit chain's ChainCosts: four tuples of n pointers
STEP_BYTES = 18  # a plan step: three machine arrays (1 + 8 + 8 bytes), and their slack
STORED_ITEM_BYTES = 100  # checking a plan: one entry of a set of stored indices


@dataclass(frozen=True)
class Limits:
    """The most a planner may take: ``memory_bytes`` held at once, ``operations`` of DP work."""

    memory_bytes: int
    operations: int
    source: str = "the default: half of this machine's memory"


@dataclass(frozen=True)
class Footprint:
    """What planning (and checking the plan) would take: bytes held at the peak, DP operations,
    and the plan's steps (an upper bound)."""

    bytes: int
    steps: int
    operations: int = 0


def machine_memory() -> int:
    """This machine's physical memory in bytes (a fixed 4 GiB where it cannot be read)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return FALLBACK_MEMORY


_override: Limits | None = None


def current() -> Limits:
    """The limits in force: those set by :func:`limited`, else the defaults."""
    if _override is not None:
        return _override
    return Limits(int(machine_memory() * MEMORY_FRACTION), DEFAULT_OPERATIONS)


@contextmanager
def limited(memory_bytes: int | None = None, operations: int | None = None) -> Iterator[Limits]:
    """Plan under other limits inside the ``with`` block (None keeps the current one)."""
    global _override
    previous = _override
    chosen = current()
    if memory_bytes is not None:
        chosen = replace(chosen, memory_bytes=memory_bytes, source="as set")
    if operations is not None:
        chosen = replace(chosen, operations=operations, source="as set")
    _override = chosen
    try:
        yield chosen
    finally:
        _override = previous


def unit_chain_bytes(n: int) -> int:
    """Bytes of the costs of an n-stage chain of unit stages."""
    return COST_BYTES_PER_STAGE * (n + 1)


def plan_bytes(n: int, steps: int, stored: int) -> int:
    """Bytes to hold a plan of ``steps`` steps for a unit chain and check it (``stored`` items
    at its peak)."""
    return unit_chain_bytes(n) + STEP_BYTES * steps + STORED_ITEM_BYTES * stored


def largest_n(fits: Callable[[int], bool]) -> int:
    """The largest n >= 1 with ``fits(n)`` (0 if none), by doubling then bisection; ``fits``
    is taken to hold up to some n and fail above it."""
    if not fits(1):
        return 0
    low, high = 1, 2
    while fits(high):
        low, high = high, 2 * high
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    return low


def within(footprint: Footprint, limits: Limits) -> bool:
    return footprint.bytes <= limits.memory_bytes and footprint.operations <= limits.operations


def require(policy: str, what: str, n: int, estimate: Callable[[int], Footprint]) -> Footprint:
    """Refuse (PolicyError, one line) if ``estimate(n)`` is above the current limits.

    ``what`` describes the request (e.g. ``"n=100,000 with slots=10"``); the message names the
    estimate, the limit and the largest n whose estimate is within it.
    """
    limits = current()
    needs = estimate(n)
    if within(needs, limits):
        return needs
    largest = largest_n(lambda m: within(estimate(m), limits))
    fits = f"the largest n that fits is {largest:,}" if largest else "no n fits"
    if needs.bytes > limits.memory_bytes:
        over = (f"needs about {needs.bytes:,} bytes, more than the planner memory limit of "
                f"{limits.memory_bytes:,} bytes ({limits.source})")
    else:
        over = (f"needs about {needs.operations:,} table operations, more than the limit of "
                f"{limits.operations:,} ({limits.source})")
    raise PolicyError(f"policy {policy!r}: planning {what} {over}; {fits}")
