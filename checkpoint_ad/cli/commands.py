"""The ``checkpoint-ad`` commands: each takes the parsed arguments and the output stream and
returns the exit status; all the work is done by library functions. The parser is in
:mod:`checkpoint_ad.cli.main`."""
from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import textwrap
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from ..chains import limits, policies
from ..graphs import policies as graph_policies
from ..lab import graph_models, models
from ..chains.backprop import plan as make_plan
from .options import (PROG, doing, given_options, parse_policies, positive_int,
                      registered_policy_parameters, registered_sizes)
from ..errors import CheckpointADError, ExperimentError, PolicyError
from ..lab.experiment import Sweep, compare, prepare_sweep, run_sweep
from ..lab.measure import PointTask
from ..chains.plans import Plan
from ..lab.records import (BadLine, check_output_files, ensure_writable_folder, find_results,
                           scan_records, scan_results)
from ..lab.schema import Record
from ..lab.specs import check_combination, iter_experiments, load_experiment


# -- progress --------------------------------------------------------------------------------------

class ProgressBar:
    """A one-line progress bar on a terminal; one line per finished point otherwise."""

    def __init__(self, stream: TextIO | None = None, width: int = 28) -> None:
        self.stream, self.width = stream or sys.stderr, width
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.perf_counter()

    def __call__(self, done: int, total: int, following: PointTask, record: Record | None
                 ) -> None:
        elapsed = time.perf_counter() - self.start
        if not self.tty:
            if record is not None:
                self.stream.write(f"[{done}/{total}] {record.workload} n={record.n} "
                                  f"{record.label}: {record.forward_evals:,} evaluations, "
                                  f"{record.peak_bytes:,} bytes peak ({elapsed:.1f} s)\n")
                self.stream.flush()
            return
        filled = int(self.width * done / max(total, 1))
        bar = "#" * filled + "." * (self.width - filled)
        what = "done" if done == total else f"next: {following.label}"
        columns = shutil.get_terminal_size().columns - 1  # never wrap: \r must reach the start
        self.stream.write("\r" + f"[{bar}] {done}/{total} {elapsed:5.1f} s  {what}"[:columns]
                          .ljust(columns))
        if done == total:
            self.stream.write("\n")
        self.stream.flush()


# -- commands --------------------------------------------------------------------------------------

def _entry(out: TextIO, name: str, text: str, indent: int = 2) -> None:
    """``name`` then ``text`` wrapped to 100 columns, continuation lines aligned."""
    lead = " " * indent + (f"{name:<14}" if name else " " * 16)
    out.write(textwrap.fill(text, 100, initial_indent=lead,
                            subsequent_indent=" " * (len(lead) + (0 if name else 2))) + "\n")


def command_list(args: argparse.Namespace, out: TextIO) -> int:
    out.write("Workloads (checkpoint-ad compare --workload NAME --SIZE VALUE ...):\n")
    _list_workloads(out, models.names(), models.get_workload)
    out.write("\nPolicies (checkpoint-ad plan --policy NAME --PARAMETER VALUE ...):\n")
    _list_policies(out, policies.names(), policies.get_policy)
    out.write("\nGraph workloads (checkpoint-ad compare|plan|recommend --workload NAME "
              "[--family graph] --budget BYTES; a name that is also a chain workload needs "
              "--family graph; in Python: checkpoint_ad.lab.graph_models.build_graph):\n")
    _list_workloads(out, graph_models.graph_names(), graph_models.get_graph_workload)
    out.write("\nGraph policies (checkpoint-ad compare --workload unet --policies "
              "NAME:PARAMETER=VALUE,...; in Python: checkpoint_ad.plan_graph(NAME, costs, "
              "PARAMETER=VALUE) or backprop_graph(..., policy=NAME)):\n")
    _list_policies(out, graph_policies.names(), graph_policies.get_policy)
    out.write("\nExperiments (checkpoint-ad run NAME [--quick]):\n")
    for name, loaded in iter_experiments():
        if isinstance(loaded, CheckpointADError):
            _entry(out, name, f"(cannot be loaded: {loaded})")
            continue
        quick = len(load_experiment(name, quick=True).tasks())
        _entry(out, name, loaded.description)
        what = "graph workloads" if loaded.family == "graph" else "workload"
        _entry(out, "", f"{what} {loaded.workload}, {len(loaded.tasks())} points "
                        f"({quick} with --quick)")
    return 0


def _list_workloads(out: TextIO, names: Sequence[str], get: Any) -> None:
    for name in names:
        spec = get(name)
        _entry(out, name, spec.summary)
        for p in spec.parameters:
            choices = f"; one of {', '.join(p.choices)}" if p.choices else ""
            _entry(out, "", f"--{p.name} {p.default}: {p.help}{choices}")


def _list_policies(out: TextIO, names: Sequence[str], get: Any) -> None:
    for name in names:
        spec = get(name)
        _entry(out, name, spec.summary)
        for p in spec.parameters:
            default = "" if p.default is None else f", default {p.default}"
            _entry(out, "", f"{p.name} ({p.kind.__name__}{default}): {p.help}")


def _write_json(data: Any, out: TextIO) -> int:
    json.dump(data, out)
    out.write("\n")
    return 0


MAX_STAGES = 10**12  # --n: more stages than any machine can plan (32 bytes each for the costs)
MAX_LISTED_STEPS = 10**6  # plan lists at most this many steps; --summary prints the counts


def stage_count(text: str) -> int:
    """``plan --n``: a positive whole number up to MAX_STAGES."""
    value = positive_int(text)
    if value > MAX_STAGES:
        raise argparse.ArgumentTypeError(f"expected at most {MAX_STAGES:,} stages, got {text}")
    return value


def _too_long(steps: int, what: str) -> PolicyError:
    return PolicyError(f"plan: {what} {steps:,} steps, more than the {MAX_LISTED_STEPS:,} it "
                       f"lists at most; add --summary for its counts only, or plan a smaller --n")


def _write_plan_json(plan: Plan, out: TextIO, extra: dict[str, Any]) -> None:
    """The plan as one JSON object, its actions written one by one as they are read."""
    head = {**extra, "policy": plan.policy, "n": plan.n, "params": dict(plan.params),
            "slots": plan.slots, "forward_evals": plan.forward_evals,
            "peak_stored": plan.peak_stored, "counts": plan.action_counts()}
    out.write(json.dumps(head)[:-1] + ', "actions": [')
    for number, step in enumerate(plan):
        out.write(f'{", " if number else ""}{{"action": "{step.action.value}", '
                  f'"stage": {step.stage}, "end": {step.end}}}')
    out.write("]}\n")


def command_plan(args: argparse.Namespace, out: TextIO) -> int:
    from .workloads import plan_workload, with_budget  # plans of named workloads

    if args.workload is not None:
        return plan_workload(args, out)
    if args.n is None:
        raise PolicyError("plan: give --n (a chain of n unit stages) or --workload (a chain or "
                          "graph workload, see `checkpoint-ad list`)")
    for option in ("family", "budget_fraction"):
        if getattr(args, option) is not None:
            raise PolicyError(f"plan: --{option.replace('_', '-')} applies with --workload "
                              f"only; a chain of n unit stages takes --budget or --slots")
    params = with_budget(args, given_options(args, list(registered_policy_parameters())), None)
    check_combination(args.policy, params)
    with limits.limited(memory_bytes=args.planner_memory), \
            doing(f"planning {args.policy} for n={args.n}"):
        policies.check_fits(args.policy, args.n, **params)
        if not args.summary and args.n > MAX_LISTED_STEPS:  # a plan has n steps at least
            raise _too_long(args.n, f"a plan for n={args.n:,} has at least")
        chosen = make_plan(args.policy, n=args.n, **params)
    return write_plan(args, chosen, out)


def write_plan(args: argparse.Namespace, chosen: Plan, out: TextIO,
               extra: dict[str, Any] | None = None) -> int:
    """Print a chain plan as ``plan`` does (``--json``, ``--summary``); ``extra`` entries lead
    the JSON object."""
    extra = extra or {}
    if not args.summary and len(chosen) > MAX_LISTED_STEPS:
        raise _too_long(len(chosen), f"this {chosen.policy} plan has")
    if args.json:
        if args.summary:
            data = {**extra, "policy": chosen.policy, "n": chosen.n,
                    "params": dict(chosen.params), "slots": chosen.slots,
                    "forward_evals": chosen.forward_evals, "peak_stored": chosen.peak_stored,
                    "counts": chosen.action_counts()}
            return _write_json(data, out)
        _write_plan_json(chosen, out, extra)
        return 0
    out.write(chosen.headline() + "\n")
    if not args.summary:
        for line in chosen.lines():
            out.write(line + "\n")
    counts = chosen.action_counts()
    out.write("steps by action: " + ", ".join(f"{a} {c}" for a, c in counts.items()) + "\n")
    return 0


def _resume_command(args: argparse.Namespace, folder: Path) -> str:
    words = [PROG, "run", args.experiment] + (["--quick"] if args.quick else [])
    words += ["--backend", args.backend] if args.backend != "numpy" else []
    words += ["--out", str(folder)]
    if args.max_memory is not None:
        words += ["--max-memory", str(args.max_memory)]
    return shlex.join(words + ["--resume"])


def _interrupted_run(args: argparse.Namespace, sweep: Sweep, progress: ProgressBar | None
                     ) -> int:
    path = sweep.records_path
    try:
        kept = len(scan_records(path).records) if path.exists() else 0
    except CheckpointADError:
        kept = 0
    lead = "\n" if progress is not None and progress.tty else ""
    sys.stderr.write(f"{lead}{PROG}: interrupted: {kept} of {len(sweep.checks)} points recorded "
                     f"in {path}; continue with: {_resume_command(args, sweep.folder)}\n")
    return 130


def command_run(args: argparse.Namespace, out: TextIO) -> int:
    with doing(f"loading the experiment {args.experiment}"):
        experiment = load_experiment(args.experiment, quick=args.quick)
    suffix = "" if args.backend == "numpy" else f"-{args.backend}"
    folder = Path(args.out) if args.out else Path("reports") / (experiment.name + suffix)
    mode = "resume" if args.resume else "overwrite" if args.overwrite else "new"
    with doing(f"planning the points of {experiment.name}"):
        sweep = prepare_sweep(experiment, folder, mode=mode, max_memory=args.max_memory,
                              command=shlex.join([PROG, *sys.argv[1:]]), backend=args.backend)
    try:
        return _run_prepared(args, sweep, out)
    finally:
        sweep.close()


def _run_prepared(args: argparse.Namespace, sweep: Sweep, out: TextIO) -> int:
    experiment, folder, mode = sweep.experiment, sweep.folder, sweep.mode
    for note in sweep.notes:
        sys.stderr.write(f"{PROG}: warning: {note}\n")
    progress = None if args.no_progress else ProgressBar()
    started = time.perf_counter()
    try:
        with doing(f"measuring the points of {experiment.name}"):
            records = run_sweep(sweep, progress, release=False)
    except KeyboardInterrupt:
        return _interrupted_run(args, sweep, progress)
    elapsed = time.perf_counter() - started
    try:
        from ..lab.report import build_report  # matplotlib: imported only when drawing (startup)

        with doing(f"drawing the report of {experiment.name}"):
            report = build_report(records, folder, [sweep.records_path])
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted while drawing the report; all {len(records)} "
                         f"records are in {sweep.records_path}; draw it with: "
                         f"{shlex.join([PROG, 'report', str(folder)])}\n")
        return 130
    figures = sorted(p.name for p in folder.glob("*.png"))
    ran = len(sweep.pending)
    how = (f" ({len(records) - ran} already recorded, {ran} run now)" if mode == "resume"
           else f" (replacing {sweep.replaced} earlier record lines)" if sweep.replaced else "")
    out.write(f"{experiment.name}{' (quick)' if args.quick else ''}: {len(records)} records"
              f"{how} in {elapsed:.1f} s -> {sweep.records_path} (and records.csv)\n"
              f"report: {report}; figures: {', '.join(figures)}\n")
    return 0


COMPARE_COLUMNS = ("policy", "params", "evals", "stored", "activations", "dominant",
                   "params+grads", "predicted", "tracemalloc", "time", "mem/store_all",
                   "time/store_all", "grad diff")


GRAPH_COMPARE_COLUMNS = ("planner", "budget", "evals", "cost/store_all", "lower bound", "gap",
                         "status", "activations", "predicted", "tracemalloc", "solve", "time",
                         "grad diff")
CHAIN_POLICIES = "store_all,recompute_all,sqrt_n,revolve"
GRAPH_POLICIES = ("store_all,recompute_all,optimal:budget_fraction=0.6,dtr:budget_fraction=0.6,"
                  "chen:budget_fraction=0.6")
BUDGETS = ("budget_bytes", "budget_fraction", "slots", "segments")  # ways a policy is budgeted


def budget_for_all(configurations: list[tuple[str, dict[str, Any]]], budget: int | None,
                family: str) -> list[tuple[str, dict[str, Any]]]:
    """``compare --budget``: ``budget_bytes=budget`` for each configuration whose policy takes
    a byte budget and was given no budget of its own."""
    if budget is None:
        return configurations
    spec = graph_policies.get_policy if family == "graph" else policies.get_policy
    chosen = []
    for name, params in configurations:
        takes = "budget_bytes" in {p.name for p in spec(name).parameters}
        given = any(key in params for key in BUDGETS)
        chosen.append((name, {**params, "budget_bytes": budget} if takes and not given
                       else params))
    if chosen == configurations:
        raise ExperimentError("--budget applies to no policy of --policies (none takes "
                              "budget_bytes without a budget of its own); add one that does, "
                              "such as optimal")
    return chosen


def command_compare(args: argparse.Namespace, out: TextIO) -> int:
    sizes = given_options(args, sorted(registered_sizes()))
    family = graph_models.workload_family(args.workload, args.family)
    default = GRAPH_POLICIES if family == "graph" else CHAIN_POLICIES
    configurations = budget_for_all(parse_policies(args.policies or default), args.budget, family)
    progress = None if args.no_progress else ProgressBar()
    unplanned: list[str] = []
    with doing(f"comparing policies on {args.workload}"):
        records = compare(args.workload, sizes, configurations, args.repeats, args.seed,
                          args.dtype, args.costs, progress, max_memory=args.max_memory,
                          backend=args.backend, family=family, unplanned=unplanned)
    for reason in unplanned:
        sys.stderr.write(f"{PROG}: warning: no plan, left out: {reason}\n")
    if args.json:
        return _write_json([record.to_dict() for record in records], out)
    from ..lab.graph_report import graph_rows  # imports matplotlib (startup time)
    from ..lab.report import comparison_rows, text_table

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


SHOWN_BAD_LINES = 10  # per file; the rest are named in one line, as ranges


def _ranges(numbers: Sequence[int]) -> str:
    """``[3, 4, 5, 9]`` → ``"3-5, 9"``."""
    parts: list[str] = []
    for number in numbers:
        if parts and number == int(parts[-1].split("-")[-1]) + 1:
            parts[-1] = f"{parts[-1].split('-')[0]}-{number}"
        else:
            parts.append(str(number))
    return ", ".join(parts)


def warn_bad_lines(bad: Sequence[BadLine], stream: TextIO) -> None:
    """One warning per skipped line (``file:line: reason``), at most ``SHOWN_BAD_LINES`` per
    file; the other line numbers of that file follow in one line."""
    by_file: dict[Path, list[BadLine]] = defaultdict(list)
    for line in bad:
        by_file[line.path].append(line)
    for path, lines in by_file.items():
        for line in lines[:SHOWN_BAD_LINES]:
            stream.write(f"{PROG}: warning: {line}; line skipped\n")
        rest = lines[SHOWN_BAD_LINES:]
        if rest:
            stream.write(f"{PROG}: warning: {path}: {len(rest)} more bad lines skipped: "
                         f"{_ranges([line.number for line in rest])}\n")


def command_report(args: argparse.Namespace, out: TextIO) -> int:
    results = args.results or ["reports"]
    files = find_results(results)
    records, bad = scan_results(files)
    warn_bad_lines(bad, sys.stderr)
    if not records:
        why = f"{len(bad)} bad line(s) skipped" if bad else "empty"
        raise ExperimentError(f"no valid records in {', '.join(map(str, files))} ({why}); "
                              f"expected records.jsonl files written by `{PROG} run`")
    if args.out:
        folder = Path(args.out)
    elif len(results) == 1:
        given = Path(results[0])
        folder = given if given.is_dir() else given.parent
    else:
        folder = Path("reports")
    ensure_writable_folder(folder)
    from ..lab.report import REPORT_FILE, build_report  # imports matplotlib (startup time)

    check_output_files(folder, [REPORT_FILE])
    with doing(f"drawing the report of {len(records)} records"):
        report = build_report(records, folder, files)
    skipped = f" ({len(bad)} bad line(s) skipped)" if bad else ""
    out.write(f"{len(records)} records from {len(files)} file(s){skipped} -> {report}\n")
    return 0

