"""The memory-time trade-off at one n: forward cost and wall time against peak activation
bytes, one point per configuration, the Pareto front drawn."""
from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure

from ..records.schema import Record, group_records
from .style import (MARKERS, bytes_axis, color, figure_title, format_bytes, format_count,
                    format_seconds, log_axis, new_figure)


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
    figure, (left, right) = new_figure(11, 4.6, 2)
    heterogeneous = any(r.forward_cost != r.forward_evals for r in chosen)
    measures = ((left, lambda r: r.forward_cost,
                 "forward cost (stage cost units; store_all = n)" if heterogeneous
                 else "forward evaluations (stage calls)"),
                (right, lambda r: r.wall_s_median, "wall time (median of the repeats)"))
    by_policy = group_records(chosen, lambda r: r.policy)
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
        bytes_axis(ax.xaxis)
        log_axis(ax.yaxis, format_count if ax is left else format_seconds)
        ax.set_xlabel("peak activation memory (bytes, exact)")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="major", alpha=0.3)
    left.set_title("compute against memory (labels: slots / segments / budget)", fontsize=10)
    right.set_title("time against memory", fontsize=10)
    left.legend(fontsize=8, loc="upper right")
    figure.suptitle(figure_title(chosen, f"memory-time trade-off at n = {n}"), fontsize=11)
    return figure
