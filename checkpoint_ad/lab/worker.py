"""Run one measurement in a fresh worker process, so that one point's allocations never inflate
the next one's peak.

:func:`call_in_worker` sends a picklable module-level function and its argument to a fresh
interpreter (:func:`worker_main`), which calls it and sends back the record or the error. The
worker knows nothing of what it runs: :func:`~.measure.run_points` sends it
:func:`~.measure.measure_point` and one task.

Each worker is a fresh interpreter in a session of its own, so a Ctrl-C at the terminal reaches
the parent only, which kills the running worker and its children and stops. A worker also dies
with its parent (Linux), so a SIGKILLed sweep leaves no orphan measuring on.
"""
from __future__ import annotations

import ctypes
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import CheckpointADError, ExperimentError
from ..records.files import interrupts_deferred

THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


class WorkerTraceback(Exception):
    """The traceback of an unexpected error in a worker, shown as the cause of that error."""


def _die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this process when its parent dies (so a SIGKILLed sweep leaves no
    orphan measuring on); exit now if the parent is already gone."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:
        os._exit(1)


def worker_main() -> None:
    """A worker process (``python -c``, the parent's pid as argument): read one pickled
    (function, argument) on stdin, call it, write the pickled (result, error, traceback) on
    stdout (whatever else would be printed there goes to stderr).

    memory-profiler's sampler is a multiprocessing process: where the default start method is
    "spawn" or "forkserver" it would start a whole new interpreter (half a second); this
    throwaway worker forks it instead where it can."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent alone handles interrupts
    answer = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    _die_with_parent(int(sys.argv[1]))
    worker = os.getpid()  # and memory-profiler's sampler dies with this worker
    os.register_at_fork(after_in_child=lambda: _die_with_parent(worker))
    if "fork" in multiprocessing.get_all_start_methods():
        multiprocessing.set_start_method("fork", force=True)
    try:
        function, argument = pickle.load(sys.stdin.buffer)
    except EOFError:  # the parent went away before sending the task
        os._exit(1)
    try:
        outcome: tuple[Any, ...] = (function(argument), None, None)
    except Exception as error:  # noqa: BLE001  (sent to the parent, which re-raises it)
        outcome = (None, error, traceback.format_exc())
    try:
        data = pickle.dumps(outcome)
    except (pickle.PicklingError, TypeError, AttributeError):
        data = pickle.dumps((None, ExperimentError(f"{type(outcome[1]).__name__}: "
                                                   f"{outcome[1]}"), outcome[2]))
    try:
        with open(answer, "wb") as channel:
            channel.write(data)
    except OSError:  # the parent is gone (killed): there is no one to tell
        os._exit(1)


WORKER = ("import sys; sys.path.insert(0, {root!r}); "
          "from checkpoint_ad.lab.worker import worker_main; worker_main()")


def _kill_tree(pid: int) -> None:
    """SIGKILL process ``pid`` and its descendants (memory-profiler's sampler), children first."""
    try:
        import psutil  # a dependency of memory-profiler

        children = psutil.Process(pid).children(recursive=True)
    except Exception:  # noqa: BLE001  (no psutil, or the process is gone: kill what we can)
        children = []
    for process in reversed(children):
        try:
            process.kill()
        except Exception:  # noqa: BLE001  (already gone)
            pass
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def _start_worker() -> subprocess.Popen:
    """A fresh interpreter running :func:`worker_main`, in a session (process group) of its
    own: a Ctrl-C at the terminal reaches this process only, which then stops the worker."""
    root = str(Path(__file__).resolve().parents[2])  # this very package, installed or not
    apart: dict[str, Any] = ({"start_new_session": True} if os.name == "posix" else
                             {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)})
    return subprocess.Popen([sys.executable, "-c", WORKER.format(root=root), str(os.getpid())],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, **apart)


def call_in_worker(function: Callable[[Any], Any], argument: Any, label: str) -> Any:
    """``function(argument)`` in a fresh worker process (``function`` is pickled by name, so
    it must be a module-level function); kill the worker (and its children) if this process
    is interrupted meanwhile. ``label`` names the point in the error if the worker dies."""
    process: subprocess.Popen | None = None
    try:
        with interrupts_deferred():  # started whole, or not at all
            process = _start_worker()
        assert process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write(pickle.dumps((function, argument)))
            process.stdin.close()
        except BrokenPipeError:  # the worker died at once: reported below
            pass
        data = process.stdout.read()
        code = process.wait()
    except BaseException:
        if process is not None:
            _kill_tree(process.pid)
            process.wait()
        raise
    finally:
        if process is not None:
            for pipe in (process.stdin, process.stdout):
                if pipe is not None:
                    pipe.close()
    try:
        result, error, remote = pickle.loads(data)
    except Exception:  # noqa: BLE001  (nothing or half an answer: the worker died)
        how = f"was killed by signal {-code}" if code < 0 else f"exited ({code})"
        raise ExperimentError(f"the worker measuring {label} {how} before sending its "
                              f"record (out of memory?)") from None
    if error is None:
        return result
    if isinstance(error, CheckpointADError):
        raise error
    raise error from WorkerTraceback(remote)


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Processes started inside see one BLAS/OpenMP thread (unless the user chose a number).

    Multi-threaded BLAS makes timings erratic (a 64-layer MLP's store_all run measured
    anywhere from 40 ms to 1.2 s on a loaded 2-core machine); one thread makes them stable and
    comparable across policies. Only the workers see it: numpy is already loaded here.
    """
    added = [name for name in THREAD_VARIABLES if name not in os.environ]
    os.environ.update(dict.fromkeys(added, "1"))
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)

