"""Output folders: created and checked writable before a run, one run at a time in each (an
exclusive lock file), and output files checked before anything is written."""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from ..errors import ExperimentError

try:
    import fcntl
except ImportError:  # Windows: runs into one folder are not serialised
    fcntl = None  # type: ignore[assignment]


def ensure_writable_folder(folder: str | os.PathLike[str]) -> list[Path]:
    """Create ``folder`` (and its parents) if needed and check that a file can be created in
    it; otherwise raise :class:`ExperimentError` saying why, leaving nothing behind. Returns
    the folders it created, parents first (for :func:`remove_created_folders`)."""
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
        remove_created_folders(created)
        reason = error.strerror or str(error)
        raise ExperimentError(f"cannot write to output folder {folder}: {reason}; choose "
                              f"another --out") from None
    return created


def remove_created_folders(created: list[Path]) -> None:
    """Remove the folders :func:`ensure_writable_folder` created, deepest first, as long as
    they are empty (a run refused after that check leaves no folder behind)."""
    for path in reversed(created):
        try:
            path.rmdir()
        except OSError:
            return


# -- one run at a time per folder ------------------------------------------------------------------

LOCK_FILE = ".checkpoint-ad.lock"


class FolderLock:
    """An exclusive lock on an output folder, held by one run from before it looks at the
    folder's records until it ends: ``fcntl.flock`` on ``folder/.checkpoint-ad.lock``, which
    names the holder (its pid and command). The kernel drops the lock when the holder's process
    ends, however it ends, so a stale lock file never blocks a later run. Where ``fcntl`` is
    missing (Windows) no lock is taken."""

    def __init__(self, folder: str | os.PathLike[str], command: str) -> None:
        self.path = Path(folder) / LOCK_FILE
        self._fd: int | None = None
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if not _try_lock(self._fd):
            self.release()
            raise _busy(Path(folder))
        if fcntl is not None:
            os.ftruncate(self._fd, 0)
            os.write(self._fd, f"pid {os.getpid()}: {command}\n".encode("utf-8", "replace"))

    @staticmethod
    def refuse_if_held(folder: str | os.PathLike[str]) -> None:
        """Raise the error a run would get if another run holds ``folder`` now; creates and
        writes nothing (a folder without a lock file is free)."""
        try:
            fd = os.open(Path(folder) / LOCK_FILE, os.O_RDONLY)
        except OSError:
            return
        try:
            if not _try_lock(fd):
                raise _busy(Path(folder))
        finally:
            os.close(fd)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    __del__ = release  # a lock never outlives its object

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _try_lock(fd: int) -> bool:
    """Take the exclusive lock of ``fd`` if no other open file holds it (True where there is
    no ``fcntl``: nothing is serialised there)."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _busy(folder: Path) -> ExperimentError:
    """The error of a run refused because another holds ``folder``, naming the holder as its
    lock file does (``pid 1234: checkpoint-ad run ...``)."""
    try:
        text = (folder / LOCK_FILE).read_bytes()[:300].decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    holder = " ".join(text.split()) or "a process that has not yet written its pid"
    return ExperimentError(f"{folder} is in use by another run ({holder}); wait for it to end, "
                           f"or choose another --out")


def check_output_files(folder: str | os.PathLike[str], names: Iterable[str]) -> None:
    """Refuse, before anything runs, an output ``folder`` where one of the files ``names``
    that a run writes exists as something else than a file (a folder, say)."""
    for name in names:
        path = Path(folder) / name
        if path.exists() and not path.is_file():
            raise ExperimentError(f"cannot write {path}: it exists and is not a file; move it "
                                  f"away or choose another --out")
