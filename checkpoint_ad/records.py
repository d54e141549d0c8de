"""Self-describing measurement records: the schema, the environment, JSON lines and CSV.

One :class:`Record` per grid point and policy configuration. Every record carries what is needed
to read it alone: the schema version, the experiment, the workload and its sizes, the policy and
its parameters, the seed and dtype, the package version, the git commit (when the package runs
from a git checkout; ``git_dirty`` says whether tracked files had changes) and the machine
(platform, Python, numpy, CPU count, BLAS thread settings of the worker). Units: bytes,
seconds, evaluations.

Records are appended to a ``.jsonl`` file one whole line at a time (one ``write`` of the line
and its newline, then ``fsync``, with SIGINT and SIGTERM held back meanwhile), so that a sweep
interrupted at any moment keeps every completed record and leaves at most a truncated last line
(after a SIGKILL or a power loss), which :func:`scan_records` recognises and resuming cuts off.
:func:`scan_records` reads a file leniently (each bad line reported with its number, counted
from 1); :func:`iter_records` and :func:`read_records` are strict. :func:`write_csv` exports the
scalar fields.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import os
import platform
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ExperimentError

SCHEMA_VERSION = 1
RECORDS_FILE = "records.jsonl"


@dataclass(frozen=True)
class Record:
    """The measurement of one policy configuration at one grid point.

    * Counts: ``forward_evals`` (every stage evaluation, first sweep included), ``peak_stored``
      (checkpoints, x_0 included, plus held tapes), ``forward_cost`` (the sum over evaluations of
      the stage costs, normalised to a mean of 1 per stage, so it equals ``forward_evals`` for
      uniform chains).
    * Bytes: ``peak_bytes`` (the Meter's exact activation peak), ``peak_bytes_by_kind`` (that
      peak split into checkpoint/tape/working/cotangent), ``predicted_peak_bytes`` (the plan run
      symbolically before the real run), ``measured_peak_bytes`` (tracemalloc's peak over the
      run), ``rss_peak_increase_bytes`` (memory-profiler's sampled peak RSS minus the RSS before
      the run; coarse: runs shorter than the sampling interval show little),
      ``rss_high_water_increase_bytes`` (the kernel's RSS high-water mark of the worker process
      after the run minus the RSS before it; None where unavailable). Parameters and their
      gradients are apart: ``parameter_bytes``, ``parameter_gradient_bytes``.
    * Times (seconds): ``wall_s_median``, ``wall_s_min``, ``wall_s_max`` over ``repeats`` runs
      after a warm-up, each the executor's forward and reverse sweeps (no planning or profiling).
    * ``max_grad_diff``: the largest absolute difference between this run's gradients (input and
      parameters) and store_all's on the same inputs and seed (0.0 means bit-identical).
    * Detail (None except on the experiment's detail point): ``timeline``, [[event, live
      bytes], ...] of the Meter during one run, downsampled keeping each bucket's extremes;
      ``forward_events``, the Meter event at which the forward sweep ended; ``schedule``,
      [[action, stage, end], ...], the plan's steps.
    """

    experiment: str
    workload: str
    sizes: dict[str, Any]
    policy: str
    params: dict[str, Any]
    plan_params: dict[str, Any]
    seed: int
    dtype: str
    costs: str
    repeats: int
    forward_evals: int
    peak_stored: int
    forward_cost: float
    peak_bytes: int
    peak_bytes_by_kind: dict[str, int]
    predicted_peak_bytes: int
    measured_peak_bytes: int | None
    rss_peak_increase_bytes: int | None
    rss_high_water_increase_bytes: int | None
    parameter_bytes: int
    parameter_gradient_bytes: int
    wall_s_median: float
    wall_s_min: float
    wall_s_max: float
    max_grad_diff: float
    loss: float
    package_version: str = ""
    git_commit: str | None = None
    git_dirty: bool | None = None
    machine: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    timeline: list[list[int]] | None = None
    forward_events: int | None = None
    schedule: list[list[Any]] | None = None
    schema_version: int = SCHEMA_VERSION

    @property
    def n(self) -> int:
        return int(self.sizes["n"])

    @property
    def label(self) -> str:
        """``policy(key=value, ...)`` with the parameters as given (``policy`` alone if none)."""
        if not self.params:
            return self.policy
        return f"{self.policy}({', '.join(f'{k}={v}' for k, v in self.params.items())})"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def identity(self) -> tuple[Any, ...]:
        """What makes two records the same point of a sweep (see :func:`point_identity`)."""
        return point_identity(self.experiment, self.workload, self.sizes, self.policy,
                              self.params, self.seed, self.dtype, self.costs, self.repeats)

    @classmethod
    def problem(cls, data: Any) -> str | None:
        """Why ``data`` (a parsed JSON value) is not a record of this schema, or None."""
        if not isinstance(data, dict):
            return f"expected a JSON object, got {type(data).__name__}"
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            return (f"schema_version {version!r} is not supported "
                    f"(this package reads version {SCHEMA_VERSION})")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        missing_default = dataclasses.MISSING
        required = {name for name, f in fields.items()
                    if f.default is missing_default and f.default_factory is missing_default}
        missing = sorted(required - set(data))
        if missing:
            shown = ", ".join(missing[:6]) + (", ..." if len(missing) > 6 else "")
            return (f"missing fields {shown}" if len(missing) <= 6
                    else f"missing {len(missing)} of the {len(required)} required fields: {shown}")
        unknown = sorted(set(data) - set(fields))
        if unknown:
            return f"unknown fields {', '.join(unknown)}"
        for name, value in data.items():
            if not _has_type(value, str(fields[name].type)):
                return f"field {name} must be {fields[name].type}, got {value!r}"[:200]
        n = data["sizes"].get("n")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            return f"sizes must hold a positive integer n, got {data['sizes']!r}"[:200]
        return None

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "record") -> Record:
        """A record from its JSON object; raises :class:`ExperimentError` if it is malformed."""
        problem = cls.problem(data)
        if problem is not None:
            raise ExperimentError(f"{source}: {problem}")
        return cls(**data)


_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,), "int": (int,), "float": (int, float), "bool": (bool,), "dict": (dict,),
    "list": (list,), "None": (type(None),), "Any": (object,)}


def _has_type(value: Any, annotation: str) -> bool:
    """Whether a JSON value fits a field annotation such as ``int | None`` or ``dict[str, Any]``
    (the outer type only; ``bool`` is not accepted as a number)."""
    for option in annotation.split("|"):
        base = option.strip().split("[", 1)[0]
        accepted = _TYPES.get(base, (object,))
        if isinstance(value, bool) and bool not in accepted and object not in accepted:
            continue
        if isinstance(value, accepted):
            return True
    return False


def point_identity(experiment: str, workload: str, sizes: dict[str, Any], policy: str,
                   params: dict[str, Any], seed: int, dtype: str, costs: str,
                   repeats: int) -> tuple[Any, ...]:
    """The identity of one measured point: the experiment, the workload and its resolved sizes,
    the policy and its resolved parameters (``budget_fraction`` already turned into
    ``budget_bytes``), the seed, dtype, cost mode and number of timed repeats. Two records with
    the same identity measure the same thing (only timings and probed bytes may differ)."""
    return (experiment, workload, json.dumps(sizes, sort_keys=True), policy,
            json.dumps(params, sort_keys=True), seed, dtype, costs, repeats)


def describe_identity(identity: tuple[Any, ...]) -> str:
    """A point's identity in words: ``fig69: chain n=4 width=1000 revolve(slots=8), seed 0,
    float64, model costs, 3 repeats``."""
    experiment, workload, sizes, policy, params, seed, dtype, costs, repeats = identity
    sizes_text = " ".join(f"{k}={v}" for k, v in json.loads(sizes).items())
    given = ", ".join(f"{k}={v}" for k, v in json.loads(params).items())
    label = f"{policy}({given})" if given else policy
    return (f"{experiment}: {workload} {sizes_text} {label}, seed {seed}, {dtype}, "
            f"{costs} costs, {repeats} repeats")


# -- environment --------------------------------------------------------------------------------

def machine_info() -> dict[str, Any]:
    """Platform, Python and numpy versions, processor and CPU count."""
    import numpy

    return {"platform": platform.platform(), "machine": platform.machine(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(), "numpy": numpy.__version__,
            "cpu_count": os.cpu_count()}


def _git(*arguments: str) -> str | None:
    """The output of ``git ARGUMENTS`` in the package's directory, or None on any failure."""
    try:
        done = subprocess.run(["git", *arguments], cwd=Path(__file__).parent,
                              capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_commit() -> str | None:
    """``git rev-parse HEAD`` in the package's directory, or None (not a checkout, no git)."""
    return _git("rev-parse", "HEAD") or None


def git_dirty() -> bool | None:
    """Whether tracked files differ from that commit (None when there is no checkout)."""
    status = _git("status", "--porcelain", "--untracked-files=no")
    return None if status is None else bool(status)


def environment() -> dict[str, Any]:
    """The fields every record of one run shares: package version, commit, machine."""
    from . import __version__

    commit = git_commit()
    return {"package_version": __version__, "git_commit": commit,
            "git_dirty": git_dirty() if commit else None, "machine": machine_info()}


# -- files ----------------------------------------------------------------------------------------

DEFERRED_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM")
                         if hasattr(signal, name))


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold back SIGINT and SIGTERM until the block ends, so that what it does (append one
    line, start a worker) is never cut in half; a signal that arrives meanwhile then takes
    effect (KeyboardInterrupt, or the default action). A no-op off the main thread.

    A Python-level handler only notes the signal: blocking it in the main thread's signal mask
    would not do, since the kernel may hand it to one of numpy's BLAS threads instead.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {number: signal.signal(number, lambda number, frame: held.append(number))
                for number in DEFERRED_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        for number in dict.fromkeys(held):
            handler = previous[number]
            if callable(handler):
                handler(number, None)  # SIGINT's default handler raises KeyboardInterrupt
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), number)  # the default action, now


class RecordWriter:
    """Writes records to a JSON-lines file, one whole line per ``write`` system call, fsynced.

    ``append=False`` starts the file afresh; ``append=True`` adds to it (first ending an
    unterminated last line with a newline, so a new record never joins an old one).
    """

    def __init__(self, path: str | os.PathLike[str], append: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (0 if append else os.O_TRUNC)
        self._fd: int | None = os.open(self.path, flags, 0o644)
        self.written = 0
        if append and not _ends_with_newline(self.path):
            self._write_all(b"\n")

    def _write_all(self, data: bytes) -> None:
        assert self._fd is not None, "the writer is closed"
        with interrupts_deferred():
            view = memoryview(data)
            while view:  # a regular file takes it in one call; loop in case it does not
                view = view[os.write(self._fd, view):]
            os.fsync(self._fd)

    def write(self, record: Record) -> None:
        line = json.dumps(record.to_dict(), separators=(",", ":"), allow_nan=True) + "\n"
        self._write_all(line.encode("utf-8"))
        self.written += 1

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _ends_with_newline(path: Path) -> bool:
    """True for an empty file or one whose last byte is a newline."""
    with open(path, "rb") as handle:
        if handle.seek(0, os.SEEK_END) == 0:
            return True
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


def write_records(path: str | os.PathLike[str], records: Iterable[Record]) -> Path:
    with RecordWriter(path) as writer:
        for record in records:
            writer.write(record)
    return Path(path)


@dataclass(frozen=True)
class BadLine:
    """A line of a records file that holds no valid record: its number (from 1) and why.
    ``truncated``: the file's last line, without its newline (an interrupted write)."""

    path: Path
    number: int
    reason: str
    truncated: bool = False

    def __str__(self) -> str:
        return f"{self.path}:{self.number}: {self.reason}"


@dataclass(frozen=True)
class RecordsScan:
    """A records file read leniently: its valid ``records`` (with their line ``numbers``), its
    ``bad`` lines, and ``valid_end``, the byte offset just after the last line that is not a
    truncated tail (where resuming cuts the file)."""

    path: Path
    records: list[Record]
    numbers: list[int]
    bad: list[BadLine]
    valid_end: int

    @property
    def truncated_tail(self) -> BadLine | None:
        return self.bad[-1] if self.bad and self.bad[-1].truncated else None


def _line_problem(line: bytes) -> tuple[Record | None, str]:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as error:
        return None, f"not UTF-8 text (byte {error.start + 1})"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        return None, f"not JSON: {error.msg.removesuffix(' at')} at column {error.colno}"
    problem = Record.problem(data)
    if problem is not None:
        return None, problem
    return Record(**data), ""


def scan_records(path: str | os.PathLike[str]) -> RecordsScan:
    """Read a ``.jsonl`` records file leniently: every valid record, and every bad line with
    its number (from 1) and the reason; blank lines are ignored. A last line without its
    newline that does not hold a valid record is reported as truncated."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ExperimentError(f"cannot read results file {path}: {error.strerror}") from None
    records, numbers, bad = [], [], []
    offset = valid_end = 0
    pieces = data.split(b"\n")
    for number, piece in enumerate(pieces, 1):
        last = number == len(pieces)
        if last and not piece:
            break  # the file ends with a newline
        offset += len(piece) + (0 if last else 1)
        if not piece.strip():
            valid_end = offset
            continue
        record, reason = _line_problem(piece)
        if record is not None:
            records.append(record)
            numbers.append(number)
        elif last:
            bad.append(BadLine(path, number, f"truncated last line, without its newline (an "
                                             f"interrupted write?): {reason}", True))
            continue  # valid_end stays before it
        else:
            bad.append(BadLine(path, number, reason))
        valid_end = offset
    return RecordsScan(path, records, numbers, bad, valid_end)


def iter_records(path: str | os.PathLike[str]) -> Iterator[Record]:
    """The records of one ``.jsonl`` file; a malformed line raises :class:`ExperimentError`."""
    scan = scan_records(path)
    if scan.bad:
        raise ExperimentError(str(scan.bad[0]))
    yield from scan.records


def find_results(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """``.jsonl`` files named by ``paths``: files as given, directories searched recursively."""
    found: list[Path] = []
    for entry in map(Path, paths):
        if entry.is_dir():
            files = sorted(entry.rglob("*.jsonl"))
            if not files:
                raise ExperimentError(f"no results (*.jsonl) under {entry}")
            found += files
        elif entry.exists():
            found.append(entry)
        else:
            raise ExperimentError(f"no such results file or directory: {entry}")
    return found


def read_records(paths: Iterable[str | os.PathLike[str]]) -> list[Record]:
    """Every record in the files or directories ``paths`` (strict: a bad line raises)."""
    return [record for path in find_results(paths) for record in iter_records(path)]


def scan_results(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[Record], list[BadLine]]:
    """Every valid record in the files or directories ``paths``, and every bad line skipped."""
    records: list[Record] = []
    bad: list[BadLine] = []
    for path in find_results(paths):
        scan = scan_records(path)
        records += scan.records
        bad += scan.bad
    return records, bad


def ensure_writable_folder(folder: str | os.PathLike[str]) -> None:
    """Create ``folder`` (and its parents) if needed and check that a file can be created in
    it; otherwise raise :class:`ExperimentError` saying why, leaving nothing behind."""
    folder = Path(folder)
    missing: list[Path] = []
    existing = folder
    while not existing.exists() and existing != existing.parent:
        missing.append(existing)
        existing = existing.parent
    if not existing.is_dir():
        raise ExperimentError(f"cannot write to output folder {folder}: {existing} is a file, "
                              f"not a folder; choose another --out")
    created: list[Path] = []
    try:
        for path in reversed(missing):
            path.mkdir()
            created.append(path)
        with tempfile.TemporaryFile(dir=folder, prefix=".checkpoint-ad-probe-"):
            pass
    except OSError as error:
        for path in reversed(created):
            try:
                path.rmdir()
            except OSError:
                pass
        reason = error.strerror or str(error)
        raise ExperimentError(f"cannot write to output folder {folder}: {reason}; choose "
                              f"another --out") from None


CSV_SKIP = ("timeline", "schedule", "machine")


def csv_row(record: Record) -> dict[str, Any]:
    """The record's scalar fields; dicts become JSON text; timeline and schedule are left out."""
    row = {}
    for name, value in record.to_dict().items():
        if name in CSV_SKIP:
            continue
        row[name] = json.dumps(value, sort_keys=True) if isinstance(value, dict) else value
    return row


def write_csv(path: str | os.PathLike[str], records: Iterable[Record]) -> Path:
    """Export ``records`` as CSV (one row each, the columns of :func:`csv_row`)."""
    rows = [csv_row(record) for record in records]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        if rows:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return path
