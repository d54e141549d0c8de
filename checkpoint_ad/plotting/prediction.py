"""The model against measurement: the predicted peak bytes against tracemalloc's peak and the
RSS increase, the identity drawn."""
from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure

from ..records.schema import Record, group_records
from .style import MARKERS, bytes_axis, color, figure_title, new_figure


def predicted_vs_measured(records: Sequence[Record]) -> Figure | None:
    """Predicted peak bytes against tracemalloc's peak and the RSS increase, identity drawn."""
    usable = [r for r in records if r.predicted_peak_bytes > 0]
    if not usable:
        return None
    figure, (left, right) = new_figure(10, 5.2, 2)
    measures = ((left, "measured_peak_bytes", "tracemalloc peak over the run (bytes)"),
                (right, "rss_high_water_increase_bytes",
                 "RSS peak increase (bytes, kernel high-water mark)"))
    if all(r.rss_high_water_increase_bytes is None for r in usable):
        measures = (measures[0], (right, "rss_peak_increase_bytes",
                                  "RSS peak increase (bytes, memory-profiler samples)"))
    by_policy = group_records(usable, lambda r: r.policy)
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
        bytes_axis(ax.xaxis, numticks=6)
        bytes_axis(ax.yaxis, numticks=6)
        ax.grid(True, which="major", alpha=0.3)
        ax.set_aspect("equal", adjustable="box")
    left.set_title("tracemalloc also sees temporaries inside a stage", fontsize=9)
    right.set_title("the RSS also sees allocator slack and page granularity", fontsize=9)
    left.legend(fontsize=8, loc="upper left")
    figure.suptitle(figure_title(usable, "predicted against measured peak memory"), fontsize=11)
    return figure
