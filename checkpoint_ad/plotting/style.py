"""What every figure shares: colours and markers, number formats, axes, figure and title,
records grouped into series, reference slopes."""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MultipleLocator, NullFormatter

from ..records.schema import Record, group_records

DPI = 90
POLICY_COLORS = {"store_all": "#1f77b4", "recompute_all": "#d62728", "sqrt_n": "#2ca02c",
                 "revolve": "#ff7f0e", "optimal": "#9467bd", "checkmate": "#e377c2",
                 "checkmate_lp": "#bcbd22", "dtr": "#8c564b", "chen": "#17becf",
                 "save_ops": "#7f7f7f", "cpsat": "#2ca02c"}  # sqrt_n's: chains only
EXTRA_COLORS = ("#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
STYLES = ("-", "--", ":", "-.")


def color(policy: str) -> str:
    """The policy's colour; a configuration label (``dtr(heuristic=lru)``) takes its policy's."""
    policy = policy.split("(", 1)[0]
    if policy in POLICY_COLORS:
        return POLICY_COLORS[policy]
    return EXTRA_COLORS[sum(map(ord, policy)) % len(EXTRA_COLORS)]


BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def format_bytes(value: float, _position: Any = None) -> str:
    """Bytes in the largest binary unit (B, KiB, ... EiB) that leaves at least 1, with three
    significant digits but never fewer than the whole part and never an exponent: 1023 B,
    1 KiB, 1.5 KiB, 1000 KiB, 1024 KiB (1048575 B, rounded), 931 GiB (10**12 B)."""
    magnitude = abs(value)
    power = 0
    while magnitude >= 1024 and power < len(BYTE_UNITS) - 1:
        magnitude /= 1024
        power += 1
    decimals = 0 if magnitude >= 100 else 1 if magnitude >= 10 else 2
    text = f"{magnitude:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    sign = "-" if value < 0 and text != "0" else ""
    return f"{sign}{text} {BYTE_UNITS[power]}"


def format_seconds(value: float, _position: Any = None) -> str:
    """Seconds as s, ms or µs with at most three significant digits."""
    if value >= 1:
        return f"{value:.3g} s"
    if value >= 1e-3:
        return f"{value * 1e3:.3g} ms"
    return f"{value * 1e6:.3g} µs"


def bytes_axis(axis: Any, numticks: int = 8) -> None:
    """A log-2 axis of bytes labelled in KiB/MiB."""
    axis.set_major_locator(LogLocator(base=2, numticks=numticks))
    axis.set_major_formatter(FuncFormatter(format_bytes))
    axis.set_minor_formatter(NullFormatter())


def log_axis(axis: Any, formatter: Callable[[float, Any], str]) -> None:
    """A log-10 axis with ticks at 1, 2 and 5 times the powers of ten."""
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0), numticks=12))
    axis.set_major_formatter(FuncFormatter(formatter))
    axis.set_minor_formatter(NullFormatter())


def linear_bytes_axis(axis: Any, top: float) -> None:
    """A linear axis of bytes with 3 to 6 ticks at a power-of-two step."""
    step = 2 ** math.ceil(math.log2(max(top, 1) / 6))
    axis.set_major_locator(MultipleLocator(step))
    axis.set_major_formatter(FuncFormatter(format_bytes))


def format_count(value: float, _position: Any = None) -> str:
    return f"{value:,.0f}" if value >= 1 else f"{value:g}"


def count_axis(axis: Any) -> None:
    axis.set_major_formatter(FuncFormatter(format_count))
    axis.set_minor_formatter(NullFormatter())


def n_axis(ax: Any, ns: Sequence[int]) -> None:
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(set(ns)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("n (stages)")


def new_figure(width: float, height: float, panels: int = 1, **kwargs: Any) -> tuple[Figure, Any]:
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    axes = figure.subplots(1, panels, **kwargs) if panels > 1 else figure.subplots()
    return figure, axes


def figure_title(records: Sequence[Record], what: str) -> str:
    first = records[0]
    fixed = {k: v for k, v in first.sizes.items()
             if all(r.sizes.get(k) == v for r in records) and k != "n"}
    sizes = ", ".join(f"{k}={v}" for k, v in fixed.items())
    return f"{first.experiment}: {what}\n{first.workload}" + (f" ({sizes})" if sizes else "")


def series(records: Sequence[Record]) -> dict[str, list[Record]]:
    """Records grouped by configuration label, each sorted by n, in first-seen order."""
    groups = group_records(records, lambda r: r.label)
    return {label: sorted(group, key=lambda r: r.n) for label, group in groups.items()}


def styles_of(groups: dict[str, list[Record]]) -> dict[str, dict[str, Any]]:
    """Color by policy; marker and line style vary among configurations of one policy."""
    seen: dict[str, int] = defaultdict(int)
    styles = {}
    for label, group in groups.items():
        policy = group[0].policy
        k = seen[policy]
        seen[policy] += 1
        styles[label] = {"color": color(policy), "marker": MARKERS[k % len(MARKERS)],
                         "linestyle": STYLES[k % len(STYLES)]}
    return styles


def sweeps_n(records: Sequence[Record]) -> bool:
    return len({r.n for r in records}) >= 2


REFERENCE_STYLES = {1.0: (0, (5, 3)), 0.5: (0, (5, 2, 1, 2)), 0.0: (0, (1, 2))}


def draw_references(ax: Any, groups: dict[str, list[Record]], value: Callable[[Record], float],
                slopes: Sequence[tuple[float, str, str]]) -> None:
    """Grey reference lines y ∝ n**power through the largest-n point of a matching policy
    (or the lowest largest-n point when that policy is absent), with a legend of their own."""
    ns = [r.n for group in groups.values() for r in group]
    lo, hi = min(ns), max(ns)
    lasts = [group[-1] for group in groups.values()]
    for power, label, policy in slopes:
        match = [r for r in lasts if r.policy == policy]
        anchor = match[0] if match else min(lasts, key=value)
        ys = [value(anchor) * (x / anchor.n) ** power for x in (lo, hi)]
        ax.plot([lo, hi], ys, color="0.45", linewidth=1,
                linestyle=REFERENCE_STYLES.get(power, "--"), zorder=1, label=label)
