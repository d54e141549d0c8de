"""sqrt_n: Chen et al. (2016) segment checkpointing (2n evaluations, peak k + floor(n/k) - 1).

The stages 1..n are cut into k contiguous segments whose lengths differ by at most one, the
longer ones first (like ``numpy.array_split``); a segment from ``x_first`` to ``x_last`` holds
stages first+1..last. The forward sweep advances through all n stages and saves the start of
every segment (``x_0`` is stored already). The reverse sweep takes the segments from last to
first: restore the start, tape the first L-1 stages (held), turn the last stage, consume the held
tapes, free the start (never ``x_0``). Every stage is evaluated once in each sweep.

Peak: while the last segment (length floor(n/k)) is reversed, all k starts and its
floor(n/k) - 1 held tapes are stored; earlier segments are longer by at most one but run with
fewer starts left, so they never exceed that.
"""
from __future__ import annotations

from itertools import pairwise
from math import isqrt

from ...plans.limits import Footprint, plan_bytes, require
from ..costs import ChainCosts
from ..plans import Plan, PlanBuilder
from ...plans.registry import Parameter, PolicySpec, positive_int


def ceil_sqrt(n: int) -> int:
    """The exact integer ceil(sqrt(n)) for n >= 1 (no float rounding)."""
    return isqrt(n - 1) + 1


def segment_boundaries(n: int, segments: int) -> list[int]:
    """The k + 1 boundaries 0 = b_0 < b_1 < ... < b_k = n of k = ``segments`` (<= n) segments.

    Segment i holds stages b_i + 1..b_{i+1}; the first ``n % k`` segments have one stage more.
    """
    length, longer = divmod(n, segments)
    boundaries = [0]
    for index in range(segments):
        boundaries.append(boundaries[-1] + length + (1 if index < longer else 0))
    return boundaries


def footprint(n: int, segments: object = None) -> Footprint:
    """What planning n stages in k segments takes: 2n + 3k steps at most, the k boundaries
    kept twice over (a list of pairs), and k + n/k stored items."""
    k = min(segments if isinstance(segments, int) and segments > 0 else ceil_sqrt(n), n)
    steps = 2 * n + 3 * k
    return Footprint(plan_bytes(n, steps, k + n // k) + 200 * k, steps)
def check_sqrt_n(segments: int | None = None) -> int | None:
    """``segments``: None (the default) or a positive integer."""
    return None if segments is None else positive_int("sqrt_n", "segments", segments)


def plan_sqrt_n(costs: ChainCosts, segments: int | None = None) -> Plan:
    n = costs.n
    segments = check_sqrt_n(segments)
    segments = min(ceil_sqrt(n) if segments is None else segments, n)
    require("sqrt_n", f"n={n:,} in {segments:,} segments", n, lambda m: footprint(m, segments))
    pieces = list(pairwise(segment_boundaries(n, segments)))
    builder = PlanBuilder(n)
    for first, last in pieces:
        if first:
            builder.save(first)
        builder.advance(first + 1, last)
    for first, last in reversed(pieces):
        _reverse_segment(builder, first, last)
    peak = segments + n // segments - 1
    return builder.build("sqrt_n", {"segments": segments}, slots=peak)


def _reverse_segment(builder: PlanBuilder, first: int, last: int) -> None:
    """Reverse stages first+1..last from the stored start ``x_first``, then free it."""
    builder.restore(first)
    for stage in range(first + 1, last):
        builder.tape(stage)
    builder.turn(last)
    for stage in range(last - 1, first, -1):
        builder.backward(stage)
    if first:
        builder.free(first)


SPEC = PolicySpec(
    "sqrt_n", "Chen et al. segments: 2n compute, O(sqrt(n)) memory", plan_sqrt_n,
    (Parameter("segments", int, None,
               "number of segments k (default ceil(sqrt(n)); values above n are clamped to n)"),),
    check_sqrt_n)
