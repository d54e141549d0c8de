"""The ``checkpoint-ad recommend`` command: the cheapest plan under a budget across every policy
of both families, printed as a table or JSON (:func:`checkpoint_ad.lab.recommend.recommend`)."""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any, TextIO

from ..lab.recommend import DEFAULT_TIME_LIMIT, Candidate, Recommendation, recommend
from ..workloads.graph_models import FAMILIES
from .options import (BYTES_HELP, add_input_options, add_size_options, bandwidth, byte_count,
                      doing, given_sizes, new_command, number)
from .output import write_json


class Progress:
    """``planning done/total: next``, rewritten in place on stderr when it is a terminal and
    a moment has passed (a quick answer, or output to a file or pipe, gets none)."""

    def __init__(self, stream: TextIO | None = None, after_s: float = 1.0) -> None:
        self.stream, self.after_s = stream or sys.stderr, after_s
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.started, self.shown = time.perf_counter(), False

    def __call__(self, done: int, total: int, following: str) -> None:
        if not self.tty or time.perf_counter() - self.started < self.after_s:
            return
        if done == total:
            self.stream.write("\r" + " " * 60 + "\r" if self.shown else "")
        else:
            self.stream.write("\r" + f"planning {done}/{total}: {following}"[:60].ljust(60))
            self.shown = True
        self.stream.flush()


def _bytes(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _params(candidate: Candidate, budget: int) -> str:
    """The parameters, but a budget_bytes equal to the budget asked for."""
    shown = {k: v for k, v in candidate.params.items()
             if not (k == "budget_bytes" and v == budget)}
    return ", ".join(f"{k}={','.join(v) if isinstance(v, tuple) else v}"
                     for k, v in shown.items()) or "-"


RECOMMEND_COLUMNS = ("rank", "family", "policy", "params", "predicted peak", "overhead",
                     "evals", "solve s", "skipped because")
TIME_COLUMN = "time overhead"  # with --bandwidth, after "overhead"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _rows(found: Recommendation) -> list[tuple[str, ...]]:
    """The table's rows; with a bandwidth, the time overhead after the overhead."""
    rows = []
    for rank, c in enumerate(found.candidates, 1):
        timed = (_ratio(c.time_overhead),) if found.bandwidth else ()
        rows.append((str(rank) if c.fits else "-", c.family, c.policy,
                     _params(c, found.budget_bytes), _bytes(c.peak_bytes), _ratio(c.overhead),
                     *timed, "-" if c.forward_evals is None else f"{c.forward_evals:,}",
                     f"{c.solve_s:.2f}", c.skipped or ""))
    return rows


def _columns(found: Recommendation) -> tuple[str, ...]:
    """The table's columns: :data:`RECOMMEND_COLUMNS`, with a bandwidth the time overhead."""
    if not found.bandwidth:
        return RECOMMEND_COLUMNS
    at = RECOMMEND_COLUMNS.index("overhead") + 1
    return RECOMMEND_COLUMNS[:at] + (TIME_COLUMN,) + RECOMMEND_COLUMNS[at:]


def _table(rows: list[tuple[str, ...]], columns: tuple[str, ...]) -> str:
    widths = [max(len(str(row[k])) for row in [columns, *rows]) for k in range(len(columns))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip()
             for row in [columns, tuple("-" * w for w in widths), *rows]]
    return "\n".join(lines)


def command_recommend(args: argparse.Namespace, out: TextIO) -> int:
    sizes = given_sizes(args)
    chosen = None if args.policies is None else [
        name.strip() for name in args.policies.split(",") if name.strip()]
    progress = None if args.no_progress else Progress()
    with doing(f"planning every policy for {args.workload}"):
        found = recommend(args.workload, sizes, args.budget, args.family, args.seed,
                          args.dtype, args.costs, chosen, args.time_limit, progress,
                          args.bandwidth)
    best = found.require_best()  # nothing fits: one line naming the least peak, exit 2
    if args.json:
        return write_json(found.to_dict(), out)
    described = ", ".join(f"{k}={v}" for k, v in found.sizes.items())
    out.write(f"{found.workload} ({found.family} workload; {described}) under "
              f"{found.budget_bytes:,} bytes of predicted activation peak:\n"
              f"best: {best.family} {best.policy} ({_params(best, found.budget_bytes)}), "
              f"predicted peak "
              f"{best.peak_bytes:,} bytes, overhead {best.overhead:.3f}x store_all's forward "
              f"cost, {best.forward_evals:,} forward evaluations"
              + (f", time overhead {best.time_overhead:.3f}x store_all's time at bandwidth "
                 f"{found.bandwidth:g} bytes per cost unit" if found.bandwidth else "")
              + "\n\n")
    out.write(_table(_rows(found), _columns(found)) + "\n")
    return 0


def add_recommend_command(commands: Any) -> None:
    """The ``recommend`` command's arguments."""
    advice = new_command(
        commands, "recommend", "the cheapest plan under a memory budget, across every policy",
        "Plan every policy configuration of both families for a workload (a chain workload: "
        "chain policies on its chain and graph policies on it traced as a graph; a graph "
        "workload: graph policies), predict each plan's activation peak by running the "
        "executor on placeholders, and print the cheapest that fits BYTES (overhead = forward "
        "cost over store_all's in the same family), then every candidate with why the others "
        "were skipped. Nothing runs beyond the profiling or tracing pass.",
        "  checkpoint-ad recommend --workload mlp --budget 400KiB\n"
        "  checkpoint-ad recommend --workload unet --family graph --n 3 --budget 150KiB --json\n"
        "  checkpoint-ad recommend --workload model.py:build --size n=8 --budget 64KiB")
    advice.add_argument("--workload", required=True,
                        help="a registered workload (see `list`), or your own: FILE.py:FUNCTION "
                             "or MODULE:FUNCTION, sized by --size KEY=VALUE "
                             "(docs/your_own_model.md)")
    advice.add_argument("--family", choices=FAMILIES,
                        help="the registry of --workload, for a name in both")
    advice.add_argument("--budget", required=True, type=byte_count, metavar="BYTES",
                        help=f"the most predicted activation bytes at the peak; {BYTES_HELP}")
    advice.add_argument("--policies", metavar="NAMES",
                        help="only these policies (comma-separated names, of either family)")
    advice.add_argument("--time-limit", type=number, default=DEFAULT_TIME_LIMIT,
                        metavar="SECONDS",
                        help="seconds for each slow graph planner (optimal's exact search, "
                             "checkmate, checkmate_lp; default %(default)s)")
    advice.add_argument("--bandwidth", type=bandwidth, metavar="B",
                        help="bytes per cost unit between device and host memory: the graph "
                             "policies that plan transfers (optimal, dtr) and the chain "
                             "optimal (a third candidate) may offload values, "
                             "and candidates are ranked by predicted time over store_all's "
                             "(a `time overhead` column); default or 0: no offload, ranked by "
                             "overhead")
    add_input_options(advice, "chain stage costs the planners see and overheads count "
                              "(default: the workload's cost model); graph ops cost 1 each")
    advice.add_argument("--json", action="store_true",
                        help="print one JSON object: best, candidates, least_peak_bytes, ...")
    advice.add_argument("--no-progress", action="store_true", help="no progress on stderr")
    add_size_options(advice)
