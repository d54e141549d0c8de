"""Anytime curves of graph solvers: cost and lower bound against solve time, one small panel
per case (a graph at a budget), from plain rows so that they draw from records alone.

A panel row is ``{"title": str, "row": int, "column": int (its place in the grid), "scale": float (store_all's cost: values are drawn over it),
"bound": float | None (the best bound of every plan known at that budget), "curves": {label:
{"incumbents": [[seconds, cost], ...], "bounds": [[seconds, bound], ...]}}, "points":
[(label, seconds, cost), ...], "framing": labels whose plans set the top of the panel's
range with the anytime curves}``: an anytime solver draws its best cost as a falling step line
and its proven bound as a rising dashed one, each to the end of its solve; any solver's final
plan is a marker at its solve time.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import NullFormatter

from .style import DPI, color

MARKS = {"cpsat": "o", "checkmate": "s", "optimal": "D", "dtr": "^", "chen": "v"}


def _step(axis, series: list, end: float, scale: float, colour: str, style: str) -> None:
    """``series`` ([[seconds, value], ...]) as a step line held to ``end`` seconds."""
    if not series:
        return
    times = [max(point[0], 1e-2) for point in series] + [max(end, series[-1][0], 1e-2)]
    values = [point[1] / scale for point in series]
    axis.step(times, values + values[-1:], where="post", color=colour, linestyle=style,
              linewidth=1.4)


def _panel(axis, row: dict, policies: dict[str, str], right: float) -> None:
    scale = row["scale"]
    anytime = [p[1] for curve in row["curves"].values() for p in curve["incumbents"]]
    kept = [p[2] for p in row["points"] if p[0] in row.get("framing", ())] + anytime
    top = 1.08 * max(kept or [p[2] for p in row["points"]]) / scale
    bottom = min([(row.get("bound") or math.inf) / scale] + [p[2] / scale for p in row["points"]])
    for label, curve in row["curves"].items():
        end = max((seconds for name, seconds, _ in row["points"] if name == label), default=0.0)
        _step(axis, curve["incumbents"], end, scale, color(policies[label]), "-")
        _step(axis, curve["bounds"], end, scale, color(policies[label]), "--")
    for label, seconds, cost in row["points"]:  # a plan dearer than the range: on its top edge
        axis.plot([max(seconds, 1e-2)], [min(cost / scale, top)], clip_on=False,
                  marker=MARKS.get(policies[label], "o"), color=color(policies[label]),
                  markersize=5, linestyle="none", alpha=0.85)
    if row.get("bound"):
        axis.axhline(row["bound"] / scale, color="black", linestyle=":", linewidth=1.0)
    axis.set_xscale("log")
    axis.set_xlim(1e-2, right)
    axis.set_ylim(bottom - 0.02 * (top - bottom) - 1e-3, top)
    axis.xaxis.set_minor_formatter(NullFormatter())
    axis.set_title(row["title"], fontsize=8)
    axis.tick_params(labelsize=7)
    axis.grid(alpha=0.3, which="major")


def anytime_figure(rows: Sequence[dict], policies: dict[str, str], title: str) -> Figure:
    """The panels of ``rows``, each at its ``row`` and ``column`` (one row of panels per
    graph, one column per budget; a panel missing where a graph has no case at that budget);
    ``policies`` maps each solver label to its policy (its colour and marker). Time is on a
    log scale from 10 ms (a faster solve is drawn at 10 ms); a plan dearer than a panel's
    range (its anytime curve, or its first plan) sits on the panel's top edge."""
    count = 1 + max((row["row"] for row in rows), default=0)
    columns = 1 + max((row["column"] for row in rows), default=0)
    right = 1.5 * max([p[1] for row in rows for p in row["points"]] + [1.0])
    figure = Figure(figsize=(max(3.1 * columns, 9.0), 2.1 * count + 1.2), dpi=DPI,
                    layout="constrained")
    axes = figure.subplots(count, columns, squeeze=False)
    used = set()
    for row in rows:
        _panel(axes[row["row"]][row["column"]], row, policies, right)
        used.add((row["row"], row["column"]))
    for index in range(count * columns):
        if (index // columns, index % columns) not in used:
            axes[index // columns][index % columns].set_visible(False)
    for axis in axes[-1]:
        axis.set_xlabel("solve time (s)", fontsize=8)
    for line in axes:
        line[0].set_ylabel("cost / store_all's", fontsize=8)
    handles = [Line2D([], [], color=color(policy), marker=MARKS.get(policy, "o"), label=label,
                      linestyle="none") for label, policy in policies.items()]
    handles += [Line2D([], [], color="gray", label="anytime best cost"),
                Line2D([], [], color="gray", linestyle="--", label="anytime bound (every plan)"),
                Line2D([], [], color="black", linestyle=":", label="best bound of every plan")]
    figure.suptitle(title, fontsize=10)
    figure.legend(handles=handles, loc="outside lower center", ncol=4, fontsize=8)
    return figure
