"""What the commands print besides their results: a progress bar on stderr, and JSON."""
from __future__ import annotations

import json
import shutil
import sys
import time
from typing import Any, TextIO

from ..lab.points import PointTask
from ..records.schema import Record, point_label


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
                point = point_label(record.workload, record.sizes, record.policy,
                                    record.params)
                self.stream.write(f"[{done}/{total}] {point}: {record.forward_evals:,} "
                                  f"evaluations, {record.peak_bytes:,} bytes peak "
                                  f"({elapsed:.1f} s)\n")
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


def write_json(data: Any, out: TextIO) -> int:
    """``data`` as one line of JSON on ``out``; the exit status 0."""
    json.dump(data, out)
    out.write("\n")
    return 0
