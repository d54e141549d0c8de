"""The offload part of a report (docs/offload_model.md, docs/chain_offload.md), from saved
records alone, graph or chain: records whose planner was given a ``bandwidth``. A headline
(per workload: the time over store_all's without offload, at each swept bandwidth, and the
bandwidth below which offload stops paying),
a figure per workload (time against the device budget, one line per bandwidth; time against
the bandwidth at one budget), the plan drawn with its offloaded values in green (a chain's
schedule: its items in host memory in purple), and a table of which values (a chain's stages)
each plan offloads, recomputes or keeps, with its host peak predicted and measured.

The **bandwidth sweep** of a workload is its planner's records at the budget with the most
bandwidths (three at least); offload **pays** at a bandwidth when the plan there takes less
time than the plan at bandwidth 0 (recompute only) at the same budget.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..plotting import format_bytes, save_png
from ..plotting.detail import schedules
from ..plotting.graphs import graph_drawing, offloaded_nodes, recompute_matrix, stages
from ..plotting.offload import GRAPH_UNIT, bandwidth_label, offload_figure
from ..records.schema import Record, configuration_label, group_records
from .graphs import BUDGET_PARAMETERS, _budget_label, _workload

SWEEP_LEAST = 3  # bandwidths at one budget that make a sweep
TRANSFER_PARAMETERS = ("bandwidth", "host_budget_bytes")


def offload_records(records: Sequence[Record]) -> list[Record]:
    """The graph records whose planner was given a bandwidth (0 included) and that carry a
    predicted time."""
    return [r for r in records if r.bandwidth is not None and r.time_overhead is not None]


def offload_planner(record: Record) -> str:
    """The planner without its budget and bandwidth: ``optimal(time_limit=2.0)``."""
    params = {k: v for k, v in record.params.items()
              if k not in BUDGET_PARAMETERS + TRANSFER_PARAMETERS}
    return configuration_label(record.policy, params)


def unit(record: Record) -> tuple[str, str]:
    """A record's cost unit: its name in "bytes per ...", and what it is (figure titles)."""
    if record.family == "graph":
        return GRAPH_UNIT
    return ("cost unit", f"cost units: the planner's stage costs ({record.costs}), a backward "
                         f"step twice its stage")


def chain_fates(record: Record) -> tuple[int, int, int] | None:
    """(offloaded, recomputed, kept) stages of a chain record's plan: the stage's checkpoint
    or tape offloaded at least once; else evaluated more than once; else evaluated once."""
    if record.schedule is None:
        return None
    evaluations: Counter[int] = Counter()
    moved = set()
    for action, stage, end in record.schedule:
        if action == "advance":
            evaluations.update(range(stage, end + 1))
        elif action in ("tape", "turn"):
            evaluations[stage] += 1
        elif action == "offload":
            moved.add(stage)
    recomputed = sum(t not in moved and evaluations[t] > 1 for t in range(1, record.n + 1))
    return len(moved), recomputed, record.n - len(moved) - recomputed


def fates(record: Record) -> tuple[int, int, int] | None:
    """(offloaded, recomputed, kept) op values of a record's plan: offloaded at least once;
    else computed more than once; else computed once and kept. None without the plan. A
    chain record's stages: :func:`chain_fates`."""
    if record.family == "chain":
        return chain_fates(record)
    if record.graph is None or record.graph_steps is None:
        return None
    parents = record.graph["parents"]
    computed, _ = stages(parents, record.graph_steps)
    counts = computed.sum(axis=0)
    moved = offloaded_nodes(len(parents), record.graph_steps)
    ops = [n for n in range(len(parents)) if parents[n]]
    offloaded = sum(moved[n] for n in ops)
    recomputed = sum(not moved[n] and counts[n] > 1 for n in ops)
    return offloaded, recomputed, len(ops) - offloaded - recomputed


def sweep_of(group: Sequence[Record]) -> tuple[int | None, list[Record]]:
    """(budget, records) of one workload's bandwidth sweep (module docstring), or (None, [])."""
    by_budget = group_records(group, lambda r: r.budget_bytes)  # type: ignore[arg-type]
    budget, chosen = max(by_budget.items(), key=lambda item: (
        len({r.bandwidth for r in item[1]}), -(item[0] or 0)), default=(None, []))
    if len({r.bandwidth for r in chosen}) < SWEEP_LEAST:
        return None, []
    return budget, sorted(chosen, key=lambda r: r.bandwidth)  # type: ignore[arg-type]


def break_even(sweep: Sequence[Record]) -> tuple[float | None, float | None]:
    """(the least bandwidth at which offload pays, the largest below it at which it does not)
    of a sweep sorted by bandwidth; (None, None) without a recompute-only record."""
    alone = [r for r in sweep if not r.bandwidth]
    if not alone:
        return None, None
    base = alone[0].predicted_time
    pays = [r.bandwidth for r in sweep if r.bandwidth and r.predicted_time < base]
    if not pays:
        return None, max(r.bandwidth for r in sweep)  # type: ignore[type-var]
    below = [r.bandwidth for r in sweep if r.bandwidth and r.bandwidth < pays[0]]
    return pays[0], max(below, default=None)


def _bullet(name: str, group: Sequence[Record]) -> str | None:
    """One workload's sentence: the times over store_all's across its bandwidth sweep, and
    where offload stops paying."""
    budget, sweep = sweep_of(group)
    if not sweep:
        return None
    first = sweep[0]
    ops = f" ({first.ops} ops)" if first.ops is not None else (
        f" (a chain of {first.n} stages)" if first.family == "chain" else "")
    times = ", ".join(f"{bandwidth_label(r.bandwidth).split(' (')[0]}: "  # type: ignore
                      f"{r.time_overhead:.2f}x" for r in sweep)
    pays, not_below = break_even(sweep)
    if pays is None:
        verdict = "offload does not pay at any swept bandwidth"
    else:
        verdict = (f"offload pays from bandwidth {pays:g}"
                   + ("" if not_below is None else
                      f" and stops paying at {not_below:g} and below"))
    return (f"{name}{ops} at {_budget_label(first)} of store_all's peak "
            f"({format_bytes(budget or 0)}): time over store_all's by bandwidth (bytes per "
            f"{unit(first)[0]}): {times}; {verdict}.")


def offload_headline(records: Sequence[Record]) -> list[str]:
    """The offload bullets: how to read them, then one per workload with a bandwidth sweep."""
    moving = offload_records(records)
    if not moving:
        return []
    bullets = ["Offload (docs/offload_model.md): predicted time over store_all's time "
               "(cost units, transfers overlapping compute) at one device budget, by the "
               "bandwidth between device and host; it pays where it beats bandwidth 0."]
    for group in group_records(moving, _workload).values():
        bullet = _bullet(group[0].workload, group)
        if bullet:
            bullets.append(bullet)
    saved = _savings_bullet(moving)
    removed = [bullet for group in group_records(moving, _workload).values()
               if (bullet := removal_bullet(group))]
    return bullets + ([saved] if saved else []) + removed


POFO_FRACTIONS = (0.3, 0.5)  # the budgets of POFO's headline, as fractions of store_all's peak
POFO_SHARE = 1 / 3  # its claim: offload removes at least a third of the recompute overhead
INFINITE = 1e9  # bytes per cost unit from which a bandwidth is effectively infinite


def removed_share(alone: Record, moved: Record) -> float | None:
    """The share of ``alone``'s time overhead over store_all's (recompute only) that ``moved``
    removes at the same budget: 1.0 when it reaches store_all's time; None without overhead."""
    over = alone.time_overhead - 1  # type: ignore[operator]
    return None if over <= 0 else (alone.predicted_time - moved.predicted_time) / (
        over * alone.store_all_time)  # type: ignore[operator]


def removal_bullet(group: Sequence[Record]) -> str | None:
    """POFO's headline on one workload: at each budget from 0.30 to 0.50 of store_all's peak
    (:data:`POFO_FRACTIONS`) with a recompute-only record, the time over store_all's without
    and with each swept bandwidth below :data:`INFINITE`, and the share of the overhead
    offload removes; whether it removes a third (:data:`POFO_SHARE`) anywhere. None without
    such budgets."""
    low, high = POFO_FRACTIONS
    alone = {r.budget_bytes: r for r in sorted(group, key=lambda r: r.budget_bytes or 0)
             if not r.bandwidth and r.store_all_peak_bytes
             and low <= round(r.budget_bytes / r.store_all_peak_bytes, 2) <= high}  # type: ignore
    swept = sorted(b for b in _swept(group) if 0 < b < INFINITE)
    parts, met = [], []
    for bandwidth in swept:
        cells = []
        for budget, base in alone.items():
            moved = next((r for r in group if r.bandwidth == bandwidth
                          and r.budget_bytes == budget), None)
            share = None if moved is None else removed_share(base, moved)
            if moved is None or share is None:
                continue
            cells.append(f"{_budget_label(base)} {base.time_overhead:.3f}x to "
                         f"{moved.time_overhead:.3f}x ({share:.0%})")
            met += [f"{_budget_label(base)} with {bandwidth:g}"] if share >= POFO_SHARE else []
        if cells:
            parts.append(f"at bandwidth {bandwidth:g}: " + ", ".join(cells))
    if not parts:
        return None
    verdict = ", ".join(met) if met else "nowhere"
    return (f"{group[0].workload}, POFO's headline (offload removes at least a third of the "
            f"recompute-only time overhead at 0.30 to 0.50 of store_all's peak): time over "
            f"store_all's, recompute only to offload (share of the overhead removed) by budget, "
            + "; ".join(parts) + f". A third or more removed: {verdict}.")


def _savings_bullet(moving: Sequence[Record]) -> str | None:
    """The most time each bandwidth of the budget sweeps saves over bandwidth 0 at the same
    workload, planner and budget (in store_all's times), and where; None without sweeps."""
    base = {(_workload(r), offload_planner(r), r.budget_bytes): r for r in moving
            if not r.bandwidth}
    swept = set().union(*(_swept(group) for group in
                          group_records(moving, _workload).values())) - {0.0}
    parts = []
    for bandwidth in sorted(swept):
        gains = [((alone.predicted_time - r.predicted_time) / r.store_all_time, r)
                 for r in moving if r.bandwidth == bandwidth
                 and (alone := base.get((_workload(r), offload_planner(r), r.budget_bytes)))]
        if not gains:
            continue
        gain, where = max(gains, key=lambda item: item[0])
        parts.append(f"{bandwidth:g}: none" if gain <= 0 else
                     f"{bandwidth:g}: {gain:.2f} ({where.workload} at {_budget_label(where)})")
    if not parts:
        return None
    return ("Across the budget sweeps, the most time offload saves over bandwidth 0 at the "
            "same budget, in store_all's times, by bandwidth: " + "; ".join(parts) + ".")


def offload_rows(records: Sequence[Record]) -> list[dict[str, str]]:
    """One row of display strings per offload record."""
    rows = []
    for r in sorted(offload_records(records), key=lambda r: (
            _workload(r), offload_planner(r), r.budget_bytes or 0, r.bandwidth)):
        fate = fates(r)
        rows.append({
            "workload": _workload(r), "planner": offload_planner(r),
            "fraction": _budget_label(r) if r.budget_bytes is not None else "-",
            "bandwidth": bandwidth_label(r.bandwidth).split(" (")[0],  # type: ignore[arg-type]
            "time/store_all": f"{r.time_overhead:.3f}x",
            "cost/store_all": f"{r.overhead:.3f}x",
            "offloaded/recomputed/kept": "-" if fate is None else "/".join(map(str, fate)),
            "host peak": format_bytes(r.predicted_host_peak_bytes or 0),
            "host measured": "-" if r.host_peak_bytes is None
            else format_bytes(r.host_peak_bytes),
            "activations": format_bytes(r.peak_bytes)})
    return rows


OFFLOAD_COLUMNS = ("workload", "planner", "fraction", "bandwidth", "time/store_all",
                   "cost/store_all", "offloaded/recomputed/kept", "host peak", "host measured",
                   "activations")


def _shown_plan(sweep: Sequence[Record]) -> Record | None:
    """The plan a workload's figures draw: the one at the least bandwidth where offload pays
    (it both offloads and recomputes, typically), else the fastest with a plan."""
    pays, _ = break_even(sweep)
    drawn = [r for r in sweep if r.graph is not None and r.graph_steps is not None
             or r.family == "chain" and r.schedule is not None]
    chosen = [r for r in drawn if r.bandwidth == pays] or drawn
    return min(chosen, key=lambda r: r.predicted_time) if chosen else None  # type: ignore


def save_offload_figures(records: Sequence[Record], folder: Path) -> list[tuple[str, Path]]:
    """Write the offload figures (module docstring); returns (caption, path) pairs."""
    folder.mkdir(parents=True, exist_ok=True)
    written: list[tuple[str, Path]] = []
    for key, group in group_records(offload_records(records), _workload).items():
        name = re.sub(r"[^\w.-]+", "_", key.replace("=", ""))
        budget, sweep = sweep_of(group)
        infinite = max(r.bandwidth for r in group)  # type: ignore[type-var]
        budget_rows = [{"bandwidth": r.bandwidth, "budget": r.budget_bytes,
                        "time": r.time_overhead} for r in group
                       if r.budget_bytes is not None and r.bandwidth in _swept(group)]
        sweep_rows = [{"bandwidth": r.bandwidth, "time": r.time_overhead,
                       "moved": bool(r.predicted_host_peak_bytes)} for r in sweep]
        path = folder / f"offload_{name}.png"
        save_png(offload_figure(budget_rows, sweep_rows, key, budget, infinite,
                                unit(group[0])), path)
        written.append((f"Time against budget and bandwidth: {key}", path))
        shown = _shown_plan(sweep)
        if shown is not None:
            written += (_plan_figures(shown, folder, name) if shown.family == "graph"
                        else _schedule_figure(shown, folder, name))
    return written


def _swept(group: Sequence[Record]) -> set[float]:
    """The bandwidths a workload's records hold at two budgets or more (its budget sweeps)."""
    budgets: dict[float, set[Any]] = {}
    for r in group:
        budgets.setdefault(r.bandwidth, set()).add(r.budget_bytes)  # type: ignore[arg-type]
    return {bandwidth for bandwidth, held in budgets.items() if len(held) > 1}


def _schedule_figure(record: Record, folder: Path, name: str) -> list[tuple[str, Path]]:
    """A chain plan's schedule, its items in host memory in purple."""
    figure = schedules([record])
    if figure is None:
        return []
    path = folder / f"offload_schedule_{name}.png"
    save_png(figure, path)
    return [(f"The plan's schedule (purple: in host memory) at {_budget_label(record)} of "
             f"store_all's peak, bandwidth {bandwidth_label(record.bandwidth)}: "  # type: ignore
             f"{_workload(record)}", path)]


def _plan_figures(record: Record, folder: Path, name: str) -> list[tuple[str, Path]]:
    """The plan of ``record`` as R/S matrices and as the graph, offloaded values in green."""
    parents, steps = record.graph["parents"], record.graph_steps  # type: ignore[index]
    title = (f"{_workload(record)}: {record.policy} at {_budget_label(record)} of "
             f"store_all's peak, bandwidth {bandwidth_label(record.bandwidth)}"  # type: ignore
             f" ({record.time_overhead:.2f}x store_all's time)")
    computed, kept = stages(parents, steps)  # type: ignore[arg-type]
    drawing = graph_drawing(parents, record.graph["ops"], list(computed.sum(axis=0)),  # type: ignore
                            list((kept == 1).any(axis=0)), title,
                            offloaded_nodes(len(parents), steps))  # type: ignore[arg-type]
    written = []
    for caption, kind, figure in (
            ("The plan's schedule (green: in host memory)", "offload_matrices",
             recompute_matrix(parents, steps, title)),  # type: ignore[arg-type]
            ("The graph: offloaded (green), recomputed, kept", "offload_graph", drawing)):
        path = folder / f"{kind}_{name}.png"
        save_png(figure, path)
        written.append((f"{caption}: {_workload(record)}", path))
    return written


OFFLOAD_DEFINITIONS = """\
- **bandwidth**: bytes per cost unit (one op's time) between device and host memory, given to
  the planner (docs/offload_model.md); 0: no offload. **time/store_all**: the plan's predicted
  time (each step the longer of its compute and its transfers; a backward step costs 2) over
  store_all's (a chain's cost unit: its planner's stage costs, docs/chain_offload.md).
  **offloaded/recomputed/kept**: op values (a chain's stages: checkpoint or tape) the plan
  offloads at least once, recomputes (and never offloads), computes once and keeps.
  **host peak**: host copies at once, predicted; **host measured**: the host Meter's."""
