"""The ``checkpoint-ad compare`` command: policies measured on one workload, printed as a table
or JSON."""
from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from ..lab.experiment import compare
from ..lab.side_by_side import budget_for_all
from ..lab.specs import MAX_REPEATS
from ..workloads.graph_models import FAMILIES
from ..workloads.user import workload_family
from .options import (BYTES_HELP, PROG, add_backend, add_input_options, add_max_memory,
                      add_size_options, byte_count, doing, given_sizes, new_command,
                      parse_policies, repeat_count)
from .output import ProgressBar, write_json


COMPARE_COLUMNS = ("policy", "params", "evals", "stored", "activations", "dominant",
                   "params+grads", "predicted", "tracemalloc", "time", "mem/store_all",
                   "time/store_all", "grad diff")


GRAPH_COMPARE_COLUMNS = ("planner", "budget", "evals", "cost/store_all", "lower bound", "gap",
                         "status", "activations", "predicted", "tracemalloc", "solve", "time",
                         "grad diff")
CHAIN_POLICIES = "store_all,recompute_all,sqrt_n,revolve"
GRAPH_POLICIES = ("store_all,recompute_all,optimal:budget_fraction=0.6,dtr:budget_fraction=0.6,"
                  "chen:budget_fraction=0.6")


def command_compare(args: argparse.Namespace, out: TextIO) -> int:
    sizes = given_sizes(args)
    with doing(f"building the workload {args.workload}"):
        family = workload_family(args.workload, args.family, sizes, args.dtype)
    default = GRAPH_POLICIES if family == "graph" else CHAIN_POLICIES
    configurations = budget_for_all(parse_policies(args.policies or default), args.budget, family,
                                    "--budget", "--policies")
    progress = None if args.no_progress else ProgressBar()
    unplanned: list[str] = []
    with doing(f"comparing policies on {args.workload}"):
        records = compare(args.workload, sizes, configurations, args.repeats, args.seed,
                          args.dtype, args.costs, progress, max_memory=args.max_memory,
                          backend=args.backend, family=family, unplanned=unplanned)
    for reason in unplanned:
        sys.stderr.write(f"{PROG}: warning: no plan, left out: {reason}\n")
    if args.json:
        return write_json([record.to_dict() for record in records], out)
    from ..report.graphs import graph_rows  # imports matplotlib (startup time)
    from ..report.markdown import comparison_rows, text_table

    first = records[0]
    described = ", ".join(f"{k}={v}" for k, v in first.sizes.items())
    backend = "" if first.backend == "numpy" else f", {first.backend} backend"
    what = f"graph, {first.ops} ops, " if family == "graph" else ""
    out.write(f"{first.workload} ({what}{described}), seed {first.seed}, {first.dtype}, "
              f"{first.repeats} repeats{backend}; ratios are to store_all\n\n")
    table = text_table(graph_rows(records), GRAPH_COMPARE_COLUMNS) if family == "graph" \
        else text_table(comparison_rows(records), COMPARE_COLUMNS)
    out.write(table + "\n")
    return 0


def add_compare_command(commands: Any) -> None:
    """The ``compare`` command's arguments."""
    comparison = new_command(
        commands, "compare", "compare policies on one workload, printed as a table",
        "Measure each policy on one workload (each in a fresh process) and print a table: "
        "forward evaluations, stored items, activation bytes by kind beside the parameters, "
        "predicted and measured bytes, time, and ratios to store_all. Policies are separated "
        "by commas, their parameters by colons: revolve:slots=8, optimal:slots=4:tapes=false, "
        "optimal:budget_fraction=0.3; names by +: save_ops:ops=matmul+tanh.",
        "  checkpoint-ad compare --workload mlp --n 64 --width 256 "
        "--policies store_all,sqrt_n,revolve:slots=8\n"
        "  checkpoint-ad compare --workload chain --n 100 --policies store_all,revolve --json\n"
        "  checkpoint-ad compare --workload unet --n 6 --budget 192KiB "
        "--policies store_all,optimal,dtr,chen\n"
        "  checkpoint-ad compare --workload residual --family graph "
        "--policies store_all,dtr:budget_fraction=0.4\n"
        "  checkpoint-ad compare --workload model.py:build --size n=8 --policies store_all,sqrt_n")
    comparison.add_argument("--workload", default="chain",
                            help="a registered chain or graph workload (default chain; see "
                                 "`list`), or your own: FILE.py:FUNCTION or MODULE:FUNCTION, "
                                 "sized by --size KEY=VALUE (docs/your_own_model.md)")
    comparison.add_argument("--family", choices=FAMILIES,
                            help="the workload's family: graph for a graph workload whose name "
                                 "is also a chain workload's (residual); otherwise found from "
                                 "the name (your own workload's: from what its function "
                                 "returns)")
    comparison.add_argument("--policies",
                            help=f"comma-separated policies, each NAME[:KEY=VALUE...], a value that "
                                 f"is names joined by + (save_ops:ops=matmul+tanh) (default: "
                                 f"{CHAIN_POLICIES} for chains; {GRAPH_POLICIES} for graphs)")
    comparison.add_argument("--budget", type=byte_count, metavar="BYTES",
                            help=f"budget_bytes for every policy that takes one and was given "
                                 f"no budget of its own; {BYTES_HELP}")
    comparison.add_argument("--repeats", type=repeat_count, default=3,
                            help=f"timed runs after the warm-up (default 3, at most "
                                 f"{MAX_REPEATS})")
    add_input_options(comparison, "stage costs the planners see (default: the workload's "
                                  "cost model; graph ops cost 1 each)")
    comparison.add_argument("--json", action="store_true",
                            help="print only a JSON list of the records on stdout")
    comparison.add_argument("--no-progress", action="store_true",
                            help="no progress on stderr")
    add_max_memory(comparison, "nothing runs if any configuration is above it")
    add_backend(comparison)
    add_size_options(comparison)
