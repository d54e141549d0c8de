"""The ``checkpoint-ad`` command line: thin argument handling over library functions.

``main(argv) -> int``. Every user error (a usage mistake or the package's own exception) prints
exactly one line ``checkpoint-ad: error: ...`` on stderr and returns 2, without a usage dump or
a traceback; an interrupt (Ctrl-C) prints one line and returns 130. docs/errors.md lists the
messages and the tests that cover them.

The commands are in :mod:`checkpoint_ad.cli.commands`, the shared options and value parsers in
:mod:`checkpoint_ad.cli.options`.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from .. import __version__
from .commands import (CHAIN_POLICIES, GRAPH_POLICIES, MAX_LISTED_STEPS, MAX_STAGES,
                       command_compare, command_list, command_plan, command_report,
                       command_run, stage_count)
from .options import (ACTIVITY, BYTES_HELP, PROG, add_backend, add_graph_policy_options,
                      add_max_memory, add_policy_options, add_size_options, byte_count,
                      non_negative_int, number, repeat_count)
from .workloads import command_recommend
from ..errors import CheckpointADError
from ..lab.graph_models import FAMILIES
from ..lab.recommend import DEFAULT_TIME_LIMIT
from ..lab.measure import COST_MODES
from ..lab.specs import DEFAULT_EXPERIMENT, MAX_REPEATS

__all__ = ["PROG", "Parser", "make_parser", "COMMANDS", "main",
           "byte_count"]  # byte_count: importable from here as before the split

Formatter = argparse.RawDescriptionHelpFormatter


# -- the parser ------------------------------------------------------------------------------------

DESCRIPTION = """\
checkpoint_ad: reverse-mode AD on numpy with store-versus-recompute checkpointing policies.
Run experiments, compare policies, print plans, and rebuild reports from saved records."""

EXAMPLES = """\
examples:
  checkpoint-ad list
  checkpoint-ad plan --policy revolve --n 20 --slots 3
  checkpoint-ad plan --workload unet --family graph --policy dtr --budget-fraction 0.6
  checkpoint-ad recommend --workload mlp --budget 400KiB
  checkpoint-ad run --quick                       # fig69, reduced grid, under reports/fig69/
  checkpoint-ad compare --workload mlp --n 64 --width 256 \\
                        --policies store_all,sqrt_n,revolve:slots=8
  checkpoint-ad report reports/fig69"""


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr, ``checkpoint-ad: error:
    ...`` and a pointer to the command's --help, with exit status 2 (no usage dump). Its
    subcommands' parsers are of this class too."""

    def error(self, message: str) -> NoReturn:
        message = " ".join(message.split())
        self.exit(2, f"{PROG}: error: {message} (see `{self.prog} --help`)\n")


def _command(subparsers: Any, name: str, help_text: str, description: str, examples: str
             ) -> argparse.ArgumentParser:
    return subparsers.add_parser(name, help=help_text, description=description,
                                 epilog="examples:\n" + examples, formatter_class=Formatter)


def add_input_options(parser: argparse.ArgumentParser, costs_help: str) -> None:
    """``--seed``, ``--dtype`` and ``--costs``: how a workload's inputs are drawn and costed."""
    parser.add_argument("--seed", type=non_negative_int, default=0,
                        help="seed of inputs and weights (a whole number >= 0)")
    parser.add_argument("--dtype", default="float64", help="float32 or float64")
    parser.add_argument("--costs", default="model", choices=COST_MODES, help=costs_help)


def make_parser() -> argparse.ArgumentParser:
    parser = Parser(prog=PROG, description=DESCRIPTION, epilog=EXAMPLES,
                    formatter_class=Formatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    _command(commands, "list", "list workloads, policies (with parameters) and experiments",
             "List the registered workloads with their sizes, the policies with their "
             "parameters, and the shipped experiments.", "  checkpoint-ad list")

    plan = _command(
        commands, "plan", "print a policy's plan and its counts, without running anything",
        "Print the plan a policy makes, one action per line, with its counts: for a chain of "
        "n unit stages (--n), or for a named workload (--workload): a chain workload is "
        "profiled and planned by a chain policy with its own stage sizes and costs, a graph "
        "workload traced and planned by a graph policy.",
        "  checkpoint-ad plan --policy revolve --n 20 --slots 3\n"
        "  checkpoint-ad plan --policy sqrt_n --n 100 --json\n"
        "  checkpoint-ad plan --workload mlp --policy optimal --budget 300KiB\n"
        "  checkpoint-ad plan --workload residual --family graph --n 4 --policy optimal "
        "--budget-fraction 0.5 --json")
    plan.add_argument("--policy", required=True, help="a registered policy (see `list`): a "
                      "chain policy for --n and chain workloads, a graph policy for graph "
                      "workloads")
    plan.add_argument("--n", type=stage_count,
                      help=f"number of stages of a chain of unit stages (at most "
                           f"{MAX_STAGES:,}); with --workload, the workload's size n")
    plan.add_argument("--workload", help="plan a registered workload instead (see `list`)")
    plan.add_argument("--family", choices=FAMILIES,
                      help="the registry of --workload, for a name in both (residual means "
                           "the chain unless --family graph)")
    plan.add_argument("--budget", type=byte_count, metavar="BYTES",
                      help=f"the policy's budget_bytes; {BYTES_HELP}")
    plan.add_argument("--budget-fraction", type=number, metavar="F",
                      help="budget_bytes as a fraction of store_all's bytes (graph: its peak; "
                           "chain workload: its checkpoints and tapes, as in experiments)")
    plan.add_argument("--json", action="store_true",
                      help="print one JSON object: forward_evals, peak_stored, actions, ... "
                           "(graph: cost, peak_bytes, steps, parents, ops, ...)")
    plan.add_argument("--summary", action="store_true",
                      help=f"print the counts without the steps (plans of more than "
                           f"{MAX_LISTED_STEPS:,} steps are only summarized)")
    plan.add_argument("--planner-memory", type=byte_count, metavar="BYTES",
                      help=f"refuse, before planning, what the planner estimates to need more "
                           f"than BYTES for (default: half of this machine's memory); "
                           f"{BYTES_HELP}")
    add_policy_options(plan)
    add_graph_policy_options(plan)
    add_size_options(plan, skip=("n",))

    advice = _command(
        commands, "recommend", "the cheapest plan under a memory budget, across every policy",
        "Plan every policy configuration of both families for a workload (a chain workload: "
        "chain policies on its chain and graph policies on it traced as a graph; a graph "
        "workload: graph policies), predict each plan's activation peak by running the "
        "executor on placeholders, and print the cheapest that fits BYTES (overhead = forward "
        "cost over store_all's in the same family), then every candidate with why the others "
        "were skipped. Nothing runs beyond the profiling or tracing pass.",
        "  checkpoint-ad recommend --workload mlp --budget 400KiB\n"
        "  checkpoint-ad recommend --workload unet --family graph --n 3 --budget 150KiB --json")
    advice.add_argument("--workload", required=True, help="a registered workload (see `list`)")
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
    add_input_options(advice, "chain stage costs the planners see and overheads count "
                              "(default: the workload's cost model); graph ops cost 1 each")
    advice.add_argument("--json", action="store_true",
                        help="print one JSON object: best, candidates, least_peak_bytes, ...")
    advice.add_argument("--no-progress", action="store_true", help="no progress on stderr")
    add_size_options(advice)

    run = _command(
        commands, "run", "run an experiment, write its records and plots",
        "Run an experiment: every grid point and policy configuration in a fresh process, "
        "with a progress bar. Writes records.jsonl and records.csv, then the figures (PNG) "
        "and report.md, under DIR.",
        "  checkpoint-ad run --quick               # fig69's reduced grid, under a minute\n"
        "  checkpoint-ad run revolve_slots --out /tmp/slots\n"
        "  checkpoint-ad run my_experiment.toml --max-memory 64MiB\n"
        "  checkpoint-ad run revolve_slots --out /tmp/slots --resume   # after an interrupt")
    run.add_argument("experiment", nargs="?", default=DEFAULT_EXPERIMENT, metavar="EXPERIMENT",
                     help=f"a shipped experiment's name or a .toml file (default "
                          f"{DEFAULT_EXPERIMENT}; see `list`)")
    run.add_argument("--quick", action="store_true", help="the experiment's reduced grid")
    run.add_argument("--out", metavar="DIR",
                     help="output folder (default: reports/EXPERIMENT in the current directory)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    existing = run.add_mutually_exclusive_group()
    existing.add_argument("--resume", action="store_true",
                          help="continue an interrupted run of the same experiment and options "
                               "into the same DIR: points already in DIR/records.jsonl are "
                               "skipped, a truncated last line is cut off")
    existing.add_argument("--overwrite", action="store_true",
                          help="replace the records already in DIR/records.jsonl (without "
                               "--resume or --overwrite, a run refuses to touch them)")
    add_max_memory(run, "the whole run is refused, naming the first point above it")
    add_backend(run)

    comparison = _command(
        commands, "compare", "compare policies on one workload, printed as a table",
        "Measure each policy on one workload (each in a fresh process) and print a table: "
        "forward evaluations, stored items, activation bytes by kind beside the parameters, "
        "predicted and measured bytes, time, and ratios to store_all. Policies are separated "
        "by commas, their parameters by colons: revolve:slots=8, optimal:slots=4:tapes=false, "
        "optimal:budget_fraction=0.3.",
        "  checkpoint-ad compare --workload mlp --n 64 --width 256 "
        "--policies store_all,sqrt_n,revolve:slots=8\n"
        "  checkpoint-ad compare --workload chain --n 100 --policies store_all,revolve --json\n"
        "  checkpoint-ad compare --workload unet --n 6 --budget 192KiB "
        "--policies store_all,optimal,dtr,chen\n"
        "  checkpoint-ad compare --workload residual --family graph "
        "--policies store_all,dtr:budget_fraction=0.4")
    comparison.add_argument("--workload", default="chain",
                            help="a registered chain or graph workload (default chain; see "
                                 "`list`)")
    comparison.add_argument("--family", choices=FAMILIES,
                            help="the workload's family: graph for a graph workload whose name "
                                 "is also a chain workload's (residual); otherwise found from "
                                 "the name")
    comparison.add_argument("--policies",
                            help=f"comma-separated policies, each NAME[:KEY=VALUE...] (default: "
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

    report = _command(
        commands, "report", "rebuild plots and report.md from saved records",
        "Build the figures and a Markdown report from records files alone (never "
        "re-running anything). RESULTS are .jsonl files or folders searched for them.",
        "  checkpoint-ad report reports/fig69\n"
        "  checkpoint-ad report run1/records.jsonl run2/records.jsonl --out combined")
    report.add_argument("results", nargs="*", metavar="RESULTS",
                        help="records files or folders (default: reports)")
    report.add_argument("--out", metavar="DIR",
                        help="output folder (default: the folder of the one RESULTS given, "
                             "else reports)")
    return parser


COMMANDS = {"list": command_list, "plan": command_plan, "run": command_run,
            "compare": command_compare, "report": command_report,
            "recommend": command_recommend}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); return the exit status:
    0 done, 2 a user error (one line on stderr), 130 interrupted (one line on stderr)."""
    for stream in (sys.stdout, sys.stderr):  # paths that are not UTF-8 print escaped
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    del ACTIVITY[1:]  # what an earlier call in this process was doing
    parser = make_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version and usage errors (one line, see Parser)
        return exit_.code if isinstance(exit_.code, int) else 2
    try:
        return COMMANDS[args.command](args, sys.stdout)
    except CheckpointADError as error:
        sys.stderr.write(f"{PROG}: error: {' '.join(str(error).split())}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted; nothing was written\n" if args.command == "run"
                         else f"{PROG}: interrupted\n")
        return 130
    except BrokenPipeError:  # stdout closed early (e.g. piped into head): not an error
        sys.stdout = open(os.devnull, "w")  # so the interpreter's final flush stays quiet
        return 0
    except OSError as error:  # the file system refused something not checked beforehand
        where = f"{error.filename}: " if error.filename else ""
        sys.stderr.write(f"{PROG}: error: {where}{error.strerror or error}\n")
        return 2
    except (MemoryError, OverflowError, RecursionError, UnicodeError) as error:
        sys.stderr.write(f"{PROG}: error: {_exhausted(error)} while {ACTIVITY[-1]}; choose "
                         f"smaller sizes or counts\n")
        return 2


def _exhausted(error: BaseException) -> str:
    """A limit the input ran into, in words (the last guard: inputs are checked first)."""
    if isinstance(error, MemoryError):
        return "out of memory"
    if isinstance(error, RecursionError):
        return "nested too deeply"
    detail = " ".join(str(error).split())[:120]
    kind = "a number too large" if isinstance(error, OverflowError) else "text not encodable"
    return f"{kind} ({detail})" if detail else kind
