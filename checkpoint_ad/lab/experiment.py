"""Running experiments: tasks measured in order, sweeps into a folder (fresh, resumed or
overwritten), and ad-hoc comparisons.

The specs themselves (TOML format, validation, grid expansion, loading) are
:mod:`checkpoint_ad.lab.specs`.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import ExperimentError
from .measure import run_points
from .points import PointTask, check_backend
from .preflight import PointCheck, check_points, refuse_above
from ..records.files import (CSV_FILE, RECORDS_FILE, RecordsScan, RecordWriter, scan_records,
                             write_csv)
from ..records.folders import (FolderLock, LOCK_FILE, check_output_files, ensure_writable_folder,
                               remove_created_folders)
from ..records.provenance import environment
from ..records.schema import Record, describe_identity
from .specs import Experiment, parse_experiment



# -- running --------------------------------------------------------------------------------------

Progress = Callable[[int, int, PointTask, Record | None], None]


def run_tasks(tasks: list[PointTask], writer: RecordWriter | None = None,
              progress: Progress | None = None, isolate: bool = True, *, start: int = 0,
              total: int | None = None) -> list[Record]:
    """Measure ``tasks`` in order, writing each record as soon as it exists. ``start`` and
    ``total`` place them in a larger sweep for ``progress`` (points done before, all points)."""
    records: list[Record] = []
    if not tasks:
        return records
    total = len(tasks) + start if total is None else total
    if progress:
        progress(start, total, tasks[0], None)
    points = run_points(tasks, isolate)
    try:
        for index, record in enumerate(points):
            if writer is not None:
                writer.write(record)
            records.append(record)
            if progress:
                following = tasks[index + 1] if index + 1 < len(tasks) else tasks[index]
                progress(start + index + 1, total, following, record)
    finally:
        points.close()  # an interrupt here still stops the workers at once
    return records


# -- sweeps into a folder: fresh, resumed or overwritten -------------------------------------------

SWEEP_MODES = ("new", "resume", "overwrite")
OUTPUT_FILES = (RECORDS_FILE, CSV_FILE, "report.md", LOCK_FILE)  # report.md: report.REPORT_FILE


@dataclass
class Sweep:
    """A run of ``experiment`` into ``folder``, checked before anything runs (see
    :func:`prepare_sweep`): every point planned (``checks``), the records already in the
    folder's records file that it keeps (``recorded``, by identity; resume only), the points
    still to measure (``pending``), and ``notes`` for the user (a truncated line to cut off)."""

    experiment: Experiment
    folder: Path
    mode: str
    checks: list[PointCheck]
    pending: list[PointCheck]
    recorded: dict[tuple[Any, ...], Record] = field(default_factory=dict)
    replaced: int = 0
    scan: RecordsScan | None = None
    notes: list[str] = field(default_factory=list)
    lock: FolderLock | None = None

    def close(self) -> None:
        """Release the folder's lock (the run has ended)."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    @property
    def records_path(self) -> Path:
        return self.folder / RECORDS_FILE


def _existing(path: Path) -> RecordsScan | None:
    if not path.exists():
        return None
    if not path.is_file():
        raise ExperimentError(f"{path} exists and is not a records file; choose another --out")
    return scan_records(path)


def _refuse_unusable(scan: RecordsScan | None, mode: str) -> None:
    """Refuse what the folder's records file holds, as far as it can be judged before any
    point is planned: records a "new" run would mix into, damage "resume" cannot repair."""
    if scan is None:
        return
    held = len(scan.records) + len(scan.bad)
    if held and mode == "new":
        raise ExperimentError(f"{scan.path} already holds {held} record line(s); add --resume "
                              f"to continue that run, --overwrite to replace it, or choose "
                              f"another --out")
    damaged = [line for line in scan.bad if not line.truncated]
    if damaged and mode == "resume":
        raise ExperimentError(f"{damaged[0]}; --resume repairs only a truncated last line: fix "
                              f"or delete line {damaged[0].number}, or choose another --out")


def _kept_on_resume(scan: RecordsScan, checks: list[PointCheck]) -> dict[tuple[Any, ...], Record]:
    """The records a resumed sweep keeps, by identity; refuses records that belong to another
    run (identities hold resolved sizes and parameters, known once the points are planned)."""
    wanted = {check.identity for check in checks}
    strangers = [(number, record) for number, record in zip(scan.numbers, scan.records)
                 if record.identity not in wanted]
    if strangers:
        number, record = strangers[0]
        raise ExperimentError(
            f"{scan.path}:{number}: not a point of this run ({describe_identity(record.identity)}"
            f"; {len(strangers)} such record(s)); resume with the same experiment and options "
            f"(--quick?), or choose another --out")
    kept: dict[tuple[Any, ...], Record] = {}
    for record in scan.records:
        kept.setdefault(record.identity, record)
    return kept


def _survey(experiment: Experiment, folder: Path, mode: str, checks: list[PointCheck],
            max_memory: int | None) -> Sweep:
    """The sweep as the folder's records file now stands (reads only; see prepare_sweep)."""
    scan = _existing(folder / RECORDS_FILE)
    _refuse_unusable(scan, mode)
    sweep = Sweep(experiment, folder, mode, checks, checks, scan=scan)
    if mode == "overwrite" and scan is not None:
        sweep.replaced = len(scan.records) + len(scan.bad)
    if mode == "resume" and scan is not None:
        sweep.recorded = _kept_on_resume(scan, checks)
        sweep.pending = [check for check in checks if check.identity not in sweep.recorded]
        tail = scan.truncated_tail
        if tail is not None:
            sweep.notes.append(f"{tail.path}:{tail.number}: cutting off a truncated last line "
                               f"(left by an interrupted write); {len(scan.records)} complete "
                               f"record(s) kept")
    refuse_above(sweep.pending, max_memory)
    return sweep


def _check_folder(folder: Path, mode: str) -> list[Path]:
    """Everything about the output folder that can be refused before any point is planned
    (planning a sweep can take many seconds): its output files, another run holding it, its
    records file (see :func:`_refuse_unusable`), and that it is writable. Creates the folder
    if needed; returns the folders created."""
    check_output_files(folder, OUTPUT_FILES)
    FolderLock.refuse_if_held(folder)
    _refuse_unusable(_existing(folder / RECORDS_FILE), mode)
    return ensure_writable_folder(folder)


def _planned(experiment: Experiment, max_memory: int | None, backend: str
             ) -> tuple[list[PointCheck], list[str]]:
    """Every point of ``experiment`` planned (:func:`~.preflight.check_points`), and the
    reasons of those left out for want of a plan; refuses a sweep left with no point."""
    tasks = [replace(task, max_memory=max_memory, backend=backend)
             for task in experiment.tasks(environment())]
    unplanned: list[str] = []
    checks = check_points(tasks, experiment.source + ":", unplanned)
    if not checks:
        more = f" (and {len(unplanned) - 1} more)" if len(unplanned) > 1 else ""
        raise ExperimentError(f"no point has a plan; {unplanned[0]}{more}")
    return checks, unplanned


def prepare_sweep(experiment: Experiment, out_dir: str | os.PathLike[str], *,
                  mode: str = "new", max_memory: int | None = None,
                  command: str = "checkpoint_ad.lab.experiment", backend: str = "numpy") -> Sweep:
    """Check everything a run of ``experiment`` into ``out_dir`` needs, before anything runs
    or is written; raise the package's own error (one line) at the first problem.

    First the output folder, before any point is planned (so that a refusal comes at once):

    * the files a run writes (records, CSV, report) must not exist as folders;
    * one run at a time per folder: a folder another run holds is refused, naming the holder;
    * ``mode`` "new" refuses a records file that already holds lines (results are never
      silently replaced or mixed); "resume" keeps its records, skips their points, and cuts off
      a truncated last line (an interrupted write), but refuses other damage; "overwrite"
      replaces it;
    * the folder must be writable (it is created if needed, and removed again if the run is
      refused later).

    Then the points:

    * every point is planned and its peak predicted (:func:`~.preflight.check_points`): bad
      budgets and parameters are refused now, naming the point; a graph planner that finds no
      plan at a point's budget leaves that point out, with a note saying why;
    * "resume" refuses records of another run (identities hold the resolved parameters);
    * ``max_memory`` (bytes): if any point still to run is predicted to hold more activation
      bytes, the whole run is refused, naming the first such point (:class:`BudgetError`);
    * ``backend`` "torch" runs every point on torch modules (see :class:`~.measure.PointTask`).

    The sweep holds the folder's lock (:class:`FolderLock`, naming ``command`` as its holder)
    from before the records are examined again until :meth:`Sweep.close`.
    """
    if mode not in SWEEP_MODES:
        raise ExperimentError(f"mode must be one of {', '.join(SWEEP_MODES)}, got {mode!r}")
    folder, backend = Path(out_dir), check_backend(backend)
    created = _check_folder(folder, mode)
    try:
        checks, unplanned = _planned(experiment, max_memory, backend)
        _survey(experiment, folder, mode, checks, max_memory)  # refusals before anything is written
    except BaseException:  # an interrupt too: a refused run leaves no folder behind
        remove_created_folders(created)
        raise
    lock = FolderLock(folder, command)
    try:  # again under the lock: another run may have written records meanwhile
        sweep = _survey(experiment, folder, mode, checks, max_memory)
    except BaseException:
        lock.release()
        raise
    sweep.lock = lock
    sweep.notes += [f"no plan, left out: {reason}" for reason in unplanned]
    return sweep


def _cut_truncated_tail(sweep: Sweep) -> None:
    scan = sweep.scan
    if sweep.mode == "resume" and scan is not None and scan.truncated_tail is not None:
        with open(sweep.records_path, "r+b") as handle:
            handle.truncate(scan.valid_end)
            os.fsync(handle.fileno())


def run_sweep(sweep: Sweep, progress: Progress | None = None,
              isolate: bool = True, *, release: bool = True) -> list[Record]:
    """Measure the sweep's pending points, appending each record to the records file as soon
    as it exists (one whole, fsynced line: an interrupted sweep keeps every completed record),
    then write ``records.csv``. Returns every record of the run, in the experiment's order.
    ``release``: release the folder's lock at the end (False: the caller does, with
    :meth:`Sweep.close`, after writing more into the folder)."""
    try:
        return _measure(sweep, progress, isolate)
    finally:
        if release:
            sweep.close()


def _measure(sweep: Sweep, progress: Progress | None, isolate: bool) -> list[Record]:
    _cut_truncated_tail(sweep)
    done = len(sweep.checks) - len(sweep.pending)
    with RecordWriter(sweep.records_path, append=sweep.mode == "resume") as writer:
        new = run_tasks([check.task for check in sweep.pending], writer, progress, isolate,
                        start=done, total=len(sweep.checks))
    by_identity = {**sweep.recorded, **{record.identity: record for record in new}}
    order = [check.identity for check in sweep.checks]
    records = [by_identity[key] for key in order if key in by_identity]
    records += [record for record in new if record.identity not in set(order)]
    write_csv(sweep.folder / CSV_FILE, records)
    return records


def run_experiment(experiment: Experiment, out_dir: str | Path,
                   progress: Progress | None = None, isolate: bool = True, *,
                   mode: str = "new", max_memory: int | None = None) -> list[Record]:
    """Run every point of ``experiment`` (see :func:`prepare_sweep` for ``mode`` and
    ``max_memory``); records go to ``out_dir/records.jsonl`` (one whole, fsynced line each, so
    an interrupted run keeps what it completed and can be resumed) and ``records.csv``."""
    return run_sweep(prepare_sweep(experiment, out_dir, mode=mode, max_memory=max_memory),
                     progress, isolate)


def compare(workload: str, sizes: Mapping[str, Any], configurations: list[tuple[str, dict]],
            repeats: int = 3, seed: int = 0, dtype: str = "float64", costs: str = "model",
            progress: Progress | None = None, isolate: bool = True,
            max_memory: int | None = None, backend: str = "numpy",
            family: str = "chain", unplanned: list[str] | None = None) -> list[Record]:
    """An ad-hoc comparison: each (policy, params) on one workload and sizes (a graph workload
    and graph policies with ``family="graph"``). Every configuration is planned first;
    ``max_memory`` (bytes) refuses them all, before anything runs, if any is predicted to hold
    more activation bytes. With an ``unplanned`` list, graph configurations whose planner finds
    no plan are left out, each reason appended (see :func:`~.preflight.check_points`); if none
    is left, :class:`ExperimentError` names the first reason."""
    entries = [{"policy": policy, "params": params} for policy, params in configurations]
    spec = parse_experiment({"name": "compare", "family": family, "workload": workload,
                             "sizes": dict(sizes), "policies": entries, "repeats": repeats,
                             "seed": seed, "dtype": dtype, "costs": costs}, "compare")
    tasks = [replace(task, detail=False, max_memory=max_memory, backend=check_backend(backend))
             for task in spec.tasks(environment())]
    checks = check_points(tasks, "compare:", unplanned)
    if not checks:
        raise ExperimentError(f"no configuration has a plan: {unplanned[0]}" if unplanned
                              else "no configuration to compare")
    refuse_above(checks, max_memory)
    return run_tasks([check.task for check in checks], None, progress, isolate)

