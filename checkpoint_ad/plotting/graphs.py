"""Figures of graph plans: what was computed and kept, when (Checkmate's R/S matrices), and the
graph itself drawn in layers with each value coloured by how often it was computed (the
teaching view of Fig. 6.9 on a real graph), plus planners compared across budgets and sizes.

The plan figures take plain data (``parents`` per node, the plan's ``[[action, node], ...]``
steps and op names) so that they draw from a record alone; the comparison figures take rows of
(planner, budget, cost, store_all cost, lower bound, solve seconds, ops).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import networkx
import numpy
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .style import DPI, color, format_bytes, format_seconds

COMPUTED_COLORS = ("#d9d9d9", "#9ecae1", "#fdae6b", "#e6550d", "#a50f15")  # 0, 1, 2, 3, 4+


def _title(figure: Figure, title: str, note: str) -> None:
    figure.suptitle(f"{title}\n{note}", fontsize=11)


def stages(parents: Sequence[Sequence[int]], steps: Sequence[Sequence[Any]]
           ) -> tuple[numpy.ndarray, numpy.ndarray]:
    """Checkmate's matrices for a plan: stage k runs from backward step k-1 to backward step k
    (stage 0 is the forward pass). ``R[k, i]`` counts the computations of node i in stage k;
    ``S[k, i]`` is 1 when node i is resident as stage k starts (kept from before)."""
    count = len(parents)
    rows_r, rows_s = [numpy.zeros(count, int)], [numpy.zeros(count, int)]
    resident = numpy.zeros(count, int)
    for action, node in steps:
        if action == "compute":
            rows_r[-1][node] += 1
            resident[node] = 1
        elif action == "free":
            resident[node] = 0
        else:
            rows_r.append(numpy.zeros(count, int))
            rows_s.append(resident.copy())
    return numpy.array(rows_r[:-1] or rows_r), numpy.array(rows_s[:-1] or rows_s)


def recompute_matrix(parents: Sequence[Sequence[int]], steps: Sequence[Sequence[Any]],
                     title: str) -> Figure:
    """R (computed in the stage) and S (kept into the stage) side by side, stages by nodes."""
    computed, kept = stages(parents, steps)
    figure = Figure(figsize=(11, 5.2), dpi=DPI, layout="constrained")
    axes = figure.subplots(1, 2, sharey=True)
    panels = ((computed, "R: computed in the stage", "#d62728"),
              (kept, "S: kept into the stage", "#1f77b4"))
    for axis, (matrix, label, shade) in zip(axes, panels):
        axis.imshow(numpy.minimum(matrix, 1), aspect="auto", interpolation="nearest",
                    cmap=ListedColormap(["white", shade]), vmin=0, vmax=1)
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


def graph_drawing(parents: Sequence[Sequence[int]], ops: Sequence[str | None],
                  computed: Sequence[int], kept: Sequence[bool], title: str) -> Figure:
    """The graph in layers (inputs left, the loss right); each op coloured by how many times
    the plan computed it, ringed when it was kept for a backward step."""
    graph = networkx.DiGraph()
    depth = layers(parents)
    for node in range(len(parents)):
        graph.add_node(node, layer=depth[node])
    graph.add_edges_from((p, node) for node, sources in enumerate(parents) for p in sources)
    position = networkx.multipartite_layout(graph, subset_key="layer")
    figure = Figure(figsize=(12, 5.5), dpi=DPI, layout="constrained")
    axis = figure.subplots()
    near = [(p, q) for p, q in graph.edges if depth[q] - depth[p] <= 1]
    far = [(p, q) for p, q in graph.edges if depth[q] - depth[p] > 1]
    networkx.draw_networkx_edges(graph, position, edgelist=near, ax=axis, edge_color="#bbbbbb",
                                 arrows=False, width=0.6)
    networkx.draw_networkx_edges(graph, position, edgelist=far, ax=axis, edge_color="#6b8fb3",
                                 arrows=True, arrowstyle="-", width=0.8,
                                 connectionstyle="arc3,rad=-0.3")  # skips arc over the rest
    inputs = [n for n in graph if not parents[n]]
    networkx.draw_networkx_nodes(graph, position, nodelist=inputs, ax=axis, node_size=30,
                                 node_shape="s", node_color="black")
    op_nodes = [n for n in graph if parents[n]]
    fill = [COMPUTED_COLORS[min(computed[n], len(COMPUTED_COLORS) - 1)] for n in op_nodes]
    rings = ["black" if kept[n] else "none" for n in op_nodes]
    networkx.draw_networkx_nodes(graph, position, nodelist=op_nodes, ax=axis, node_size=70,
                                 node_color=fill, edgecolors=rings, linewidths=1.2)
    axis.set_axis_off()
    handles = [Patch(color=COMPUTED_COLORS[k], label=f"computed {k}{'+' if k == 4 else ''}x")
               for k in range(1, len(COMPUTED_COLORS))]
    handles += [Line2D([], [], marker="o", color="none", markeredgecolor="black",
                       markerfacecolor="white", label="kept for a backward step"),
                Line2D([], [], marker="s", color="none", markerfacecolor="black",
                       label="input (pinned)")]
    axis.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8,
                frameon=False)
    names = sorted({op for op in ops if op})
    _title(figure, title, f"{len(op_nodes)} ops ({', '.join(names[:8])}"
                 f"{', ...' if len(names) > 8 else ''}), {sum(computed)} computations")
    return figure


def overhead_vs_budget(rows: Sequence[dict], title: str) -> Figure:
    """Cost over store_all's against the budget (bytes), one line per planner, with the lower
    bound over store_all's cost drawn where known."""
    figure = Figure(figsize=(8, 5), dpi=DPI, layout="constrained")
    axis = figure.subplots()
    for planner in sorted({row["planner"] for row in rows}):
        mine = sorted((row for row in rows if row["planner"] == planner),
                      key=lambda row: row["budget"])
        axis.plot([r["budget"] for r in mine], [r["cost"] / r["store_all_cost"] for r in mine],
                  marker="o", color=color(planner), label=planner,
                  linestyle="--" if "(" in planner else "-")  # a variant: its policy's colour
    bounds = sorted({(row["budget"], row["lower_bound"] / row["store_all_cost"]) for row in rows
                     if row.get("lower_bound")})
    if bounds:
        best = {}
        for budget, value in bounds:
            best[budget] = max(best.get(budget, 0), value)
        axis.plot(list(best), list(best.values()), color="black", linestyle=":",
                  label="lower bound")
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
