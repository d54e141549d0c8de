"""The ``checkpoint-ad`` command line: thin argument handling over library functions.

``main(argv) -> int``. Every user error (a usage mistake or the package's own exception) prints
exactly one line ``checkpoint-ad: error: ...`` on stderr and returns 2, without a usage dump or
a traceback; an interrupt (Ctrl-C) prints one line and returns 130. docs/errors.md lists the
messages and the tests that cover them.
"""
from __future__ import annotations

import argparse
import decimal
import json
import os
import re
import shlex
import shutil
import sys
import textwrap
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

from . import __version__, models, policies
from .backprop import plan as make_plan
from .errors import CheckpointADError, ExperimentError
from .experiment import (DEFAULT_EXPERIMENT, Sweep, compare, iter_experiments, load_experiment,
                         prepare_sweep, run_sweep)
from .measure import COST_MODES, PointTask
from .plans import Plan
from .records import (BadLine, Record, ensure_writable_folder, find_results,
                      scan_records, scan_results)

PROG = "checkpoint-ad"
Formatter = argparse.RawDescriptionHelpFormatter


# -- value parsers (argparse ``type=``) ------------------------------------------------------------

def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {value}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {value}")
    return value


BYTE_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
              "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
BYTES_HELP = "plain bytes or with a unit: 800000, 64MiB, 1.5GB (kB, MB, GB: powers of 1000; " \
             "KiB, MiB, GiB: of 1024)"


def byte_count(text: str) -> int:
    """``800000``, ``64MiB``, ``1.5GB`` ... → a positive whole number of bytes (rounded down)."""
    found = re.fullmatch(r"\s*((?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*([a-zA-Z]*)\s*", text)
    unit = found[2].lower() if found else None
    if found is None or unit not in BYTE_UNITS:
        raise argparse.ArgumentTypeError(f"expected a positive number of bytes such as 800000, "
                                         f"64MiB or 1.5GB, got {text!r}")
    value = int(decimal.Decimal(found[1]) * BYTE_UNITS[unit])
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of bytes such as 800000, "
                                         f"64MiB or 1.5GB, got {text!r}")
    return value


def boolean(text: str) -> bool:
    words = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
    try:
        return words[text.lower()]
    except KeyError:
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}") from None


def number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def literal(text: str) -> Any:
    """A command-line value as int, float, bool or string, in that order of preference."""
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    try:
        return boolean(text)
    except argparse.ArgumentTypeError:
        return text


TYPES: dict[type, Callable[[str], Any]] = {int: positive_int, float: number, bool: boolean,
                                           str: str}


def parse_policies(text: str) -> list[tuple[str, dict[str, Any]]]:
    """``store_all,sqrt_n,revolve:slots=8,optimal:slots=4:tapes=false`` → (name, params)."""
    configurations = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, *assignments = item.split(":")
        params = {}
        for assignment in assignments:
            key, equals, value = assignment.partition("=")
            if not equals or not key:
                raise ExperimentError(f"--policies: expected key=value after {name!r}, "
                                      f"got {assignment!r}")
            if key.strip().endswith("_bytes"):
                try:
                    params[key.strip()] = byte_count(value)
                except argparse.ArgumentTypeError as error:
                    raise ExperimentError(f"--policies: {name}:{key.strip()}: {error}") from None
                continue
            params[key.strip()] = literal(value.strip())
        configurations.append((name.strip(), params))
    if not configurations:
        raise ExperimentError("--policies names no policy")
    return configurations


# -- option builders shared by commands ------------------------------------------------------------

def _dest(name: str) -> str:
    return f"option_{name}"


def add_policy_options(parser: argparse.ArgumentParser) -> None:
    """One option per parameter of any registered policy (``--slots``, ``--segments``...)."""
    seen: dict[str, list[str]] = {}
    specs: dict[str, Any] = {}
    for name in policies.names():
        for parameter in policies.get_policy(name).parameters:
            seen.setdefault(parameter.name, []).append(name)
            specs.setdefault(parameter.name, parameter)
    group = parser.add_argument_group("policy parameters (each applies to the policies named)")
    for name, owners in seen.items():
        parameter = specs[name]
        in_bytes = name.endswith("_bytes")
        group.add_argument(f"--{name.replace('_', '-')}", dest=_dest(name),
                           type=byte_count if in_bytes else TYPES.get(parameter.kind, literal),
                           metavar="BYTES" if in_bytes else parameter.kind.__name__.upper(),
                           help=f"{parameter.help}{'; ' + BYTES_HELP if in_bytes else ''} "
                                f"[{', '.join(owners)}]")


def add_size_options(parser: argparse.ArgumentParser) -> None:
    """One option per size of any workload (``--n``, ``--width``...); unset ones default."""
    seen: dict[str, list[str]] = {}
    specs: dict[str, models.SizeParameter] = {}
    for name in models.names():
        for parameter in models.get_workload(name).parameters:
            seen.setdefault(parameter.name, []).append(name)
            specs.setdefault(parameter.name, parameter)
    group = parser.add_argument_group("workload sizes (defaults: see `checkpoint-ad list`)")
    for name, owners in seen.items():
        parameter = specs[name]
        choices = f" (one of {', '.join(parameter.choices)})" if parameter.choices else ""
        group.add_argument(f"--{name}", dest=_dest(name), type=TYPES.get(parameter.kind, str),
                           metavar=parameter.kind.__name__.upper(),
                           help=f"{parameter.help}{choices} [{', '.join(owners)}]")


def add_max_memory(parser: argparse.ArgumentParser, consequence: str) -> None:
    parser.add_argument("--max-memory", type=byte_count, metavar="BYTES",
                        help=f"refuse, before anything runs, points whose predicted peak of "
                             f"activation bytes (checkpoints, tapes, working value, cotangents; "
                             f"parameters apart) exceeds BYTES: {consequence}; {BYTES_HELP}")


def _given(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    return {name: getattr(args, _dest(name)) for name in names
            if getattr(args, _dest(name), None) is not None}


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
    for name in models.names():
        spec = models.get_workload(name)
        _entry(out, name, spec.summary)
        for p in spec.parameters:
            choices = f"; one of {', '.join(p.choices)}" if p.choices else ""
            _entry(out, "", f"--{p.name} {p.default}: {p.help}{choices}")
    out.write("\nPolicies (checkpoint-ad plan --policy NAME --PARAMETER VALUE ...):\n")
    for name in policies.names():
        spec = policies.get_policy(name)
        _entry(out, name, spec.summary)
        for p in spec.parameters:
            default = "" if p.default is None else f", default {p.default}"
            _entry(out, "", f"{p.name} ({p.kind.__name__}{default}): {p.help}")
    out.write("\nExperiments (checkpoint-ad run NAME [--quick]):\n")
    for name, loaded in iter_experiments():
        if isinstance(loaded, CheckpointADError):
            _entry(out, name, f"(cannot be loaded: {loaded})")
            continue
        quick = len(load_experiment(name, quick=True).tasks())
        _entry(out, name, loaded.description)
        _entry(out, "", f"workload {loaded.workload}, {len(loaded.tasks())} points "
                        f"({quick} with --quick)")
    return 0


def plan_json(plan: Plan) -> dict[str, Any]:
    return {"policy": plan.policy, "n": plan.n, "params": dict(plan.params),
            "slots": plan.slots, "forward_evals": plan.forward_evals,
            "peak_stored": plan.peak_stored,
            "counts": dict(Counter(step.action.value for step in plan)),
            "actions": [{"action": s.action.value, "stage": s.stage, "end": s.end} for s in plan]}


def command_plan(args: argparse.Namespace, out: TextIO) -> int:
    names = [p.name for name in policies.names() for p in policies.get_policy(name).parameters]
    chosen = make_plan(args.policy, n=args.n, **_given(args, names))
    if args.json:
        json.dump(plan_json(chosen), out)
        out.write("\n")
        return 0
    out.write(chosen.describe() + "\n")
    counts = Counter(step.action.value for step in chosen)
    out.write("steps by action: " + ", ".join(f"{a} {c}" for a, c in counts.items()) + "\n")
    return 0


def _resume_command(args: argparse.Namespace, folder: Path) -> str:
    words = [PROG, "run", args.experiment] + (["--quick"] if args.quick else [])
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
    experiment = load_experiment(args.experiment, quick=args.quick)
    folder = Path(args.out) if args.out else Path("reports") / experiment.name
    mode = "resume" if args.resume else "overwrite" if args.overwrite else "new"
    sweep = prepare_sweep(experiment, folder, mode=mode, max_memory=args.max_memory)
    for note in sweep.notes:
        sys.stderr.write(f"{PROG}: warning: {note}\n")
    progress = None if args.no_progress else ProgressBar()
    started = time.perf_counter()
    try:
        records = run_sweep(sweep, progress)
    except KeyboardInterrupt:
        return _interrupted_run(args, sweep, progress)
    elapsed = time.perf_counter() - started
    try:
        from .report import build_report  # matplotlib: imported only when drawing (startup)

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


def command_compare(args: argparse.Namespace, out: TextIO) -> int:
    sizes_names = {p.name for name in models.names() for p in models.get_workload(name).parameters}
    sizes = _given(args, sorted(sizes_names))
    configurations = parse_policies(args.policies)
    progress = None if args.no_progress else ProgressBar()
    records = compare(args.workload, sizes, configurations, args.repeats, args.seed, args.dtype,
                      args.costs, progress, max_memory=args.max_memory)
    if args.json:
        json.dump([record.to_dict() for record in records], out)
        out.write("\n")
        return 0
    from .report import comparison_rows, text_table  # imports matplotlib (startup time)

    first = records[0]
    described = ", ".join(f"{k}={v}" for k, v in first.sizes.items())
    out.write(f"{first.workload} ({described}), seed {first.seed}, {first.dtype}, "
              f"{first.repeats} repeats; ratios are to store_all\n\n")
    out.write(text_table(comparison_rows(records), COMPARE_COLUMNS) + "\n")
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
    from .report import build_report  # imports matplotlib (startup time)

    report = build_report(records, folder, files)
    skipped = f" ({len(bad)} bad line(s) skipped)" if bad else ""
    out.write(f"{len(records)} records from {len(files)} file(s){skipped} -> {report}\n")
    return 0


# -- the parser ------------------------------------------------------------------------------------

DESCRIPTION = """\
checkpoint_ad: reverse-mode AD on numpy with store-versus-recompute checkpointing policies.
Run experiments, compare policies, print plans, and rebuild reports from saved records."""

EXAMPLES = """\
examples:
  checkpoint-ad list
  checkpoint-ad plan --policy revolve --n 20 --slots 3
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
        "Print the plan a policy makes for a chain of n unit stages: one action per line, "
        "the forward evaluations and the peak number of stored items.",
        "  checkpoint-ad plan --policy revolve --n 20 --slots 3\n"
        "  checkpoint-ad plan --policy sqrt_n --n 100 --json")
    plan.add_argument("--policy", required=True, help="a registered policy (see `list`)")
    plan.add_argument("--n", required=True, type=positive_int, help="number of stages")
    plan.add_argument("--json", action="store_true",
                      help="print one JSON object: forward_evals, peak_stored, actions, ...")
    add_policy_options(plan)

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

    comparison = _command(
        commands, "compare", "compare policies on one workload, printed as a table",
        "Measure each policy on one workload (each in a fresh process) and print a table: "
        "forward evaluations, stored items, activation bytes by kind beside the parameters, "
        "predicted and measured bytes, time, and ratios to store_all. Policies are separated "
        "by commas, their parameters by colons: revolve:slots=8, optimal:slots=4:tapes=false, "
        "optimal:budget_fraction=0.3.",
        "  checkpoint-ad compare --workload mlp --n 64 --width 256 "
        "--policies store_all,sqrt_n,revolve:slots=8\n"
        "  checkpoint-ad compare --workload chain --n 100 --policies store_all,revolve --json")
    comparison.add_argument("--workload", default="chain",
                            help="a registered workload (default chain; see `list`)")
    comparison.add_argument("--policies", default="store_all,recompute_all,sqrt_n,revolve",
                            help="comma-separated policies, each NAME[:KEY=VALUE...] "
                                 "(default: %(default)s)")
    comparison.add_argument("--repeats", type=positive_int, default=3,
                            help="timed runs after the warm-up (default 3)")
    comparison.add_argument("--seed", type=non_negative_int, default=0,
                            help="seed of inputs and weights (a whole number >= 0)")
    comparison.add_argument("--dtype", default="float64", help="float32 or float64")
    comparison.add_argument("--costs", default="model", choices=COST_MODES,
                            help="stage costs the planners see (default: the workload's "
                                 "cost model)")
    comparison.add_argument("--json", action="store_true",
                            help="print only a JSON list of the records on stdout")
    comparison.add_argument("--no-progress", action="store_true",
                            help="no progress on stderr")
    add_max_memory(comparison, "nothing runs if any configuration is above it")
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
            "compare": command_compare, "report": command_report}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); return the exit status:
    0 done, 2 a user error (one line on stderr), 130 interrupted (one line on stderr)."""
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
