"""Measure one policy configuration at one grid point, in a fresh process: counts, bytes, time,
gradient agreement. One call of :func:`measure_point` makes one :class:`~.records.Record`.

What a point runs, in order, in its own process (:func:`run_points` spawns one per point, so
that one point's allocations never inflate the next one's peak):

1. build the workload (sizes, seed, dtype);
2. one run sampled by memory-profiler (``rss_peak_increase_bytes``) and by the kernel's RSS
   high-water mark (``rss_high_water_increase_bytes``); it is also the warm-up;
3. ``repeats`` timed runs of :func:`backprop` with ``trace_memory=False`` (median, min, max
   of the executor's wall time; their Meter gives ``peak_bytes``, and on the experiment's
   detail point the timeline);
4. one run under tracemalloc (``measured_peak_bytes``);
5. one store_all run on the same inputs and seed: ``max_grad_diff``.

The probes of steps 2 and 4 wrap only the forward and reverse sweeps of a run prepared by
:func:`prepare_run`, so that they see the two sweeps and nothing else.

Before any point runs, :func:`check_points` plans every point in this process (profile, plan,
symbolic prediction: well under a second for the shipped experiments), so that a bad budget or
parameter, or a point above ``max_memory``, is refused before anything runs or is written.

Each worker is a fresh interpreter in a session of its own, so a Ctrl-C at the terminal reaches
the parent only, which kills the running worker and its children and stops. A worker also dies
with its parent (Linux), so a SIGKILLed sweep leaves no orphan measuring on.
"""
from __future__ import annotations

import ctypes
import datetime
import multiprocessing
import os
import pickle
import signal
import statistics
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import models, policies
from .backend import xp
from .backprop import Result, backprop, prepare_backprop
from .chain import ChainProfile, profile_chain
from .errors import BudgetError, CheckpointADError, ExperimentError, PolicyError
from .executor import Executor, SymbolicRunner, predict_meter
from .memory import Meter, TracemallocProbe
from .plans import ChainCosts, Plan, forward_cost
from .records import Record, interrupts_deferred, point_identity
from .trees import flatten

COST_MODES = ("model", "unit", "measure")
DERIVED = {"budget_fraction": "budget_bytes"}  # experiment-level parameter -> policy parameter
TIMELINE_POINTS = 1000
RSS_INTERVAL_S = 0.002
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
MIB = 2**20


@dataclass(frozen=True)
class PointTask:
    """Everything one measurement needs (picklable: it crosses into the worker process).

    ``params`` are the policy's parameters as the experiment gives them; ``budget_fraction``
    is translated to ``budget_bytes`` (a fraction of the bytes store_all holds) in the worker.
    ``costs`` is "model" (the workload's cost model, or unit costs when it has none), "unit"
    or "measure" (profiled seconds). ``max_memory`` (bytes, or None) makes the worker refuse,
    before running, a plan whose predicted activation peak exceeds it (:func:`check_points`
    refuses such points earlier; this guards the "measure" cost mode, whose plan depends on
    the worker's own timings).
    """

    experiment: str
    workload: str
    sizes: dict[str, Any]
    policy: str
    params: dict[str, Any]
    seed: int = 0
    dtype: str = "float64"
    costs: str = "model"
    repeats: int = 3
    detail: bool = False
    environment: dict[str, Any] = field(default_factory=dict)
    max_memory: int | None = None

    @property
    def label(self) -> str:
        sizes = " ".join(f"{k}={v}" for k, v in self.sizes.items())
        params = ",".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.workload} {sizes} {self.policy}" + (f"({params})" if params else "")


# -- pieces ---------------------------------------------------------------------------------------

def planning_costs(workload: models.Workload, mode: str) -> str | list[float]:
    """The ``costs`` argument of :func:`backprop` for cost mode ``mode``."""
    if mode not in COST_MODES:
        raise ExperimentError(f"costs must be one of {', '.join(COST_MODES)}, got {mode!r}")
    if mode == "model":
        return list(workload.stage_costs) if workload.stage_costs else "unit"
    return mode


def store_all_bytes(profile: ChainProfile) -> int:
    """Bytes store_all holds at its peak in checkpoints and tapes: x_0 and the held tapes of
    stages 1..n-1 (stage n is a turn). The reference for ``budget_fraction``."""
    costs = profile.costs()
    return int(costs.state_bytes[0] + sum(costs.tape_bytes[:-1]))


def policy_parameters(policy: str, params: Mapping[str, Any],
                      profile: Callable[[], ChainProfile]) -> dict[str, Any]:
    """The policy's own parameters: ``budget_fraction`` becomes ``budget_bytes``."""
    resolved = dict(params)
    for derived, target in DERIVED.items():
        if derived in resolved:
            accepted = {p.name for p in policies.get_policy(policy).parameters}
            if target not in accepted:
                raise PolicyError(f"policy {policy!r} has no {target} parameter, so "
                                  f"{derived} does not apply to it")
            fraction = resolved.pop(derived)
            resolved[target] = int(fraction * store_all_bytes(profile()))
    return resolved


def prepare_run(workload: models.Workload, policy: str, params: Mapping[str, Any], seed: int,
                costs: Any, max_memory: int | None = None) -> Callable[[], Any]:
    """A run prepared now (profile, plan, executor: see :func:`prepare_backprop`), returned as a
    function that runs only the two sweeps, without tracemalloc and without a timeline, so that
    the memory probes wrapped around it see the run and nothing else."""
    prepared = prepare_backprop(workload.chain, workload.x0, None, policy, seed=seed,
                                costs=costs, max_memory=max_memory, **params)
    return lambda: prepared.run(trace_memory=False)


def traced_peak(run: Callable[[], None]) -> int:
    """tracemalloc's peak over ``run()``, bytes above the baseline."""
    probe = TracemallocProbe()
    probe.start()
    run()
    return probe.stop()


def forward_events(plan: Plan, profile: ChainProfile) -> int:
    """The Meter event at which the forward sweep ends (the executor runs the same holds and
    releases symbolically as for real, so the event numbers match the real timeline)."""
    meter = Meter(record_timeline=False)
    Executor(plan, SymbolicRunner(profile), meter).forward(None)
    return meter.events


def downsample(timeline: list[tuple[int, int]], limit: int = TIMELINE_POINTS) -> list[list[int]]:
    """At most ``limit`` points of a (event, bytes) timeline, keeping each bucket's minimum and
    maximum in order, so the peak survives."""
    if len(timeline) <= limit:
        return [[int(e), int(b)] for e, b in timeline]
    points = xp.asarray(timeline, dtype=xp.int64)
    kept: list[int] = []
    for chunk in xp.array_split(xp.arange(len(points)), limit // 2):
        values = points[chunk, 1]
        kept += sorted({int(chunk[xp.argmin(values)]), int(chunk[xp.argmax(values)])})
    return [[int(points[i, 0]), int(points[i, 1])] for i in kept]


def max_difference(result: Result, reference: Result) -> float:
    """The largest absolute difference between two runs' gradients (input and parameters)."""
    ours = [result.grad_input] + flatten(result.grad_params)[0]
    theirs = [reference.grad_input] + flatten(reference.grad_params)[0]
    if len(ours) != len(theirs):
        raise ExperimentError("the two runs have different gradient structures")
    return max((float(xp.max(xp.abs(xp.asarray(a) - xp.asarray(b)), initial=0.0))
                for a, b in zip(ours, theirs)), default=0.0)


def _relative_costs(workload: models.Workload) -> ChainCosts:
    n = workload.chain.n
    units = workload.stage_costs or (1.0,) * n
    mean = sum(units) / n
    return ChainCosts(n, tuple(u / mean for u in units))


# -- resident set size ---------------------------------------------------------------------------

def _reset_high_water() -> bool:
    """Reset the kernel's peak-RSS counter of this process (Linux); False if unavailable."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _high_water_bytes() -> int | None:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _memory_usage() -> Callable[..., Any]:
    """memory-profiler's ``memory_usage``, imported without IPython: memory-profiler imports
    IPython's magics when it can, which costs half a second in every fresh worker."""
    import sys

    blocked = "IPython" not in sys.modules
    if blocked:
        sys.modules["IPython"] = None  # type: ignore[assignment]  # makes the import fail fast
    try:
        from memory_profiler import memory_usage
    finally:
        if blocked:
            del sys.modules["IPython"]
    return memory_usage


def rss_run(run: Callable[[], Any]) -> tuple[int, int | None]:
    """``run()`` sampled by memory-profiler, and by the kernel's high-water mark where there
    is one: the sampled peak increase and the high-water increase (bytes)."""
    memory_usage = _memory_usage()
    before = memory_usage(-1, interval=RSS_INTERVAL_S, max_iterations=1)[0]
    exact = _reset_high_water()
    before_exact = _high_water_bytes() if exact else None
    peak = memory_usage((run, (), {}), interval=RSS_INTERVAL_S, max_usage=True,
                        max_iterations=1)
    after_exact = _high_water_bytes() if exact else None
    sampled = max(0, int((peak - before) * MIB))
    high_water = (None if before_exact is None or after_exact is None
                  else max(0, after_exact - before_exact))
    return sampled, high_water


# -- one point ------------------------------------------------------------------------------------

def measure_point(task: PointTask) -> Record:
    """Measure ``task`` in this process (see the module docstring for what runs)."""
    workload = models.build(task.workload, task.sizes, task.seed, task.dtype)
    costs = planning_costs(workload, task.costs)
    profiles: list[ChainProfile] = []

    def profile() -> ChainProfile:
        if not profiles:
            profiles.append(profile_chain(workload.chain, workload.x0, task.seed))
        return profiles[0]

    params = policy_parameters(task.policy, task.params, profile)

    def run(policy: str, given: Mapping[str, Any], limit: int | None) -> Result:
        return backprop(workload.chain, workload.x0, None, policy, seed=task.seed, costs=costs,
                        trace_memory=False, record_timeline=task.detail, max_memory=limit,
                        **given)

    rss_sampled, rss_high_water = rss_run(
        prepare_run(workload, task.policy, params, task.seed, costs, task.max_memory))
    times = []
    for _ in range(max(1, task.repeats)):
        result = run(task.policy, params, task.max_memory)
        times.append(result.stats.wall_s)
    measured = traced_peak(prepare_run(workload, task.policy, params, task.seed, costs))
    reference = run("store_all", {}, None)
    return _record(task, workload, params, result, times, measured, rss_sampled, rss_high_water,
                   max_difference(result, reference), profile if task.detail else None)


def _record(task: PointTask, workload: models.Workload, params: dict[str, Any], result: Result,
            times: list[float], measured: int, rss_sampled: int, rss_high_water: int | None,
            grad_diff: float, profile: Callable[[], ChainProfile] | None) -> Record:
    stats, plan = result.stats, result.plan
    detail: dict[str, Any] = {}
    if profile is not None:
        detail = {"timeline": downsample(stats.timeline),
                  "forward_events": forward_events(plan, profile()),
                  "schedule": [[s.action.value, s.stage, s.end] for s in plan]}
    return Record(
        experiment=task.experiment, workload=task.workload, sizes=dict(workload.sizes),
        policy=task.policy, params=_plain(params), plan_params=_plain(dict(plan.params)),
        seed=task.seed, dtype=task.dtype, costs=task.costs, repeats=len(times),
        forward_evals=stats.forward_evals, peak_stored=stats.peak_stored,
        forward_cost=round(forward_cost(plan, _relative_costs(workload)), 6),
        peak_bytes=stats.peak_bytes, peak_bytes_by_kind=dict(stats.peak_bytes_by_kind),
        predicted_peak_bytes=stats.predicted_peak_bytes, measured_peak_bytes=measured,
        rss_peak_increase_bytes=rss_sampled, rss_high_water_increase_bytes=rss_high_water,
        parameter_bytes=stats.parameter_bytes,
        parameter_gradient_bytes=stats.parameter_gradient_bytes,
        wall_s_median=statistics.median(times), wall_s_min=min(times), wall_s_max=max(times),
        max_grad_diff=grad_diff, loss=float(result.value),
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **_environment(task.environment), **detail)


def _environment(shared: Mapping[str, Any]) -> dict[str, Any]:
    """The run's shared environment, with this process's BLAS thread settings added."""
    environment = dict(shared)
    machine = dict(environment.get("machine", {}))
    machine["threads"] = {name: os.environ[name] for name in THREAD_VARIABLES
                          if name in os.environ}
    environment["machine"] = machine
    return environment


def _plain(params: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-ready parameters (numpy scalars become Python numbers)."""
    return {k: v.item() if hasattr(v, "item") else v for k, v in params.items()}


# -- checking every point before any runs ----------------------------------------------------------

@dataclass(frozen=True)
class PointCheck:
    """A point planned before anything runs: its resolved ``sizes`` and policy ``params`` (as
    its record will hold them) and the activation peak its plan is predicted to hold (bytes)."""

    task: PointTask
    sizes: dict[str, Any]
    params: dict[str, Any]
    predicted_peak_bytes: int

    @property
    def identity(self) -> tuple[Any, ...]:
        """The identity its record will have (:func:`~.records.point_identity`)."""
        task = self.task
        return point_identity(task.experiment, task.workload, self.sizes, task.policy,
                              self.params, task.seed, task.dtype, task.costs,
                              max(1, task.repeats))

    @property
    def label(self) -> str:
        sizes = " ".join(f"{k}={v}" for k, v in self.sizes.items())
        params = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.task.workload} {sizes} {self.task.policy}" + (f"({params})" if params
                                                                      else "")


def check_points(tasks: Iterable[PointTask], source: str | None = None) -> list[PointCheck]:
    """Plan every task in this process, without running it: build the workload, profile the
    chain once per grid point, resolve the parameters, plan and predict the peak.

    Raises the package's own error, prefixed with ``source`` (the experiment's file) and the
    point, for anything that would make a point fail at planning (an infeasible budget, a bad
    parameter).
    """
    checks: list[PointCheck] = []
    built: dict[str, Any] = {}
    for task in tasks:
        where = " ".join([*([source] if source else []), task.workload,
                          *(f"{k}={v}" for k, v in task.sizes.items())])
        key = repr((task.workload, sorted(task.sizes.items()), task.seed, task.dtype))
        try:
            if built.get("key") != key:  # grid point major: build each point once
                workload = models.build(task.workload, task.sizes, task.seed, task.dtype)
                built = {"key": key, "workload": workload,
                         "profile": profile_chain(workload.chain, workload.x0, task.seed)}
            workload, profile = built["workload"], built["profile"]
            params = policy_parameters(task.policy, task.params, lambda: profile)
            costs = planning_costs(workload, task.costs)
            plan = policies.make_plan(task.policy, profile.costs(costs), **params)
            peak = predict_meter(plan, profile).peak
        except CheckpointADError as error:
            raise type(error)(f"{where}: {error}") from None
        checks.append(PointCheck(task, dict(workload.sizes), _plain(params), int(peak)))
    return checks


def refuse_above(checks: list[PointCheck], max_memory: int | None) -> None:
    """Raise :class:`BudgetError` if any point's predicted activation peak exceeds
    ``max_memory`` bytes, naming the first such point, before anything runs."""
    if max_memory is None:
        return
    over = [check for check in checks if check.predicted_peak_bytes > max_memory]
    if over:
        first = over[0]
        raise BudgetError(
            f"max_memory {max_memory:,} bytes refuses {len(over)} of {len(checks)} points before "
            f"anything runs; the first, {first.label}, is predicted to hold "
            f"{first.predicted_peak_bytes:,} bytes of activations at its peak (smallest "
            f"prediction: {min(c.predicted_peak_bytes for c in checks):,} bytes)")


# -- many points, isolated ------------------------------------------------------------------------

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
    """A worker process (``python -c``, the parent's pid as argument): read one pickled task
    on stdin, measure it, write the pickled (record, error, traceback) on stdout (whatever
    else would be printed there goes to stderr).

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
        task = pickle.load(sys.stdin.buffer)
    except EOFError:  # the parent went away before sending the task
        os._exit(1)
    try:
        outcome: tuple[Any, ...] = (measure_point(task), None, None)
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
          "from checkpoint_ad.measure import worker_main; worker_main()")


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
    root = str(Path(__file__).resolve().parent.parent)  # this very package, installed or not
    apart: dict[str, Any] = ({"start_new_session": True} if os.name == "posix" else
                             {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)})
    return subprocess.Popen([sys.executable, "-c", WORKER.format(root=root), str(os.getpid())],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, **apart)


def _measure_isolated(task: PointTask) -> Record:
    """Measure ``task`` in a fresh worker process; kill it (and its children) if this process
    is interrupted meanwhile."""
    process: subprocess.Popen | None = None
    try:
        with interrupts_deferred():  # started whole, or not at all
            process = _start_worker()
        assert process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write(pickle.dumps(task))
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
        record, error, remote = pickle.loads(data)
    except Exception:  # noqa: BLE001  (nothing or half an answer: the worker died)
        how = f"was killed by signal {-code}" if code < 0 else f"exited ({code})"
        raise ExperimentError(f"the worker measuring {task.label} {how} before sending its "
                              f"record (out of memory?)") from None
    if error is None:
        return record
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


def run_points(tasks: Iterable[PointTask], isolate: bool = True) -> Iterator[Record]:
    """Measure each task, in order; with ``isolate`` each in a fresh spawned process with
    single-threaded BLAS (see :func:`single_threaded_blas`).

    A failing point raises (its error is the package's own when the user caused it); the
    records already yielded stay valid. An interrupt (KeyboardInterrupt) kills the running
    worker at once and propagates.
    """
    if not isolate:
        for task in tasks:
            yield measure_point(task)
        return
    for task in tasks:
        with single_threaded_blas():
            record = _measure_isolated(task)
        yield record
