"""The ``checkpoint-ad report`` command: figures and report.md rebuilt from records files, each
damaged line skipped with one warning."""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from ..errors import ExperimentError
from ..records.files import BadLine, find_results, scan_results
from ..records.folders import check_output_files, ensure_writable_folder
from .options import PROG, doing, new_command


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
    from ..report.markdown import REPORT_FILE, build_report  # imports matplotlib (startup time)

    check_output_files(folder, [REPORT_FILE])
    with doing(f"drawing the report of {len(records)} records"):
        report = build_report(records, folder, files)
    skipped = f" ({len(bad)} bad line(s) skipped)" if bad else ""
    out.write(f"{len(records)} records from {len(files)} file(s){skipped} -> {report}\n")
    return 0


def add_report_command(commands: Any) -> None:
    """The ``report`` command's arguments."""
    report = new_command(
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
