"""Figures of graph plans: what was computed and kept, when (Checkmate's R/S matrices), and the
graph itself drawn in layers with each op named and coloured by how often it was computed (the
teaching view of Fig. 6.9 on a real graph; :func:`layout` places it so that its shape reads: a
U-Net as a U, a residual stack as a chain with skips), plus planners compared across budgets
and sizes.

The plan figures take plain data (``parents`` per node, the plan's ``[[action, node], ...]``
steps and op names) so that they draw from a record alone; the comparison figures take rows of
(planner, budget, cost, store_all cost, lower bound, solve seconds, ops).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy
from matplotlib.collections import LineCollection
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .style import DPI, color, format_bytes, format_seconds

COMPUTED_COLORS = ("#d9d9d9", "#9ecae1", "#fdae6b", "#e6550d", "#a50f15")  # 0, 1, 2, 3, 4+
SKIP_COLOR = "#6b8fb3"
OFFLOAD_COLOR = "#31a354"  # a value moved to host memory (docs/offload_model.md)
ON_HOST = 2  # in :func:`stages`' S: the value is in host memory as the stage starts
BOUND_LABEL = "lower bound of every plan"  # Checkmate's bounds hold for its plans only: not drawn


def _title(figure: Figure, title: str, note: str) -> None:
    figure.suptitle(f"{title}\n{note}", fontsize=11)


def stages(parents: Sequence[Sequence[int]], steps: Sequence[Sequence[Any]]
           ) -> tuple[numpy.ndarray, numpy.ndarray]:
    """Checkmate's matrices for a plan: stage k runs from backward step k-1 to backward step k
    (stage 0 is the forward pass). ``R[k, i]`` counts the computations of node i in stage k;
    ``S[k, i]`` is 1 when node i is resident as stage k starts (kept from before), and
    :data:`ON_HOST` when it is in host memory instead (offloaded, not yet prefetched:
    docs/offload_model.md)."""
    count = len(parents)
    rows_r, rows_s = [numpy.zeros(count, int)], [numpy.zeros(count, int)]
    resident = numpy.zeros(count, int)
    for action, node in steps:
        if action == "compute" or action == "prefetch":
            rows_r[-1][node] += action == "compute"
            resident[node] = 1
        elif action == "free":
            resident[node] = 0
        elif action == "offload":
            resident[node] = ON_HOST
        elif action == "backward":
            rows_r.append(numpy.zeros(count, int))
            rows_s.append(resident.copy())
    return numpy.array(rows_r[:-1] or rows_r), numpy.array(rows_s[:-1] or rows_s)


def offloaded_nodes(count: int, steps: Sequence[Sequence[Any]]) -> list[bool]:
    """For each of ``count`` nodes, whether the plan's ``steps`` offload it at least once."""
    moved = [False] * count
    for action, node in steps:
        if action == "offload":
            moved[node] = True
    return moved


def recompute_matrix(parents: Sequence[Sequence[int]], steps: Sequence[Sequence[Any]],
                     title: str) -> Figure:
    """R (computed in the stage) and S (kept into the stage) side by side, stages by nodes."""
    computed, kept = stages(parents, steps)
    figure = Figure(figsize=(11, 5.2), dpi=DPI, layout="constrained")
    axes = figure.subplots(1, 2, sharey=True)
    moved = bool((kept == ON_HOST).any())
    panels = ((numpy.minimum(computed, 1), "R: computed in the stage", ["white", "#d62728"]),
              (kept, "S: kept into the stage" + (" (green: in host memory)" if moved else ""),
               ["white", "#1f77b4", OFFLOAD_COLOR]))
    for axis, (matrix, label, shades) in zip(axes, panels):
        axis.imshow(matrix, aspect="auto", interpolation="nearest",
                    cmap=ListedColormap(shades), vmin=0, vmax=len(shades) - 1)
        axis.set_title(label)
        axis.set_xlabel("node (topological order)")
    axes[0].set_ylabel("stage (0 = forward; k = up to the k-th backward step)")
    _title(figure, title, f"{computed.sum()} computations over {computed.shape[0]} stages; "
                 "a red cell off the diagonal is a recomputation")
    return figure


def layers(parents: Sequence[Sequence[int]]) -> list[int]:
    """The layer of each node: the longest path from an input to it; an input sits one layer
    before its first consumer (weights next to the op that reads them)."""
    depth = [0] * len(parents)
    for node, sources in enumerate(parents):
        depth[node] = max((depth[p] + 1 for p in sources), default=0)
    first_use = {}
    for node, sources in enumerate(parents):
        for p in sources:
            first_use.setdefault(p, depth[node] - 1)
    return [first_use.get(node, 0) if not sources else depth[node]
            for node, sources in enumerate(parents)]


@dataclass(frozen=True)
class Layout:
    """Where :func:`graph_drawing` puts the graph: per node its layer ``x`` (inputs left, the
    loss right) and height ``y`` (0 at the top, down to negative), and per node whose value is
    read beyond the next layer (a skip) the height of its ``lane``: the horizontal track that
    carries the value over the layers between, above every op of those layers."""

    x: list[int]
    y: list[float]
    lane: dict[int, float]


def _take_track(taken: dict[int, set[int]], first: int, last: int, highest: int) -> int:
    """The highest track (0 at the top), ``highest`` or below, free in every layer
    ``first..last``; now taken there."""
    busy = set().union(*(taken.get(layer, set()) for layer in range(first, last + 1)))
    track = next(t for t in range(highest, highest + len(busy) + 1) if t not in busy)
    for layer in range(first, last + 1):
        taken.setdefault(layer, set()).add(track)
    return track


def layout(parents: Sequence[Sequence[int]]) -> Layout:
    """Layers left to right, swept in order: each layer's nodes sit below the lanes passing
    over it, ops ordered by their parents' mean height (fewer crossings), inputs last; then
    each of them whose value is read beyond the next layer opens one lane (shared by all its
    far consumers) on the highest track free until its last consumer, level with the node or
    below (a skip never climbs over the lanes above it), the higher node first.
    A chain is one row; a residual block dips below its skip; a U-Net's encoder steps down one
    lane per skip and its decoder back up, each skip a straight line between its pair."""
    x = layers(parents)
    reach: dict[int, int] = {}
    for node, sources in enumerate(parents):
        for p in sources:
            reach[p] = max(reach.get(p, 0), x[node])
    by_layer: dict[int, list[int]] = {}
    for node in range(len(parents)):
        by_layer.setdefault(x[node], []).append(node)
    y = [0.0] * len(parents)
    lane: dict[int, float] = {}
    taken: dict[int, set[int]] = {}  # layer -> tracks of the lanes passing over it
    for layer in sorted(by_layer):  # a node's parents sit in earlier layers: placed already
        top = max(taken.get(layer, {-1})) + 1
        ranked = sorted(by_layer[layer], key=lambda n: (
            not parents[n], -sum(y[p] for p in parents[n]) / max(len(parents[n]), 1), n))
        for rank, node in enumerate(ranked):
            y[node] = -float(top + rank)
        for node in ranked:
            if reach.get(node, layer) - layer > 1:
                lane[node] = -float(_take_track(taken, layer + 1, reach[node] - 1, int(-y[node])))
    return Layout(x, y, lane)


def _routes(parents: Sequence[Sequence[int]], place: Layout
            ) -> tuple[list[list[tuple[float, float]]], list[list[tuple[float, float]]]]:
    """The polylines of the edges: to the next layer straight; further along the source's
    lane (up or down to it, across, down or up to the consumer)."""
    near, far = [], []
    for node, sources in enumerate(parents):
        for p in sources:
            start, end = (place.x[p], place.y[p]), (place.x[node], place.y[node])
            if place.x[node] - place.x[p] <= 1:
                near.append([start, end])
            else:
                lane = place.lane[p]
                far.append([start, (place.x[p] + 1, lane), (place.x[node] - 1, lane), end])
    return near, far


def _figure_size(place: Layout) -> tuple[float, float]:
    """Inches: wide enough for a label per layer, tall enough for a label per row, within a
    page."""
    columns = max(place.x, default=0) + 1
    rows = 1 - min(place.y + list(place.lane.values()), default=0)
    return min(max(10.0, 0.2 * columns + 3.5), 22.0), min(max(3.5, 0.55 * rows + 2.2), 9.0)


def graph_drawing(parents: Sequence[Sequence[int]], ops: Sequence[str | None],
                  computed: Sequence[int], kept: Sequence[bool], title: str,
                  offloaded: Sequence[bool] | None = None) -> Figure:
    """The graph laid out by :func:`layout` (inputs left, the loss right, skips on lanes above
    the ops they pass); each op labelled with its name and coloured by how many times the
    plan computed it, ringed when it was kept for a backward step; an op the plan
    ``offloaded`` to host memory is green (ringed too when also kept, darker when also
    recomputed)."""
    moved = list(offloaded) if offloaded is not None else [False] * len(parents)
    place = layout(parents)
    figure = Figure(figsize=_figure_size(place), dpi=DPI, layout="constrained")
    axis = figure.subplots()
    near, far = _routes(parents, place)
    axis.add_collection(LineCollection(near, colors="#bbbbbb", linewidths=0.6, zorder=1))
    axis.add_collection(LineCollection(far, colors=SKIP_COLOR, linewidths=0.9, zorder=1))
    inputs = [n for n in range(len(parents)) if not parents[n]]
    axis.scatter([place.x[n] for n in inputs], [place.y[n] for n in inputs], s=25, marker="s",
                 color="black", zorder=2)
    op_nodes = [n for n in range(len(parents)) if parents[n]]
    axis.scatter([place.x[n] for n in op_nodes], [place.y[n] for n in op_nodes], s=70, zorder=2,
                 c=[_node_color(computed[n], moved[n]) for n in op_nodes],
                 edgecolors=["black" if kept[n] else "none" for n in op_nodes], linewidths=1.2)
    for node in op_nodes:
        axis.annotate(ops[node] or "", (place.x[node], place.y[node]), xytext=(0, -6),
                      textcoords="offset points", rotation=90, ha="center", va="top",
                      fontsize=5.5, color="#444444")
    axis.set_ylim(min(place.y, default=0) - 0.7, 0.4)  # room for the lowest row's labels
    axis.set_axis_off()
    handles = [Patch(color=COMPUTED_COLORS[k], label=f"computed {k}{'+' if k == 4 else ''}x")
               for k in range(1, len(COMPUTED_COLORS))]
    if any(moved):
        handles += [Patch(color=OFFLOAD_COLOR, label="offloaded to host memory"),
                    Patch(color=OFFLOAD_RECOMPUTED, label="offloaded and recomputed")]
    handles += [Line2D([], [], marker="o", color="none", markeredgecolor="black",
                       markerfacecolor="white", label="kept for a backward step"),
                Line2D([], [], marker="s", color="none", markerfacecolor="black",
                       label="input (pinned)"),
                Line2D([], [], color=SKIP_COLOR, label="read beyond the next layer (a skip)")]
    axis.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8,
                frameon=False)
    _title(figure, title, f"{len(op_nodes)} ops, {sum(computed)} computations")
    return figure


OFFLOAD_RECOMPUTED = "#006d2c"


def _node_color(computed: int, offloaded: bool) -> str:
    """An op's colour: green shades when offloaded, else by how often it was computed."""
    if offloaded:
        return OFFLOAD_RECOMPUTED if computed > 1 else OFFLOAD_COLOR
    return COMPUTED_COLORS[min(computed, len(COMPUTED_COLORS) - 1)]


def overhead_vs_budget(rows: Sequence[dict], title: str) -> Figure:
    """Cost over store_all's against the budget (bytes), one line per planner, with the lower
    bound over store_all's cost marked at each budget where the rows give one (labelled as a
    bound of every plan: rows carry no bound of Checkmate's formulation)."""
    figure = Figure(figsize=(8, 5), dpi=DPI, layout="constrained")
    axis = figure.subplots()
    for planner in sorted({row["planner"] for row in rows}):
        mine = sorted((row for row in rows if row["planner"] == planner),
                      key=lambda row: row["budget"])
        axis.plot([r["budget"] for r in mine], [r["cost"] / r["store_all_cost"] for r in mine],
                  marker="o", color=color(planner), label=planner,
                  linestyle="--" if "(" in planner else "-")  # a variant: its policy's colour
    best: dict[float, float] = {}
    for row in rows:
        if row.get("lower_bound"):
            ratio = row["lower_bound"] / row["store_all_cost"]
            best[row["budget"]] = max(best.get(row["budget"], 0.0), ratio)
    if best:  # a marker at each bound: a bound known at one budget only is drawn too
        budgets = sorted(best)
        axis.plot(budgets, [best[b] for b in budgets], color="black", linestyle=":", marker="_",
                  markersize=14, markeredgewidth=1.6, zorder=3, label=BOUND_LABEL)
    axis.set_xlabel("budget (activation bytes)")
    axis.xaxis.set_major_formatter(lambda value, _: format_bytes(value))
    axis.set_ylabel("cost / store_all's cost")
    if max(row["cost"] / row["store_all_cost"] for row in rows) > 5:  # recompute_all's tens
        axis.set_yscale("log")  # would flatten every planner into the floor
        axis.yaxis.set_major_formatter(lambda value, _: f"{value:g}x")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    _title(figure, title, "lower is better; every plan replayed within its budget")
    return figure


def solve_time_vs_size(rows: Sequence[dict], title: str) -> Figure:
    """Planner solve time against graph size (ops), log-log, one line per planner."""
    figure = Figure(figsize=(8, 5), dpi=DPI, layout="constrained")
    axis = figure.subplots()
    for planner in sorted({row["planner"] for row in rows}):
        points = sorted((row["ops"], row["solve_s"]) for row in rows
                        if row["planner"] == planner)
        axis.loglog([p[0] for p in points], [max(p[1], 1e-4) for p in points], marker="o",
                    color=color(planner), label=planner,
                    linestyle="--" if "(" in planner else "-")
    axis.set_xlabel("ops in the graph")
    axis.yaxis.set_major_formatter(lambda value, _: format_seconds(value))
    axis.set_ylabel("solve time")
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize=8)
    _title(figure, title, "median over the budgets of each size")
    return figure
