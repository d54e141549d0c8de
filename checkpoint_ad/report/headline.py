"""Headlines: what a reader would quote about one experiment's trade-off, as at most
:data:`MOST_BULLETS` bullets of one short sentence each (the numbers stay; the figures and the
table hold the rest).

Pure functions over :class:`Point`, which any family of records can give: a configuration's
label and policy, its time, its exact activation peak, the predicted peak and the measured
(tracemalloc) peak. The bullets say which configurations are on the Pareto front of time
against activation peak, what each policy on it holds against the reference (store_all) and at
what time, and where the measured peak departs most from the prediction. For a workload with a
published claim (:data:`CLAIMS`), they also read the measured front at the claim's time ratio
and memory fraction (:func:`fraction_at_time`, :func:`time_at_fraction`) and say why the
numbers differ where they do. Graph records have their own headline (:mod:`.graphs`).

Units: bytes, seconds; *fraction* is a peak over the reference's peak, *ratio* a time over the
reference's time.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..plotting.style import format_bytes, format_seconds
from ..records.schema import Record, configuration_label

REFERENCE = "store_all"
MOST_BULLETS = 6  # a headline is read at a glance: the front, savings, prediction, one claim


@dataclass(frozen=True)
class Point:
    """One measured configuration: ``label`` (``revolve(slots=8)``), ``policy`` (its family
    name), ``time`` (seconds, the median of the timed repeats), ``peak`` (bytes, the exact
    activation peak), ``predicted`` (bytes, the peak predicted before the run), ``measured``
    (bytes, tracemalloc's peak over the run, or None) and ``cost`` (forward cost, in stage
    evaluations)."""

    label: str
    policy: str
    time: float
    peak: int
    predicted: int
    measured: int | None
    cost: float


@dataclass(frozen=True)
class Claim:
    """A published memory-time trade-off: at ``time_ratio`` times the time of storing
    everything, ``memory_fraction`` of its memory, on ``workload`` over ``steps`` steps, in
    ``setting`` (the paper's model and machine, a few words)."""

    source: str
    workload: str
    steps: int
    memory_fraction: float
    time_ratio: float
    setting: str


# Gruslys et al.'s memory is an LSTM's stored hidden and internal states, planned by their
# dynamic programme (BPTT-MSM, like optimal: a stored internal state is a held tape).
CLAIMS = (Claim("Gruslys et al. (2016)", "rnn", 1000, 0.05, 1.33, "an LSTM on a GPU"),)


def point_of(record: Record) -> Point:
    """A chain record as a point; byte-valued parameters (budgets) shown in binary units."""
    params = {key: format_bytes(value) if "bytes" in key else value
              for key, value in record.params.items()}
    return Point(configuration_label(record.policy, params), record.policy,
                 record.wall_s_median, record.peak_bytes, record.predicted_peak_bytes,
                 record.measured_peak_bytes, record.forward_cost)


def pareto(points: Sequence[Point], peak: Callable[[Point], float] = lambda p: p.peak
           ) -> list[Point]:
    """The points no other point beats in both time and ``peak`` (smaller is better), by
    increasing peak; of equal points, the first."""
    front: list[Point] = []
    for point in sorted(points, key=lambda p: (peak(p), p.time)):
        if not front or point.time < front[-1].time:
            front.append(point)
    return front


def trade_curve(points: Sequence[Point], reference: Point,
                peak: Callable[[Point], float] = lambda p: p.peak) -> list[tuple[float, float]]:
    """The Pareto front as (memory fraction, time ratio) pairs against ``reference``, by
    increasing fraction (and so decreasing ratio)."""
    return [(peak(p) / peak(reference), p.time / reference.time)
            for p in pareto(points, peak)]


def interpolate(points: Sequence[tuple[float, float]], x: float) -> float | None:
    """y at ``x``, linearly between the two of ``points`` (sorted by increasing x) around it;
    None outside the measured xs."""
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if x0 <= x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return points[0][1] if len(points) == 1 and points[0][0] == x else None


def fraction_at_time(curve: Sequence[tuple[float, float]], ratio: float) -> float | None:
    """The memory fraction at time ratio ``ratio`` on the front ``curve`` (fractions up, time
    ratios down), interpolated linearly; None outside the measured ratios."""
    return interpolate([(t, f) for f, t in reversed(curve)], ratio)


def time_at_fraction(curve: Sequence[tuple[float, float]], fraction: float) -> float | None:
    """The time ratio at memory fraction ``fraction`` on the front ``curve``, interpolated
    linearly; None outside the measured fractions."""
    return interpolate(curve, fraction)


def recompute_share(points: Sequence[Point], reference: Point) -> float | None:
    """The time one extra forward evaluation of every stage adds, as a fraction of the
    reference's time: the least-squares slope of time against forward cost, times the
    reference's cost, over its time. None with fewer than two distinct costs."""
    costs = [p.cost for p in points]
    if len(set(costs)) < 2:
        return None
    mean_cost = sum(costs) / len(costs)
    mean_time = sum(p.time for p in points) / len(points)
    slope = (sum((p.cost - mean_cost) * (p.time - mean_time) for p in points)
             / sum((c - mean_cost) ** 2 for c in costs))
    return slope * reference.cost / reference.time


# -- bullets: one short sentence each -----------------------------------------------------------

def _span(group: Sequence[Point], reference: Point) -> str:
    """``revolve 66 KiB–162 KiB at 3.95x–2.42x`` (peaks, then times over the reference's), or
    ``sqrt_n(segments=32) 582 KiB at 0.96x`` for a policy with one point on the front."""
    low, high = group[0], group[-1]
    if low is high:
        return f"{low.label} {format_bytes(low.peak)} at {low.time / reference.time:.2f}x"
    return (f"{low.policy} {format_bytes(low.peak)}–{format_bytes(high.peak)} at "
            f"{low.time / reference.time:.2f}x–{high.time / reference.time:.2f}x")


def front_sentences(points: Sequence[Point], reference: Point, where: str) -> list[str]:
    """Which configurations are on the Pareto front; then, against the reference, each other
    policy on it from its least-memory point to its fastest (peak, and time as a multiple of
    the reference's)."""
    front = pareto(points)
    by_policy: dict[str, list[Point]] = {}
    for point in front:
        by_policy.setdefault(point.policy, []).append(point)
    counts = ", ".join(f"{policy} ({len(group)})" for policy, group in by_policy.items())
    absent = sorted({p.policy for p in points} - set(by_policy))
    sentences = [f"{where}, {len(front)} of {len(points)} configurations are on the Pareto "
                 f"front of time against activation peak: {counts}"
                 + (f"; {', '.join(absent)} never" if absent else "") + "."]
    spans = [_span(group, reference) for policy, group in by_policy.items()
             if policy != reference.policy]
    if spans:
        sentences.append(f"Peak and time against {reference.label}'s "
                         f"{format_bytes(reference.peak)} at {format_seconds(reference.time)}: "
                         + "; ".join(spans) + ".")
    return sentences


def prediction_sentence(points: Sequence[Point]) -> str:
    """Whether predictions equal the exact peaks, and where the measured peak departs most
    (and least) from the prediction, relative to it."""
    exact = sum(p.predicted == p.peak for p in points)
    text = f"Predicted peaks are exact in {exact} of {len(points)} configurations"
    traced = [p for p in points if p.measured is not None and p.predicted > 0]
    if not traced:
        return text + "; none has a measured peak."
    def excess(p: Point) -> float:
        return p.measured / p.predicted - 1
    most, least = max(traced, key=excess), min(traced, key=excess)
    return (text + f"; tracemalloc's peak departs most at {most.label} "
            f"({format_bytes(most.measured)} against {format_bytes(most.predicted)}, "
            f"{100 * excess(most):+.0f}%), least at {least.label} ({100 * excess(least):+.0f}%).")


def _fraction_reading(curve: Sequence[tuple[float, float]], ratio: float) -> str:
    """``4.2% at 1.33x`` (of store_all's peak, at that multiple of its time), or why the front
    has no such point."""
    fraction = fraction_at_time(curve, ratio)
    if fraction is not None:
        return f"{fraction:.1%} at {ratio:.2f}x"
    least, slowest = curve[0]
    if slowest < ratio:
        return (f"at most {least:.1%} at {ratio:.2f}x (its least-memory point takes only "
                f"{slowest:.2f}x)")
    return f"no point at {ratio:.2f}x (it is slower everywhere)"


def _time_reading(curve: Sequence[tuple[float, float]], fraction: float) -> str:
    """``1.18x at 5%`` (of store_all's time, at that fraction of its peak), or why the front
    has no such point."""
    ratio = time_at_fraction(curve, fraction)
    if ratio is not None:
        return f"{ratio:.2f}x at {fraction:.0%}"
    least, slowest = curve[0]
    if least > fraction:
        return f"no point at {fraction:.0%} (its least is {least:.1%}, at {slowest:.2f}x)"
    return f"{curve[-1][1]:.2f}x at {fraction:.0%}"


def claim_sentences(points: Sequence[Point], reference: Point, claim: Claim, n: int
                    ) -> list[str]:
    """The measured front read at the claim's time ratio and memory fraction, and why the
    numbers differ: what one recomputed sweep costs here, and what is counted."""
    curve = trade_curve(points, reference)
    traced = [p for p in points if p.measured is not None]
    sentences = [
        f"{claim.source} report {claim.memory_fraction:.0%} of the memory at "
        f"{claim.time_ratio:.2f}x the time on {claim.steps:,} steps; on {n:,} steps here, the "
        f"measured front gives {_fraction_reading(curve, claim.time_ratio)} and "
        f"{_time_reading(curve, claim.memory_fraction)}."]
    share = recompute_share(points, reference)
    if share is not None and 0 < share < 1:
        paid = claim.time_ratio - 1
        sentences.append(
            f"One recomputed forward sweep costs {share:.0%} of store_all's time here, where "
            f"the paper's +{paid:.0%} buys about one: the reverse sweep takes "
            f"{(1 - share) / share:.1f}x the forward here, about "
            f"{(1 - paid) / paid:.1f}x for {claim.setting}.")
    if len(traced) == len(points) and reference.measured:
        whole = trade_curve(points, reference, lambda p: p.measured or 0)
        sentences.append(
            f"Counting tracemalloc's peak (a step's temporaries and the loss too) instead of "
            f"the exact activation peak gives {_fraction_reading(whole, claim.time_ratio)}.")
    return sentences


def headline(records: Sequence[Record]) -> list[str]:
    """The headline bullets of one experiment's records at its largest n with a store_all
    record: the Pareto front, peaks and times against store_all, prediction against
    measurement, and the first published claim on the workload (so at most
    :data:`MOST_BULLETS`). Empty without a store_all record."""
    references = [r for r in records if r.policy == REFERENCE]
    if not references:
        return []
    largest = max(references, key=lambda r: r.n)
    chosen = [r for r in records if r.workload == largest.workload and r.sizes == largest.sizes]
    points = [point_of(r) for r in chosen]
    reference = point_of(largest)
    bullets = front_sentences(points, reference, f"At n = {largest.n:,}")
    bullets.append(prediction_sentence(points))
    claim = next((c for c in CLAIMS if c.workload == largest.workload), None)
    if claim is not None:
        bullets += claim_sentences(points, reference, claim, largest.n)
    return bullets
