"""Records files: JSON lines written whole, read leniently or strictly, exported as CSV.

The record itself (schema and identity) is :mod:`.schema`; output folders, their lock and
their writability are :mod:`.folders`.

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
import json
import os
import signal
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ExperimentError
from .schema import Record

RECORDS_FILE = "records.jsonl"
CSV_FILE = "records.csv"

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
    except RecursionError:
        return None, "not a record: its JSON is nested too deeply"
    except ValueError as error:  # an integer of more than 4300 digits
        return None, f"not a record: {error}".split(";")[0]
    try:
        problem = Record.problem(data)
    except RecursionError:  # a value nested just below the parser's limit
        problem = "not a record: a value is nested too deeply"
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
    """Export ``records`` as CSV (one row each, the columns of :func:`csv_row`). The file is
    written beside ``path`` and then renamed onto it, so it is never left half-written."""
    rows = [csv_row(record) for record in records]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        with open(partial, "w", newline="", encoding="utf-8") as handle:
            if rows:
                writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path
