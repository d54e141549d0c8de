"""The report of graph records (``family="graph"``), from saved records alone: a headline (the
cheapest planner at each budget, its gap to the lower bound, where a planner has no plan), a
table per workload, the overhead of each planner against the budget with the lower bound, the
plan of one tight budget as Checkmate's R/S matrices and as the graph coloured by computations,
and planner solve time against graph size. Nothing here runs the engine or a planner.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from ..plotting import format_bytes, format_seconds, save_png
from ..plotting.graphs import (graph_drawing, offloaded_nodes, overhead_vs_budget,
                               recompute_matrix, solve_time_vs_size, stages)
from ..records.schema import Record, configuration_label, group_records
from .headline import MOST_BULLETS

BUDGET_PARAMETERS = ("budget_bytes", "budget_fraction")


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


def _workload(record: Record) -> str:
    return f"{record.workload} {_sizes(record)}"


def _unambiguous(short: dict[str, str]) -> dict[str, str]:
    """Each full name's short name (``short[full]``) where no other full name shares it, else
    the full name: ``checkmate`` for the one ``checkmate(time_limit=20.0)``, but both labels
    of two dtr planners."""
    counts = Counter(short.values())
    return {full: name if counts[name] == 1 else full for full, name in short.items()}


def _budget_label(record: Record) -> str:
    """A budget as a fraction of store_all's peak (``0.50``), or in bytes without that peak."""
    if record.store_all_peak_bytes:
        return f"{record.budget_bytes / record.store_all_peak_bytes:.2f}"
    return format_bytes(record.budget_bytes)


def _checkmate_bound(record: Record) -> bool:
    return record.lower_bound is not None and record.bound_formulation != "all plans"


def _cheapest(at_budget: Sequence[Record], names: dict[str, str]) -> str:
    """``0.50 optimal=dtr 1.52x (+22%†)``: the budget, the planners of least cost there, that
    cost over store_all's and its gap to the lower bound († one of Checkmate's formulation)."""
    best = min(r.forward_cost for r in at_budget)
    winners = [r for r in at_budget if r.forward_cost == best]
    first = winners[0]
    gap = "" if first.gap is None else \
        f" ({100 * first.gap:+.0f}%{'†' if _checkmate_bound(first) else ''})"
    cheapest = "=".join(dict.fromkeys(names[planner(r)] for r in winners))
    return f"{_budget_label(first)} {cheapest} {first.overhead:.2f}x{gap}"


def _workload_bullet(name: str, records: Sequence[Record], names: dict[str, str]) -> str:
    """One workload's cheapest planners, budget by budget from the tightest."""
    by_budget = group_records(sorted(records, key=lambda r: r.budget_bytes),
                              lambda r: r.budget_bytes)  # type: ignore[arg-type]
    return (f"{name} ({records[0].ops} ops): "
            + "; ".join(_cheapest(group, names) for group in by_budget.values()) + ".")


def _lacking(label: str, group: Sequence[Record]) -> str | None:
    """``at any budget``, or ``at 0.30, 0.50``: the budgets of one workload's records at which
    the planner ``label`` has none; None when it has one at each."""
    budgets = {r.budget_bytes: r for r in sorted(group, key=lambda r: r.budget_bytes)}
    held = {r.budget_bytes for r in group if planner(r) == label}
    lacking = [record for budget, record in budgets.items() if budget not in held]
    if not lacking:
        return None
    if len(lacking) == len(budgets):
        return "at any budget"
    return "at " + ", ".join(_budget_label(r) for r in lacking)


def _no_plan_bullet(by_workload: dict[str, list[Record]], workload_names: dict[str, str],
                    names: dict[str, str]) -> str | None:
    """Which planner has no record at a budget another planner reached on the same workload
    (a planner that finds no plan is left out of the records), or None."""
    parts = []
    for label in dict.fromkeys(planner(r) for group in by_workload.values() for r in group):
        places = [f"on {workload_names[key]} {where}" for key, group in by_workload.items()
                  if (where := _lacking(label, group)) is not None]
        if places:
            parts.append(f"{names[label]} " + ", ".join(places))
    return "No plan: " + "; ".join(parts) + "." if parts else None


def graph_headline(records: Sequence[Record]) -> list[str]:
    """At most :data:`~.headline.MOST_BULLETS` bullets on the planners that take a budget: how
    to read them, per workload the cheapest planner at each budget with its cost and gap to
    the lower bound, and where a planner has no plan. Empty without budgeted records."""
    budgeted = [r for r in records if r.budget_bytes is not None]
    if not budgeted:
        return []
    by_workload = group_records(budgeted, _workload)
    workload_names = _unambiguous({key: group[0].workload for key, group in by_workload.items()})
    names = _unambiguous({planner(r): r.policy for r in budgeted})
    bullets = ["Cheapest planner at each budget (a fraction of store_all's peak), its cost over "
               "store_all's and its gap to the lower bound"
               + (" († a bound of Checkmate's formulation only)."
                  if any(_checkmate_bound(r) for r in budgeted) else ".")]
    missing = _no_plan_bullet(by_workload, workload_names, names)
    room = MOST_BULLETS - len(bullets) - (missing is not None)
    shown = list(by_workload.items())
    if len(shown) > room:
        shown = shown[:room - 1]
    bullets += [_workload_bullet(workload_names[key], group, names) for key, group in shown]
    if len(shown) < len(by_workload):
        bullets.append(f"{len(by_workload) - len(shown)} more workloads: see the table.")
    return bullets + ([missing] if missing else [])


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
                            list((kept == 1).any(axis=0)), title,
                            offloaded_nodes(len(parents), steps))
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

    for key, group in group_records(records, _workload).items():
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
  effort (exact search when it finishes; else the closure bound or every op once, or
  Checkmate's LP/MILP bound,
  marked (checkmate), which bounds only Checkmate's formulation); **gap**: cost over it, minus 1.
- **status**: "optimal" when the planner proved its plan optimal, else "feasible" or
  "time_limit". **solve**: planning seconds. **activations**, **predicted**, **tracemalloc**,
  **time** and **grad diff** as for chains."""
