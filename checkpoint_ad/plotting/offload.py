"""Figures of offload (docs/offload_model.md): a plan's time over store_all's against the device
budget, one line per bandwidth, and against the bandwidth at one budget, where the time of the
recompute-only plan is the line offload must beat.

They take plain rows: (bandwidth in bytes per cost unit, budget in bytes, time over
store_all's, and for the bandwidth sweep whether the plan moved any value).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from matplotlib.figure import Figure

from .style import DPI, format_bytes

BANDWIDTH_COLORS = ("#444444", "#9ecae1", "#4292c6", "#08519c", "#31a354", "#e6550d",
                    "#756bb1", "#a50f15")


def bandwidth_label(bandwidth: float, infinite: float | None = None) -> str:
    """``0 (recompute only)``, ``512`` or ``1e+12 (effectively infinite)`` when ``bandwidth``
    is ``infinite`` (bytes per cost unit, the unit left to the caller)."""
    if not bandwidth:
        return "0 (recompute only)"
    return f"{bandwidth:g}" + (" (effectively infinite)" if infinite and bandwidth >= infinite
                               and bandwidth >= 1e9 else "")


GRAPH_UNIT = ("op time", "cost units: one op = 1, a backward step = 2")


def offload_figure(budget_rows: Sequence[dict], sweep_rows: Sequence[dict], title: str,
                   sweep_budget: float | None, infinite: float | None = None,
                   unit: tuple[str, str] = GRAPH_UNIT) -> Figure:
    """Two panels: time over store_all's against the budget (bytes), one line per bandwidth
    of ``budget_rows`` (``bandwidth``, ``budget``, ``time``); and against the bandwidth at
    ``sweep_budget`` from ``sweep_rows`` (``bandwidth``, ``time``, ``moved``), log scale, the
    recompute-only time dashed, plans that move values filled. ``unit``: the cost unit's name
    in "bytes per ..." and what it is, for the title (default: a graph's op)."""
    figure = Figure(figsize=(12 if budget_rows else 6.5, 4.8), dpi=DPI, layout="constrained")
    left, right = figure.subplots(1, 2) if budget_rows else (None, figure.subplots())
    if left is not None:
        _budget_panel(left, budget_rows, infinite, unit[0])
    _bandwidth_panel(right, sweep_rows, sweep_budget, unit[0])
    figure.suptitle(f"{title}\npredicted time ({unit[1]}); lower is better", fontsize=11)
    return figure


def _budget_panel(left: Any, budget_rows: Sequence[dict], infinite: float | None,
                  unit: str) -> None:
    """Time against the budget, one line per bandwidth; bandwidth 0 drawn on top, and a line
    equal to it labelled so (hidden under it)."""
    bandwidths = sorted({row["bandwidth"] for row in budget_rows})
    alone = sorted((r["budget"], r["time"]) for r in budget_rows if not r["bandwidth"])
    for index, bandwidth in enumerate(bandwidths):
        mine = sorted((r for r in budget_rows if r["bandwidth"] == bandwidth),
                      key=lambda r: r["budget"])
        same = bandwidth and alone == [(r["budget"], r["time"]) for r in mine]
        left.plot([r["budget"] for r in mine], [r["time"] for r in mine], marker="o",
                  color=BANDWIDTH_COLORS[index % len(BANDWIDTH_COLORS)],
                  linestyle="--" if not bandwidth else "-", zorder=3 if not bandwidth else 2,
                  label=bandwidth_label(bandwidth, infinite)
                  + (": the same as 0" if same else ""))
    left.set_xlabel("device budget (activation bytes)")
    left.xaxis.set_major_formatter(lambda value, _: format_bytes(value))
    left.set_ylabel("time / store_all's time")
    left.set_title("time against the device budget", fontsize=10)
    left.legend(fontsize=8, title=f"bandwidth (bytes per {unit})", title_fontsize=8)
    left.grid(alpha=0.3)


def _bandwidth_panel(axis: object, rows: Sequence[dict], budget: float | None,
                     unit: str) -> None:
    """Time against the bandwidth at one budget (log x; bandwidth 0 as a dashed line)."""
    moving = sorted((r for r in rows if r["bandwidth"]), key=lambda r: r["bandwidth"])
    alone = [r["time"] for r in rows if not r["bandwidth"]]
    if alone:
        axis.axhline(alone[0], color="#444444", linestyle="--",  # type: ignore[attr-defined]
                     label="recompute only (bandwidth 0)")
    if moving:
        axis.plot([r["bandwidth"] for r in moving], [r["time"] for r in moving],  # type: ignore
                  color="#08519c", zorder=2)
        for moved in (True, False):
            points = [r for r in moving if r["moved"] == moved]
            axis.scatter([r["bandwidth"] for r in points],  # type: ignore[attr-defined]
                         [r["time"] for r in points], zorder=3, s=36, color="#08519c",
                         facecolors="#08519c" if moved else "white",
                         label="plan moves values" if moved else "plan moves nothing")
        axis.set_xscale("log")  # type: ignore[attr-defined]
    axis.set_xlabel(f"bandwidth (bytes per {unit})")  # type: ignore[attr-defined]
    axis.xaxis.set_major_formatter(lambda value, _: f"{value:g}")  # type: ignore
    axis.set_ylabel("time / store_all's time")  # type: ignore[attr-defined]
    where = "" if budget is None else f" at a budget of {format_bytes(budget)}"
    axis.set_title(f"time against the bandwidth{where}", fontsize=10)  # type: ignore
    if axis.get_legend_handles_labels()[0]:  # type: ignore[attr-defined]
        axis.legend(fontsize=8)  # type: ignore[attr-defined]
    axis.grid(alpha=0.3, which="both")  # type: ignore[attr-defined]
