"""The solver comparison of a graph report (records of an anytime planner, ``cpsat``, beside
others at the same budgets, as the ``graph_solvers`` experiment makes): the goals of certified
planning met or missed, a table of gaps per case and solver, and the anytime curves. A case
is one graph at one budget; its **best bound** is the largest lower bound of every plan any
record at that budget carries (``lower_bound`` with ``bound_formulation`` "all plans": exact
search, the closure bound, CP-SAT's), and each solver's **gap** is its cost over that bound,
minus 1. Nothing here runs a planner.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from ..plotting import save_png
from ..plotting.anytime import anytime_figure
from ..records.schema import Record, group_records
from .graphs import _sizes

SMALL_OPS = 60  # the goals: at most this many ops, proven optimal at every budget
MEDIUM_OPS = (100, 400)  # "about 200 ops": a certified gap of at most 5%
MEDIUM_GAP = 0.05
GOAL_SECONDS = 60.0
ORDER = ("cpsat", "checkmate MILP", "portfolio", "optimal", "dtr", "chen")


def solver(record: Record) -> str:
    """A record's solver: ``portfolio`` for ``optimal`` without CP-SAT, ``checkmate MILP``
    for ``checkmate``, else the policy (other parameters are the experiment's, shared)."""
    if record.policy == "optimal" and record.params.get("cpsat") is False:
        return "portfolio"
    return "checkmate MILP" if record.policy == "checkmate" else record.policy


def has_solvers(records: Sequence[Record]) -> bool:
    """Whether the records hold an anytime planner's trajectory (this section applies)."""
    return any(r.trajectory is not None for r in records)


def _graph(record: Record) -> str:
    """``workload n=...``: the size that tells the graphs of one experiment apart (all
    sizes when there is no n)."""
    n = record.sizes.get("n")
    return f"{record.workload} n={n}" if n is not None else f"{record.workload} {_sizes(record)}"


def cases(records: Sequence[Record]) -> list[list[Record]]:
    """The budgeted records grouped by graph and budget, smaller graphs first, then by
    workload as the records list them, then by budget."""
    budgeted = [r for r in records if r.budget_bytes is not None]
    first = {graph: index for index, graph in enumerate(dict.fromkeys(map(_graph, budgeted)))}
    groups = group_records(budgeted, lambda r: f"{_graph(r)}|{r.budget_bytes}")
    return sorted(groups.values(), key=lambda g: (g[0].ops, first[_graph(g[0])],
                                                  g[0].budget_bytes))


def best_bound(case: Sequence[Record]) -> float | None:
    """The largest bound of every plan the case's records carry (None: none)."""
    bounds = [r.lower_bound for r in case if r.lower_bound is not None
              and r.bound_formulation == "all plans"]
    return max(bounds, default=None)


def _fraction(record: Record) -> str:
    return f"{record.budget_bytes / record.store_all_peak_bytes:.0%}" \
        if record.store_all_peak_bytes else str(record.budget_bytes)


def _solvers(records: Sequence[Record]) -> list[str]:
    found = {solver(r) for r in records if r.budget_bytes is not None}
    return [name for name in ORDER if name in found] + sorted(found - set(ORDER))


def gap_rows(records: Sequence[Record]) -> list[dict[str, str]]:
    """One row per case: the graph, its ops, the budget fraction, the best bound and each
    solver's ``cost (gap)`` (``*``: proven optimal by the solver itself; ``-``: not run or no
    plan)."""
    names = _solvers(records)
    rows = []
    for case in cases(records):
        bound = best_bound(case)
        row = {"graph": _graph(case[0]), "ops": str(case[0].ops),
               "budget": _fraction(case[0]), "best bound": "-" if bound is None else f"{bound:g}"}
        by_solver = {solver(r): r for r in case}
        for name in names:
            record = by_solver.get(name)
            if record is None:
                row[name] = "-"
                continue
            gap = "" if not bound else f" ({record.forward_cost / bound - 1:.1%})"
            proven = "*" if record.status == "optimal" else ""
            row[name] = f"{record.forward_cost:g}{proven}{gap}"
        rows.append(row)
    return rows


def _limit(records: Sequence[Record], policy: str) -> str:
    """The time limits (seconds) the policy's records were given, its default where none."""
    from ..graphs.policies import get_policy

    default = {p.name: p.default for p in get_policy(policy).parameters}.get("time_limit")
    limits = sorted({r.params.get("time_limit", default) for r in records
                     if r.policy == policy} - {None})
    return "/".join(f"{t:g}" for t in limits) or "no"


def _certified(case: Sequence[Record]) -> tuple[float | None, float]:
    """(cpsat's gap to the best bound, cpsat's solve seconds) of a case; gap None without a
    cpsat plan or a bound."""
    mine = [r for r in case if r.policy == "cpsat"]
    bound = best_bound(case)
    if not mine or not bound:
        return None, 0.0
    return mine[0].forward_cost / bound - 1, mine[0].solve_s or 0.0


def _goal(label: str, chosen: list[list[Record]], limit: float, seconds: float) -> str:
    """One goal's bullet: how many of the ``chosen`` cases cpsat meets (gap at most
    ``limit`` within ``seconds``), the worst gap, and the cases it misses."""
    if not chosen:
        return f"{label}: no such case in these records."
    found = [(case, *_certified(case)) for case in chosen]
    met = [c for c, gap, s in found if gap is not None and gap <= limit + 1e-9 and s <= seconds]
    missed = [f"{_graph(c[0])} ({c[0].ops} ops) at {_fraction(c[0])}: "
              + ("no plan" if gap is None else f"{gap:.1%}") for c, gap, _ in found
              if c not in met]
    verdict = "**met**" if not missed else "**missed**"
    worst = max((gap for _, gap, _ in found if gap is not None), default=None)
    text = (f"{label}: {verdict} (met on {len(met)} of {len(found)} cases"
            + ("" if worst is None else f"; largest gap {worst:.1%}") + ")")
    if missed:
        text += "; missed: " + "; ".join(missed[:6]) + ("; ..." if len(missed) > 6 else "")
    return text + "."


def goal_bullets(records: Sequence[Record]) -> list[str]:
    """The issue's goals, met or missed by ``cpsat`` at the run's time limit, plainly."""
    every = cases(records)
    small = [c for c in every if c[0].ops <= SMALL_OPS]
    medium = [c for c in every if MEDIUM_OPS[0] < c[0].ops <= MEDIUM_OPS[1]]
    limit = _limit(records, "cpsat")
    bullets = [f"Goals of certified planning, judged on cpsat's plans (time limit {limit} s "
               f"here, where the goals allow {GOAL_SECONDS:g} s) against the best bound of "
               f"every plan at each budget.",
               _goal(f"At most {SMALL_OPS} ops, proven optimal at every budget", small, 0.0,
                     GOAL_SECONDS),
               _goal(f"About 200 ops ({MEDIUM_OPS[0] + 1}-{MEDIUM_OPS[1]}), certified gap "
                     f"at most {MEDIUM_GAP:.0%}", medium, MEDIUM_GAP, GOAL_SECONDS)]
    worse = [c for c in every if _dearer_than_portfolio(c)]
    bullets.append("Never dearer than the portfolio (optimal before CP-SAT): "
                   + ("**met** on every case." if not worse else
                      f"**missed** on {len(worse)} of {len(every)} cases: " + "; ".join(
                          f"{_graph(c[0])} at {_fraction(c[0])}" for c in worse[:4]) + "."))
    bullets.append("1,000 ops (a plan within 1 s, a gap of at most 10% within 300 s): not in "
                   "this run; measured by benchmarks/graph_solvers.py (docs/solvers.md).")
    return bullets


def _dearer_than_portfolio(case: Sequence[Record]) -> bool:
    mine = [r.forward_cost for r in case if r.policy == "cpsat"]
    theirs = [r.forward_cost for r in case if solver(r) == "portfolio"]
    return bool(mine and theirs and mine[0] > theirs[0])


def anytime_rows(records: Sequence[Record]) -> list[dict]:
    """The panels of :func:`~checkpoint_ad.plotting.anytime.anytime_figure`: one per case,
    a row of panels per graph, a column per budget fraction."""
    every = cases(records)
    graphs = list(dict.fromkeys(_graph(c[0]) for c in every))
    fractions = sorted({_fraction(c[0]) for c in every}, key=lambda text: float(text.rstrip("%")))
    rows = []
    for case in every:
        first = case[0]
        rows.append({"title": f"{_graph(first)} ({first.ops} ops), {_fraction(first)}",
                     "row": graphs.index(_graph(first)),
                     "column": fractions.index(_fraction(first)),
                     "scale": first.store_all_cost, "bound": best_bound(case),
                     "curves": {solver(r): r.trajectory for r in case if r.trajectory},
                     "points": [(solver(r), r.solve_s or 0.0, r.forward_cost) for r in case],
                     "framing": ("portfolio", "cpsat")})
    return rows


def save_anytime(records: Sequence[Record], folder: Path) -> list[tuple[str, Path]]:
    """Write the anytime figure; (caption, path) pairs (none without trajectories)."""
    if not has_solvers(records):
        return []
    policies = {solver(r): r.policy for r in records if r.budget_bytes is not None}
    ordered = {name: policies[name] for name in _solvers(records)}
    figure = anytime_figure(anytime_rows(records), ordered,
                            "cost and bound against solve time, over store_all's cost")
    path = folder / "anytime.png"
    save_png(figure, path)
    return [("Anytime curves: cost and bound against solve time, per case", path)]


def solver_section(records: Sequence[Record],
                   markdown_table: Callable[[list[dict[str, str]]], str]) -> list[str]:
    """The Markdown lines of the solver comparison (empty without trajectories); tables are
    drawn by ``markdown_table`` (:func:`.markdown.markdown_table`)."""
    if not has_solvers(records):
        return []
    limits = ", ".join(f"{name} {_limit(records, policy)} s" for name, policy in
                       (("cpsat", "cpsat"), ("checkmate MILP", "checkmate"),
                        ("portfolio", "optimal")) if any(r.policy == policy for r in records))
    return ["### Goals", ""] + [f"- {line}" for line in goal_bullets(records)] + [
        "", "### Gaps per case and solver", "",
        f"Cost (sum of op costs) and gap to the best bound of every plan at that budget; `*`: "
        f"the solver reports its plan optimal (Checkmate's MILP: among the plans of its "
        f"formulation); `-`: not run or no plan. Time limits: {limits}.",
        "", markdown_table(gap_rows(records)), ""]

