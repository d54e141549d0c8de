"""The ``checkpoint-ad`` command line: thin argument handling over library functions.

``main(argv) -> int``. Every user error (a usage mistake or the package's own exception) prints
exactly one line ``checkpoint-ad: error: ...`` on stderr and returns 2, without a usage dump or
a traceback; an interrupt (Ctrl-C) prints one line and returns 130. docs/errors.md lists the
messages and the tests that cover them.

Each command is one module beside this one (:mod:`.listing`, :mod:`.plan`, :mod:`.recommend`,
:mod:`.run`, :mod:`.compare`, :mod:`.report`) that holds both the command and the builder of its
arguments; the shared options, value parsers and the one-line :class:`~.options.Parser` are in
:mod:`.options`, what the commands print besides results in :mod:`.output`.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from ..errors import CheckpointADError
from ..version import __version__
from .compare import add_compare_command, command_compare
from .listing import add_list_command, command_list
from .options import ACTIVITY, PROG, Formatter, Parser
from .plan import add_plan_command, command_plan
from .recommend import add_recommend_command, command_recommend
from .report import add_report_command, command_report
from .run import add_run_command, command_run


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
  checkpoint-ad run --quick                       # fig69, reduced grid, into runs/fig69-quick/
  checkpoint-ad compare --workload mlp --n 64 --width 256 \\
                        --policies store_all,sqrt_n,revolve:slots=8
  checkpoint-ad report reports/fig69"""


def make_parser() -> argparse.ArgumentParser:
    parser = Parser(prog=PROG, description=DESCRIPTION, epilog=EXAMPLES,
                    formatter_class=Formatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add_command in (add_list_command, add_plan_command, add_recommend_command,
                        add_run_command, add_compare_command, add_report_command):
        add_command(commands)
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
