"""Self-describing measurement records: the schema, the environment, JSON lines and CSV.

One :class:`Record` per grid point and policy configuration. Every record carries what is needed
to read it alone: the schema version, the experiment, the workload and its sizes, the policy and
its parameters, the seed and dtype, the package version, the git commit (when the package runs
from a git checkout; ``git_dirty`` says whether tracked files had changes) and the machine
(platform, Python, numpy, CPU count, BLAS thread settings of the worker). Units: bytes,
seconds, evaluations.

Records are appended to a ``.jsonl`` file one line at a time, flushed and fsynced, so that an
interrupted sweep keeps every completed record. :func:`write_csv` exports the scalar fields.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import os
import platform
import subprocess
from collections.abc import Iterable, Iterator
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

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "record") -> Record:
        """A record from its JSON object; raises :class:`ExperimentError` if it is malformed."""
        if not isinstance(data, dict):
            raise ExperimentError(f"{source}: expected a JSON object, got {type(data).__name__}")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ExperimentError(f"{source}: schema_version {version!r} is not supported "
                                  f"(this package reads version {SCHEMA_VERSION})")
        names = {f.name for f in dataclasses.fields(cls)}
        missing_default = dataclasses.MISSING
        required = {f.name for f in dataclasses.fields(cls)
                    if f.default is missing_default and f.default_factory is missing_default}
        missing = sorted(required - set(data))
        if missing:
            raise ExperimentError(f"{source}: missing fields {', '.join(missing)}")
        unknown = sorted(set(data) - names)
        if unknown:
            raise ExperimentError(f"{source}: unknown fields {', '.join(unknown)}")
        return cls(**data)


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

class RecordWriter:
    """Appends records to a JSON-lines file, one flushed and fsynced line each."""

    def __init__(self, path: str | os.PathLike[str], append: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a" if append else "w", encoding="utf-8")

    def write(self, record: Record) -> None:
        self._file.write(json.dumps(record.to_dict(), separators=(",", ":"), allow_nan=True))
        self._file.write("\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_records(path: str | os.PathLike[str], records: Iterable[Record]) -> Path:
    with RecordWriter(path) as writer:
        for record in records:
            writer.write(record)
    return Path(path)


def iter_records(path: str | os.PathLike[str]) -> Iterator[Record]:
    """The records of one ``.jsonl`` file; a malformed line raises :class:`ExperimentError`."""
    path = Path(path)
    try:
        handle = open(path, encoding="utf-8")
    except OSError as error:
        raise ExperimentError(f"cannot read results file {path}: {error.strerror}") from None
    with handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as error:
                raise ExperimentError(f"{path}:{number}: not JSON ({error.msg})") from None
            yield Record.from_dict(data, f"{path}:{number}")


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
    """Every record in the files or directories ``paths``."""
    return [record for path in find_results(paths) for record in iter_records(path)]


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
