"""The report of graph records (``family="graph"``), from saved records alone: a table per
workload, the overhead of each planner against the budget with the lower bound, the plan of one
tight budget as Checkmate's R/S matrices and as the graph coloured by computations, and planner
solve time against graph size. Nothing here runs the engine or a planner.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from ..plotting import format_bytes, format_seconds, save_png
from ..plotting.graphs import (graph_drawing, overhead_vs_budget, recompute_matrix,
                               solve_time_vs_size, stages)
from ..records.schema import Record, configuration_label, group_records

BUDGET_PARAMETERS = ("budget_bytes", "budget_fraction")
FIXED_POLICIES = ("store_all", "recompute_all", "save_ops")  # no budget: drawn at their peak


def planner(record: Record) -> str:
    """The planner a record's line belongs to: its policy and the parameters that are not the
    budget (``dtr(heuristic=lru)``)."""
    params = {k: v for k, v in record.params.items() if k not in BUDGET_PARAMETERS}
    return configuration_label(record.policy, params)


def budget_of(record: Record) -> int:
    """The budget a record was planned for, or its own peak when its policy takes none."""
    return record.budget_bytes if record.budget_bytes is not None else record.peak_bytes


def _sizes(record: Record) -> str:
    return " ".join(f"{k}={v}" for k, v in record.sizes.items())


def _bound(record: Record) -> str:
    if record.lower_bound is None:
        return "-"
    mark = "" if record.bound_formulation == "all plans" else " (checkmate)"
    return f"{record.lower_bound:.4g}{mark}"


def graph_rows(records: Sequence[Record]) -> list[dict[str, str]]:
    """One row of display strings per graph record."""
    return [{
        "workload": f"{record.workload} {_sizes(record)}",
        "ops": str(record.ops),
        "planner": planner(record),
        "budget": "-" if record.budget_bytes is None else format_bytes(record.budget_bytes),
        "fraction": "-" if record.budget_bytes is None or not record.store_all_peak_bytes
        else f"{record.budget_bytes / record.store_all_peak_bytes:.2f}",
        "evals": f"{record.forward_evals:,}",
        "cost/store_all": f"{record.overhead:.3f}x",
        "lower bound": _bound(record),
        "gap": "-" if record.gap is None else f"{100 * record.gap:.1f}%",
        "status": record.status or "-",
        "activations": format_bytes(record.peak_bytes),
        "predicted": format_bytes(record.predicted_peak_bytes),
        "tracemalloc": "-" if record.measured_peak_bytes is None
        else format_bytes(record.measured_peak_bytes),
        "solve": format_seconds(record.solve_s) if record.solve_s else "-",
        "time": format_seconds(record.wall_s_median),
        "grad diff": f"{record.max_grad_diff:.3g}",
    } for record in records]


GRAPH_COLUMNS = ("workload", "ops", "planner", "budget", "fraction", "evals", "cost/store_all",
                 "lower bound", "gap", "status", "activations", "predicted", "tracemalloc",
                 "solve", "time", "grad diff")


def overhead_rows(records: Sequence[Record]) -> list[dict[str, Any]]:
    """The rows :func:`~checkpoint_ad.plotting.graphs.overhead_vs_budget` draws; only bounds
    of every plan ("all plans") are drawn as the lower bound."""
    return [{"planner": planner(r), "budget": budget_of(r), "cost": r.forward_cost,
             "store_all_cost": r.store_all_cost,
             "lower_bound": r.lower_bound if r.bound_formulation == "all plans" else None}
            for r in records]


def detail_record(records: Sequence[Record]) -> Record | None:
    """The plan a report draws in full: the detail record with the tightest budget among the
    planners that take one (``optimal`` first), else any detail record."""
    detailed = [r for r in records if r.graph is not None and r.graph_steps is not None]
    budgeted = [r for r in detailed if r.budget_bytes is not None]
    if not budgeted:
        return detailed[0] if detailed else None
    return min(budgeted, key=lambda r: (r.policy != "optimal", r.budget_bytes))


def plan_figures(record: Record) -> tuple[Figure, Figure]:
    """The R/S matrices and the layered graph of a detail record's plan (one that has
    ``graph`` and ``graph_steps``, see :func:`detail_record`)."""
    parents, steps = (record.graph or {})["parents"], record.graph_steps or []
    title = (f"{record.workload} {_sizes(record)}: {planner(record)} at "
             f"{format_bytes(budget_of(record))} ({record.overhead:.2f}x store_all's cost)")
    computed, kept = stages(parents, steps)
    drawing = graph_drawing(parents, record.graph["ops"], list(computed.sum(axis=0)),
                            list(kept.any(axis=0)), title)
    return recompute_matrix(parents, steps, title), drawing


def solve_rows(records: Sequence[Record]) -> list[dict[str, Any]]:
    """Median solve time per planner and graph size (ops), over the budgets of that size."""
    rows = []
    for (name, ops), group in group_records(
            records, lambda r: (planner(r), r.ops)).items():  # type: ignore[arg-type]
        times = sorted(r.solve_s or 0.0 for r in group)
        rows.append({"planner": name, "ops": ops, "solve_s": times[len(times) // 2]})
    return rows


def save_graph_figures(records: Sequence[Record], folder: Path) -> list[tuple[str, Path]]:
    """Write every figure the graph records can show; returns (caption, path) pairs."""
    folder.mkdir(parents=True, exist_ok=True)
    written: list[tuple[str, Path]] = []

    def save(caption: str, name: str, figure: Figure) -> None:
        path = folder / f"{name}.png"
        save_png(figure, path)
        written.append((caption, path))

    for key, group in group_records(records, lambda r: f"{r.workload} {_sizes(r)}").items():
        name = re.sub(r"[^\w.-]+", "_", key.replace("=", ""))  # a user's workload: model.py:build
        save(f"Overhead against budget: {key}", f"overhead_{name}",
             overhead_vs_budget(overhead_rows(group), key))
        chosen = detail_record(group)
        if chosen is not None:
            matrices, drawing = plan_figures(chosen)
            save(f"R/S matrices of one plan: {key}", f"plan_matrices_{name}", matrices)
            save(f"The graph, coloured by computations: {key}", f"plan_graph_{name}", drawing)
    if len({r.ops for r in records}) > 1:
        save("Planner solve time against graph size", "solve_time",
             solve_time_vs_size(solve_rows(records), "planner solve time"))
    return written


GRAPH_DEFINITIONS = """\
- **cost/store_all**: the plan's cost (op computations, 1 per op) over store_all's (every op
  once); 1.000x means nothing is recomputed.
- **budget**: the activation bytes the planner was given (resident op values and live
  cotangents, docs/graph_model.md); **fraction** of store_all's peak. Fixed policies have none.
- **lower bound**: the best bound on the cost at that budget the package proved with a small
  effort (exact search when it finishes; else every op once, or Checkmate's LP/MILP bound,
  marked (checkmate), which bounds only Checkmate's formulation); **gap**: cost over it, minus 1.
- **status**: "optimal" when the planner proved its plan optimal, else "feasible" or
  "time_limit". **solve**: planning seconds. **activations**, **predicted**, **tracemalloc**,
  **time** and **grad diff** as for chains."""
