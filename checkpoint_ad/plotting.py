"""Records → matplotlib figures (PNG). Reads records only; never runs the engine.

One function per figure, each taking a list of :class:`~.records.Record` and returning a
``matplotlib.figure.Figure`` (or None when the records cannot show it):

1. :func:`memory_vs_n`: peak activation bytes and peak stored items against n, log-log, with
   reference slopes n, sqrt(n) and 1;
2. :func:`evaluations_vs_n`: forward evaluations and wall time against n;
3. :func:`tradeoff`: forward cost and wall time against peak bytes at one n, one point per
   configuration, the Pareto front drawn;
4. :func:`timelines`: live activation bytes through one run per policy (the detail point);
5. :func:`schedules`: which state is advanced, taped, stored, restored and reversed when;
6. :func:`predicted_vs_measured`: the model's byte prediction against tracemalloc and the RSS.

Figures are built with the object-oriented API on the Agg canvas (no pyplot, no global state).
"""
from __future__ import annotations

import io
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from PIL import Image
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, MultipleLocator, NullFormatter

from .records import Record

DPI = 90
POLICY_COLORS = {"store_all": "#1f77b4", "recompute_all": "#d62728", "sqrt_n": "#2ca02c",
                 "revolve": "#ff7f0e", "optimal": "#9467bd"}
EXTRA_COLORS = ("#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
STYLES = ("-", "--", ":", "-.")


# -- helpers --------------------------------------------------------------------------------------

def color(policy: str) -> str:
    if policy in POLICY_COLORS:
        return POLICY_COLORS[policy]
    return EXTRA_COLORS[sum(map(ord, policy)) % len(EXTRA_COLORS)]


def format_bytes(value: float, _position: Any = None) -> str:
    """Bytes as B, KiB, MiB or GiB with at most three significant digits."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(value) >= size:
            return f"{value / size:.3g} {unit}"
    return f"{value:.3g} B"


def format_seconds(value: float, _position: Any = None) -> str:
    """Seconds as s, ms or µs with at most three significant digits."""
    if value >= 1:
        return f"{value:.3g} s"
    if value >= 1e-3:
        return f"{value * 1e3:.3g} ms"
    return f"{value * 1e6:.3g} µs"


def _bytes_axis(axis: Any, numticks: int = 8) -> None:
    """A log-2 axis of bytes labelled in KiB/MiB."""
    axis.set_major_locator(LogLocator(base=2, numticks=numticks))
    axis.set_major_formatter(FuncFormatter(format_bytes))
    axis.set_minor_formatter(NullFormatter())


def _log_axis(axis: Any, formatter: Callable[[float, Any], str]) -> None:
    """A log-10 axis with ticks at 1, 2 and 5 times the powers of ten."""
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0), numticks=12))
    axis.set_major_formatter(FuncFormatter(formatter))
    axis.set_minor_formatter(NullFormatter())


def _linear_bytes_axis(axis: Any, top: float) -> None:
    """A linear axis of bytes with 3 to 6 ticks at a power-of-two step."""
    step = 2 ** math.ceil(math.log2(max(top, 1) / 6))
    axis.set_major_locator(MultipleLocator(step))
    axis.set_major_formatter(FuncFormatter(format_bytes))


def format_count(value: float, _position: Any = None) -> str:
    return f"{value:,.0f}" if value >= 1 else f"{value:g}"


def _count_axis(axis: Any) -> None:
    axis.set_major_formatter(FuncFormatter(format_count))
    axis.set_minor_formatter(NullFormatter())


def _n_axis(ax: Any, ns: Sequence[int]) -> None:
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(set(ns)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("n (stages)")


def _figure(width: float, height: float, panels: int = 1, **kwargs: Any) -> tuple[Figure, Any]:
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    axes = figure.subplots(1, panels, **kwargs) if panels > 1 else figure.subplots()
    return figure, axes


def _title(records: Sequence[Record], what: str) -> str:
    first = records[0]
    fixed = {k: v for k, v in first.sizes.items()
             if all(r.sizes.get(k) == v for r in records) and k != "n"}
    sizes = ", ".join(f"{k}={v}" for k, v in fixed.items())
    return f"{first.experiment}: {what}\n{first.workload}" + (f" ({sizes})" if sizes else "")


def series(records: Sequence[Record]) -> dict[str, list[Record]]:
    """Records grouped by configuration label, each sorted by n, in first-seen order."""
    groups: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        groups[record.label].append(record)
    return {label: sorted(group, key=lambda r: r.n) for label, group in groups.items()}


def _styles(groups: dict[str, list[Record]]) -> dict[str, dict[str, Any]]:
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


def _sweeps_n(records: Sequence[Record]) -> bool:
    return len({r.n for r in records}) >= 2


REFERENCE_STYLES = {1.0: (0, (5, 3)), 0.5: (0, (5, 2, 1, 2)), 0.0: (0, (1, 2))}


def _references(ax: Any, groups: dict[str, list[Record]], value: Callable[[Record], float],
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


# -- 1. memory against n ---------------------------------------------------------------------------

def memory_vs_n(records: Sequence[Record]) -> Figure | None:
    """Peak activation bytes (Meter) and peak stored items against n, log-log."""
    if not _sweeps_n(records):
        return None
    groups = series(records)
    styles = _styles(groups)
    figure, (left, right) = _figure(10, 4.2, 2)
    handles = []
    for label, group in groups.items():
        ns = [r.n for r in group]
        handles += left.plot(ns, [r.peak_bytes for r in group], label=label, **styles[label])
        right.plot(ns, [r.peak_stored for r in group], label=label, **styles[label])
    parameters = {r.n: r.parameter_bytes + r.parameter_gradient_bytes for r in records}
    if any(parameters.values()):
        ns = sorted(parameters)
        handles += left.plot(ns, [parameters[n] for n in ns], color="0.3", linewidth=2,
                             alpha=0.5, label="parameters + gradients (not counted above)")
    slopes = ((1.0, "∝ n", "store_all"), (0.5, "∝ √n", "sqrt_n"),
              (0.0, "∝ 1", "recompute_all"))
    _references(left, groups, lambda r: r.peak_bytes, slopes)
    _references(right, groups, lambda r: r.peak_stored, slopes)
    references = [line for line in right.get_lines() if line.get_label().startswith("∝")]
    right.legend(handles=references, fontsize=8, loc="upper left", title="reference slopes",
                 title_fontsize=8)
    all_ns = [r.n for r in records]
    for ax in (left, right):
        _n_axis(ax, all_ns)
        ax.set_yscale("log", base=2)
        ax.grid(True, which="major", alpha=0.3)
    _bytes_axis(left.yaxis)
    left.set_ylabel("peak activation memory (bytes, exact)")
    left.set_title("peak activation bytes (parameters apart)", fontsize=10)
    right.yaxis.set_major_locator(LogLocator(base=2, numticks=8))
    _count_axis(right.yaxis)
    right.set_ylabel("peak stored items (checkpoints + held tapes)")
    right.set_title("peak stored items", fontsize=10)
    left.legend(handles=handles, fontsize=8, loc="upper left")
    figure.suptitle(_title(records, "peak memory against depth"), fontsize=11)
    return figure


# -- 2. evaluations and time against n -------------------------------------------------------------

def evaluations_vs_n(records: Sequence[Record]) -> Figure | None:
    """Forward evaluations (log-log, references n and n²/2) and median wall time against n."""
    if not _sweeps_n(records):
        return None
    groups = series(records)
    styles = _styles(groups)
    figure, (left, right) = _figure(10, 4.2, 2)
    for label, group in groups.items():
        ns = [r.n for r in group]
        left.plot(ns, [r.forward_evals for r in group], label=label, **styles[label])
        medians = [r.wall_s_median for r in group]
        spread = [[m - r.wall_s_min for m, r in zip(medians, group)],
                  [r.wall_s_max - m for m, r in zip(medians, group)]]
        right.errorbar(ns, medians, yerr=spread, label=label, capsize=2, **styles[label])
    all_ns = sorted({r.n for r in records})
    lo, hi = all_ns[0], all_ns[-1]
    left.plot([lo, hi], [lo, hi], color="0.45", linewidth=1, linestyle=REFERENCE_STYLES[1.0],
              zorder=1, label="reference: n")
    left.plot([lo, hi], [x * (x + 1) / 2 for x in (lo, hi)], color="0.45", linewidth=1,
              linestyle=REFERENCE_STYLES[0.0], zorder=1, label="reference: n(n+1)/2")
    for ax in (left, right):
        _n_axis(ax, all_ns)
        ax.set_yscale("log")
        ax.grid(True, which="major", alpha=0.3)
    _count_axis(left.yaxis)
    _log_axis(right.yaxis, format_seconds)
    left.set_ylabel("forward evaluations (stage calls)")
    left.set_title("forward evaluations, first sweep included", fontsize=10)
    right.set_ylabel("wall time (median; bars: min–max)")
    right.set_title(f"forward + reverse wall time ({records[0].repeats} repeats)", fontsize=10)
    left.legend(fontsize=8, loc="upper left")
    figure.suptitle(_title(records, "compute against depth"), fontsize=11)
    return figure


# -- 3. memory-time trade-off ----------------------------------------------------------------------

def tradeoff_n(records: Sequence[Record]) -> int | None:
    """The n of the trade-off plot: the only one, else the largest at which both store_all
    and recompute_all ran, else the largest with most configurations."""
    ns = sorted({r.n for r in records})
    if not ns:
        return None
    if len(ns) == 1:
        return ns[0]
    both = [n for n in ns if {"store_all", "recompute_all"} <= {r.policy for r in records
                                                                if r.n == n}]
    if both:
        return both[-1]
    return max(ns, key=lambda n: (sum(r.n == n for r in records), n))


def pareto_front(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other point beats in both coordinates (smaller is better), by x."""
    front: list[tuple[float, float]] = []
    for x, y in sorted(points):
        if not front or y < front[-1][1]:
            front.append((x, y))
    return front


def _short_params(record: Record) -> str:
    """The parameter values alone (budgets in KiB/MiB), to label a point."""
    return ",".join(format_bytes(v) if "bytes" in k else f"{v:.3g}" if isinstance(v, float)
                    else f"{v}" for k, v in record.params.items())


def tradeoff(records: Sequence[Record], n: int | None = None) -> Figure | None:
    """Forward cost and wall time against peak activation bytes at one n."""
    n = tradeoff_n(records) if n is None else n
    chosen = [r for r in records if r.n == n]
    if len(chosen) < 2:
        return None
    figure, (left, right) = _figure(11, 4.6, 2)
    heterogeneous = any(r.forward_cost != r.forward_evals for r in chosen)
    measures = ((left, lambda r: r.forward_cost,
                 "forward cost (stage cost units; store_all = n)" if heterogeneous
                 else "forward evaluations (stage calls)"),
                (right, lambda r: r.wall_s_median, "wall time (median of the repeats)"))
    by_policy: dict[str, list[Record]] = defaultdict(list)
    for record in chosen:
        by_policy[record.policy].append(record)
    for ax, value, ylabel in measures:
        for k, (policy, group) in enumerate(by_policy.items()):
            group = sorted(group, key=lambda r: r.peak_bytes)
            ax.plot([r.peak_bytes for r in group], [value(r) for r in group],
                    marker=MARKERS[k % len(MARKERS)], linestyle="none", color=color(policy),
                    label=policy, markersize=6, alpha=0.85)
            for r in group:
                if r.params:
                    ax.annotate(_short_params(r), (r.peak_bytes, value(r)), xytext=(3, 3),
                                textcoords="offset points", fontsize=7, color=color(policy))
        front = pareto_front([(r.peak_bytes, value(r)) for r in chosen])
        xs = [x for x, _ in front]
        ys = [y for _, y in front]
        ax.step(xs, ys, where="post", color="black", linewidth=1, alpha=0.6,
                label="Pareto front", zorder=1)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        _bytes_axis(ax.xaxis)
        _log_axis(ax.yaxis, format_count if ax is left else format_seconds)
        ax.set_xlabel("peak activation memory (bytes, exact)")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="major", alpha=0.3)
    left.set_title("compute against memory (labels: slots / segments / budget)", fontsize=10)
    right.set_title("time against memory", fontsize=10)
    left.legend(fontsize=8, loc="upper right")
    figure.suptitle(_title(chosen, f"memory-time trade-off at n = {n}"), fontsize=11)
    return figure


# -- 4. memory timelines ---------------------------------------------------------------------------

def _detail(records: Sequence[Record], field: str) -> list[Record]:
    """One record per policy carrying ``field`` (the first), in record order."""
    chosen: dict[str, Record] = {}
    for record in records:
        if getattr(record, field) and record.policy not in chosen:
            chosen[record.policy] = record
    return list(chosen.values())


def timelines(records: Sequence[Record]) -> Figure | None:
    """Live activation bytes through one run of each policy, forward sweep shaded."""
    chosen = _detail(records, "timeline")
    if not chosen:
        return None
    figure = Figure(figsize=(9, 1.55 * len(chosen) + 1.1), dpi=DPI, layout="constrained")
    axes = figure.subplots(len(chosen), 1, sharey=True, squeeze=False)[:, 0]
    top = max(b for record in chosen for _, b in record.timeline)
    for ax, record in zip(axes, chosen):
        events = [e for e, _ in record.timeline]
        live = [b for _, b in record.timeline]
        ax.fill_between(events, live, step="post", color=color(record.policy), alpha=0.25)
        ax.step(events, live, where="post", color=color(record.policy), linewidth=1)
        if record.forward_events:
            ax.axvspan(0, record.forward_events, color="0.5", alpha=0.08, linewidth=0)
            ax.axvline(record.forward_events, color="0.4", linewidth=0.8, linestyle="--")
        ax.text(0.995, 0.92, f"{record.label}: peak {format_bytes(record.peak_bytes)}, "
                f"{record.forward_evals:,} evaluations", transform=ax.transAxes, ha="right",
                va="top", fontsize=8, bbox={"facecolor": "white", "alpha": 0.8, "linewidth": 0})
        ax.set_xlim(0, max(events[-1], 1))
        ax.set_ylim(0, top * 1.08)
        _linear_bytes_axis(ax.yaxis, top)
        ax.grid(True, alpha=0.3)
    axes[0].set_title("grey band: forward sweep (until the first reversal); then the reverse "
                      "sweep", fontsize=9)
    axes[-1].set_xlabel("Meter events (each hold or release of an array), in execution order")
    figure.supylabel("live activation bytes", fontsize=10)
    figure.suptitle(_title(chosen, f"memory timeline of one run, n = {chosen[0].n}"),
                    fontsize=11)
    return figure


# -- 5. schedule diagrams --------------------------------------------------------------------------

SCHEDULE_COLORS = {"advance": "#4c72b0", "tape": "#dd8452", "reverse": "#c44e52",
                   "checkpoint": "#55a868", "held": "#dd8452", "restore": "0.45"}


def schedule_paths(schedule: Sequence[Sequence[Any]], n: int) -> dict[str, list[Any]]:
    """The drawing of a plan: segments (kind, (t0, y0), (t1, y1)) of the working value and
    bars (kind, state, start, end) of stored states. Time advances 1 per evaluation and per
    backward step; y is the state index j of x_j."""
    time, position = 0.0, 0
    segments: list[tuple[str, tuple[float, float], tuple[float, float]]] = []
    open_bars: dict[tuple[str, int], float] = {("checkpoint", 0): 0.0}
    bars: list[tuple[str, int, float, float]] = []
    for action, stage, end in schedule:
        if action == "advance":
            steps = end - stage + 1
            segments.append(("advance", (time, stage - 1), (time + steps, end)))
            time, position = time + steps, end
        elif action in ("tape", "turn"):
            segments.append(("tape", (time, stage - 1), (time + 1, stage)))
            time += 1
            if action == "tape":
                open_bars[("held", stage)] = time
                position = stage
            else:
                segments.append(("reverse", (time, stage), (time + 1, stage - 1)))
                time, position = time + 1, stage - 1
        elif action == "backward":
            start = open_bars.pop(("held", stage), time)
            bars.append(("held", stage, start, time))
            segments.append(("reverse", (time, stage), (time + 1, stage - 1)))
            time, position = time + 1, stage - 1
        elif action == "save":
            open_bars[("checkpoint", stage)] = time
        elif action == "free":
            bars.append(("checkpoint", stage, open_bars.pop(("checkpoint", stage), time), time))
        elif action == "restore":
            segments.append(("restore", (time, position), (time, stage)))
            position = stage
    for (kind, state), start in open_bars.items():
        bars.append((kind, state, start, time))
    return {"segments": segments, "bars": bars, "length": [time]}


def schedules(records: Sequence[Record]) -> Figure | None:
    """One schedule diagram per policy (the detail point)."""
    chosen = _detail(records, "schedule")
    if not chosen:
        return None
    figure = Figure(figsize=(9, 1.9 * len(chosen) + 1.2), dpi=DPI, layout="constrained")
    axes = figure.subplots(len(chosen), 1, squeeze=False)[:, 0]
    for ax, record in zip(axes, chosen):
        drawing = schedule_paths(record.schedule, record.n)
        for kind, state, start, end in drawing["bars"]:
            ax.plot([start, end], [state, state], color=SCHEDULE_COLORS[kind],
                    linewidth=4 if kind == "checkpoint" else 2.5, alpha=0.45,
                    solid_capstyle="butt")
        for kind, (t0, y0), (t1, y1) in drawing["segments"]:
            ax.plot([t0, t1], [y0, y1], color=SCHEDULE_COLORS[kind],
                    linewidth=0.8 if kind == "restore" else 1.3,
                    linestyle=":" if kind == "restore" else "-")
        ax.set_xlim(0, drawing["length"][0])
        ax.set_ylim(-0.5, record.n + 0.5)
        ax.set_ylabel("state j")
        ax.text(0.995, 0.95, f"{record.label}: {record.forward_evals:,} evaluations, "
                f"peak stored {record.peak_stored}", transform=ax.transAxes, ha="right",
                va="top", fontsize=8, bbox={"facecolor": "white", "alpha": 0.8, "linewidth": 0})
        ax.grid(True, alpha=0.2)
    legend = [Line2D([], [], color=SCHEDULE_COLORS["advance"], label="advance (plain evaluation)"),
              Line2D([], [], color=SCHEDULE_COLORS["tape"], label="taped evaluation"),
              Line2D([], [], color=SCHEDULE_COLORS["reverse"], label="backward step"),
              Line2D([], [], color=SCHEDULE_COLORS["restore"], linestyle=":", label="restore"),
              Line2D([], [], color=SCHEDULE_COLORS["checkpoint"], linewidth=4, alpha=0.45,
                     label="checkpoint x_j stored"),
              Line2D([], [], color=SCHEDULE_COLORS["held"], linewidth=2.5, alpha=0.45,
                     label="held tape of stage j")]
    figure.legend(handles=legend, loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    axes[-1].set_xlabel("time (one unit per stage evaluation and per backward step)")
    figure.suptitle(_title(chosen, f"schedules at n = {chosen[0].n}"), fontsize=11)
    return figure


# -- 6. model against measurement ----------------------------------------------------------------

def predicted_vs_measured(records: Sequence[Record]) -> Figure | None:
    """Predicted peak bytes against tracemalloc's peak and the RSS increase, identity drawn."""
    usable = [r for r in records if r.predicted_peak_bytes > 0]
    if not usable:
        return None
    figure, (left, right) = _figure(10, 5.2, 2)
    measures = ((left, "measured_peak_bytes", "tracemalloc peak over the run (bytes)"),
                (right, "rss_high_water_increase_bytes",
                 "RSS peak increase (bytes, kernel high-water mark)"))
    if all(r.rss_high_water_increase_bytes is None for r in usable):
        measures = (measures[0], (right, "rss_peak_increase_bytes",
                                  "RSS peak increase (bytes, memory-profiler samples)"))
    by_policy: dict[str, list[Record]] = defaultdict(list)
    for record in usable:
        by_policy[record.policy].append(record)
    for ax, field, ylabel in measures:
        values, hidden = [], 0
        for k, (policy, group) in enumerate(by_policy.items()):
            pairs = [(r.predicted_peak_bytes, getattr(r, field)) for r in group
                     if getattr(r, field) and getattr(r, field) > 0]
            hidden += len(group) - len(pairs)
            values += [v for pair in pairs for v in pair]
            ax.plot([p for p, _ in pairs], [m for _, m in pairs], linestyle="none",
                    marker=MARKERS[k % len(MARKERS)], color=color(policy), label=policy,
                    alpha=0.8)
        ax.set_xlabel("predicted peak activation bytes (plan run symbolically)")
        ax.set_ylabel(ylabel)
        if hidden:
            ax.text(0.98, 0.02, f"{hidden} run(s) with no measurable increase not shown",
                    transform=ax.transAxes, ha="right", va="bottom", fontsize=7, color="0.3")
        if not values:
            continue
        lo, hi = min(values) / 1.3, max(values) * 1.3
        ax.plot([lo, hi], [lo, hi], color="black", linewidth=0.9, label="measured = predicted")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        _bytes_axis(ax.xaxis, numticks=6)
        _bytes_axis(ax.yaxis, numticks=6)
        ax.grid(True, which="major", alpha=0.3)
        ax.set_aspect("equal", adjustable="box")
    left.set_title("tracemalloc also sees temporaries inside a stage", fontsize=9)
    right.set_title("the RSS also sees allocator slack and page granularity", fontsize=9)
    left.legend(fontsize=8, loc="upper left")
    figure.suptitle(_title(usable, "predicted against measured peak memory"), fontsize=11)
    return figure


# -- all figures -----------------------------------------------------------------------------------

FIGURES: dict[str, tuple[Callable[[Sequence[Record]], Figure | None], str]] = {
    "memory_vs_n": (memory_vs_n, "Peak memory against n"),
    "evaluations_vs_n": (evaluations_vs_n, "Forward evaluations and wall time against n"),
    "tradeoff": (tradeoff, "Memory-time trade-off"),
    "timeline": (timelines, "Memory timeline of one run per policy"),
    "schedule": (schedules, "Schedules"),
    "predicted_vs_measured": (predicted_vs_measured, "Predicted against measured peak memory"),
}


def save_figures(records: Sequence[Record], out_dir: str | Path) -> dict[str, Path]:
    """Write every figure the records can show as ``<name>.png`` under ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, (function, _caption) in FIGURES.items():
        figure = function(records)
        if figure is None:
            continue
        path = out / f"{name}.png"
        save_png(figure, path)
        written[name] = path
    return written


def save_png(figure: Figure, path: Path, colors: int = 256) -> None:
    """Save ``figure`` as a palette PNG: ``colors`` colors look the same as full colour for
    these flat plots at a third of the bytes (the reference report is committed)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    buffer.seek(0)
    with Image.open(buffer) as image:
        image.convert("RGB").quantize(colors=colors).save(path, optimize=True)
