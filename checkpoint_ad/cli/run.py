"""The ``checkpoint-ad run`` command: an experiment's sweep with a progress bar, its records and
its report; an interrupted run says how to resume."""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from ..errors import CheckpointADError
from ..lab.experiment import Sweep, prepare_sweep, run_sweep
from ..lab.specs import DEFAULT_EXPERIMENT, load_experiment
from ..records.files import scan_records
from .options import PROG, add_backend, add_max_memory, doing, new_command
from .output import ProgressBar


QUICK_FOLDER = "runs"  # quick runs land here, which .gitignore lists: reports/ stays as committed


def default_folder(name: str, backend: str, quick: bool) -> Path:
    """Where a run writes without ``--out``: ``reports/NAME`` for a full run (beside the
    committed reference reports), ``runs/NAME-quick`` for a quick one (a folder git ignores,
    so that trying the command never touches the committed reports); ``-BACKEND`` after the
    name for a backend other than numpy."""
    name += "" if backend == "numpy" else f"-{backend}"
    return Path(QUICK_FOLDER) / f"{name}-quick" if quick else Path("reports") / name


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
    folder = (Path(args.out) if args.out
              else default_folder(experiment.name, args.backend, args.quick))
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
        from ..report.markdown import build_report  # matplotlib: imported only when drawing (startup)

        with doing(f"drawing the report of {experiment.name}"):
            report = build_report(records, folder, [sweep.records_path])
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted while drawing the report; all {len(records)} "
                         f"records are in {sweep.records_path}; draw it with: "
                         f"{shlex.join([PROG, 'report', str(folder)])}\n")
        return 130
    figures = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.png"))
    ran = len(sweep.pending)
    how = (f" ({len(records) - ran} already recorded, {ran} run now)" if mode == "resume"
           else f" (replacing {sweep.replaced} earlier record lines)" if sweep.replaced else "")
    out.write(f"{experiment.name}{' (quick)' if args.quick else ''}: {len(records)} records"
              f"{how} in {elapsed:.1f} s -> {sweep.records_path} (and records.csv)\n"
              f"report: {report}; figures: {', '.join(figures)}\n")
    if args.quick and not args.out:
        full = default_folder(experiment.name, args.backend, quick=False)
        out.write(f"a quick run writes under {QUICK_FOLDER}/, which git ignores; the full run "
                  f"(without --quick) writes {full}\n")
    return 0


def add_run_command(commands: Any) -> None:
    """The ``run`` command's arguments."""
    run = new_command(
        commands, "run", "run an experiment, write its records and plots",
        "Run an experiment: every grid point and policy configuration in a fresh process, "
        "with a progress bar. Writes records.jsonl and records.csv, then the figures (PNG) "
        "and report.md, under DIR.",
        "  checkpoint-ad run --quick               # fig69's reduced grid into runs/fig69-quick/\n"
        "  checkpoint-ad run revolve_slots --out /tmp/slots\n"
        "  checkpoint-ad run my_experiment.toml --max-memory 64MiB\n"
        "  checkpoint-ad run revolve_slots --out /tmp/slots --resume   # after an interrupt")
    run.add_argument("experiment", nargs="?", default=DEFAULT_EXPERIMENT, metavar="EXPERIMENT",
                     help=f"a shipped experiment's name or a .toml file (default "
                          f"{DEFAULT_EXPERIMENT}; see `list`)")
    run.add_argument("--quick", action="store_true",
                     help=f"the experiment's reduced grid, written (without --out) under "
                          f"{QUICK_FOLDER}/EXPERIMENT-quick, a folder git ignores: the committed "
                          f"reports stay untouched")
    run.add_argument("--out", metavar="DIR",
                     help=f"output folder (default, in the current directory: reports/EXPERIMENT;"
                          f" {QUICK_FOLDER}/EXPERIMENT-quick with --quick)")
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
