"""Where a record comes from: the package version, the git commit and the machine."""
from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from ..version import __version__


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
    commit = git_commit()
    return {"package_version": __version__, "git_commit": commit,
            "git_dirty": git_dirty() if commit else None, "machine": machine_info()}
