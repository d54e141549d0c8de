"""Measure one policy configuration at one grid point: counts, bytes, time, gradient agreement.
One call of :func:`measure_point` makes one :class:`~.schema.Record`.

What a point runs, in order, in its own process (:func:`run_points` starts a fresh worker per
point, see :mod:`checkpoint_ad.lab.worker`, so that one point's allocations never inflate the next
one's peak):

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

Before any point runs, :func:`~.preflight.check_points` plans every point in this process, so
that a bad budget or parameter, or a point above ``max_memory``, is refused before anything runs
or is written.
"""
from __future__ import annotations

import datetime
import os
import statistics
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..chains import policies
from . import models
from ..engine.backend import xp
from ..chains.backprop import Result, backprop, prepare_backprop
from ..chains.chain import ChainProfile, profile_chain
from ..errors import ExperimentError, PolicyError
from ..chains.executor import Executor, SymbolicRunner
from ..plans.memory import Meter, TracemallocProbe
from ..chains.plans import ChainCosts, Plan, forward_cost
from .rss import rss_run
from .schema import Record, point_label
from ..engine.trees import flatten
from .worker import THREAD_VARIABLES, call_in_worker, single_threaded_blas

COST_MODES = ("model", "unit", "measure")
DERIVED = {"budget_fraction": "budget_bytes"}  # experiment-level parameter -> policy parameter
TIMELINE_POINTS = 1000


@dataclass(frozen=True)
class PointTask:
    """Everything one measurement needs (picklable: it crosses into the worker process).

    ``params`` are the policy's parameters as the experiment gives them; ``budget_fraction``
    is translated to ``budget_bytes`` (a fraction of the bytes store_all holds) in the worker.
    ``costs`` is "model" (the workload's cost model, or unit costs when it has none), "unit"
    or "measure" (profiled seconds). ``max_memory`` (bytes, or None) makes the worker refuse,
    before running, a plan whose predicted activation peak exceeds it
    (:func:`~.preflight.check_points` refuses such points earlier; this guards the "measure"
    cost mode, whose plan depends on the worker's own timings). ``backend`` is "numpy" (the
    package's own engine) or "torch" (the workload rebuilt as torch modules, run by
    :class:`checkpoint_ad.torch.CheckpointedSequential`; see :func:`torch_backend`).
    ``family`` "graph" makes ``workload`` a graph workload planned by a graph policy (see
    :mod:`.graph_measure`). ``plan`` is the plan made before the run (preflight), which the
    worker runs instead of planning again (None: the worker plans; always so for chains with
    "measure" costs, whose plan depends on the worker's timings), and ``bound`` the lower bound
    of a graph point's budget (None: the worker finds it).
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
    backend: str = "numpy"
    family: str = "chain"
    plan: Any = None
    bound: Any = None

    @property
    def label(self) -> str:
        label = point_label(self.workload, self.sizes, self.policy, self.params, separator=",")
        return label if self.family == "chain" else f"graph {label}"


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
    """The chain policy's own parameters: ``budget_fraction`` becomes ``budget_bytes``."""
    return resolve_fractions(policy, params, policies.get_policy(policy).parameters,
                             lambda: store_all_bytes(profile()))


def resolve_fractions(policy: str, params: Mapping[str, Any], accepted: Any,
                      reference: Callable[[], int]) -> dict[str, Any]:
    """``params`` with each derived parameter (``budget_fraction``) turned into its target
    (``budget_bytes``): that fraction of ``reference()`` bytes, rounded down. ``accepted`` are
    the policy's parameters; a target it lacks is refused with :class:`PolicyError`."""
    resolved = dict(params)
    for derived, target in DERIVED.items():
        if derived in resolved:
            if target not in {p.name for p in accepted}:
                raise PolicyError(f"policy {policy!r} has no {target} parameter, so "
                                  f"{derived} does not apply to it")
            resolved[target] = int(resolved.pop(derived) * reference())
    return resolved


def prepare_run(workload: models.Workload, policy: str, params: Mapping[str, Any], seed: int,
                costs: Any, max_memory: int | None = None, plan: Plan | None = None
                ) -> Callable[[], Any]:
    """A run prepared now (profile, plan unless one is given, executor: see
    :func:`prepare_backprop`), returned as a function that runs only the two sweeps, without
    tracemalloc and without a timeline, so that the memory probes wrapped around it see the run
    and nothing else."""
    prepared = prepare_backprop(workload.chain, workload.x0, None, policy, seed=seed,
                                costs=costs, max_memory=max_memory, plan=plan, **params)
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
    return largest_difference([result.grad_input] + flatten(result.grad_params)[0],
                              [reference.grad_input] + flatten(reference.grad_params)[0])


def largest_difference(ours: list[Any], theirs: list[Any]) -> float:
    """The largest absolute difference between two lists of arrays (0.0: bit-identical)."""
    if len(ours) != len(theirs):
        raise ExperimentError("the two runs have different gradient structures")
    return max((float(xp.max(xp.abs(xp.asarray(a) - xp.asarray(b)), initial=0.0))
                for a, b in zip(ours, theirs)), default=0.0)


def relative_costs(workload: models.Workload) -> ChainCosts:
    """The workload's stage costs normalised to a mean of 1 (unit costs when it has none)."""
    n = workload.chain.n
    units = workload.stage_costs or (1.0,) * n
    mean = sum(units) / n
    return ChainCosts(n, tuple(u / mean for u in units))


# -- one point ------------------------------------------------------------------------------------

BACKENDS = ("numpy", "torch")


def check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ExperimentError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    return backend


def torch_backend() -> Any:
    """The torch backend's measuring module; one clear error when PyTorch is missing."""
    try:
        import torch  # noqa: F401  (only to learn whether it is installed)
    except ImportError:
        raise ExperimentError('--backend torch needs PyTorch, which is not installed: '
                              'pip install "checkpoint_ad[torch]"') from None
    from ..torch import measure
    return measure


def measure_point(task: PointTask) -> Record:
    """Measure ``task`` in this process (see the module docstring for what runs)."""
    if task.backend == "torch":
        return torch_backend().measure_point(task)
    if task.family == "graph":
        from .graph_measure import measure_graph_point
        return measure_graph_point(task)
    workload = models.build(task.workload, task.sizes, task.seed, task.dtype)
    costs = planning_costs(workload, task.costs)
    profiles: list[ChainProfile] = []

    def profile() -> ChainProfile:
        if not profiles:
            profiles.append(profile_chain(workload.chain, workload.x0, task.seed))
        return profiles[0]

    params = policy_parameters(task.policy, task.params, profile)

    def run(policy: str, given: Mapping[str, Any], limit: int | None,
            plan: Plan | None = None) -> Result:
        return backprop(workload.chain, workload.x0, None, policy, seed=task.seed, costs=costs,
                        trace_memory=False, record_timeline=task.detail, max_memory=limit,
                        plan=plan, **given)

    rss_sampled, rss_high_water = rss_run(prepare_run(
        workload, task.policy, params, task.seed, costs, task.max_memory, task.plan))
    times = []
    for _ in range(max(1, task.repeats)):
        result = run(task.policy, params, task.max_memory, task.plan)
        times.append(result.stats.wall_s)
    measured = traced_peak(prepare_run(workload, task.policy, params, task.seed, costs,
                                       plan=task.plan))
    reference = run("store_all", {}, None)
    return make_record(task, workload, params, result, times, measured, rss_sampled, rss_high_water,
                   max_difference(result, reference), profile if task.detail else None)


def make_record(task: PointTask, workload: models.Workload, params: dict[str, Any],
                result: Result, times: list[float], measured: int | None, rss_sampled: int,
                rss_high_water: int | None,
            grad_diff: float, profile: Callable[[], ChainProfile] | None) -> Record:
    stats, plan = result.stats, result.plan
    detail: dict[str, Any] = {}
    if profile is not None:
        detail = {"timeline": downsample(stats.timeline),
                  "forward_events": forward_events(plan, profile()),
                  "schedule": [[s.action.value, s.stage, s.end] for s in plan]}
    return Record(
        experiment=task.experiment, workload=task.workload, sizes=dict(workload.sizes),
        policy=task.policy, params=plain_params(params),
        plan_params=plain_params(dict(plan.params)),
        seed=task.seed, dtype=task.dtype, costs=task.costs, repeats=len(times),
        forward_evals=stats.forward_evals, peak_stored=stats.peak_stored,
        forward_cost=round(forward_cost(plan, relative_costs(workload)), 6),
        peak_bytes=stats.peak_bytes, peak_bytes_by_kind=dict(stats.peak_bytes_by_kind),
        predicted_peak_bytes=stats.predicted_peak_bytes, measured_peak_bytes=measured,
        rss_peak_increase_bytes=rss_sampled, rss_high_water_increase_bytes=rss_high_water,
        parameter_bytes=stats.parameter_bytes,
        parameter_gradient_bytes=stats.parameter_gradient_bytes,
        wall_s_median=statistics.median(times), wall_s_min=min(times), wall_s_max=max(times),
        max_grad_diff=grad_diff, loss=float(result.value), backend=task.backend,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **worker_environment(task.environment), **detail)


def worker_environment(shared: Mapping[str, Any]) -> dict[str, Any]:
    """The run's shared environment, with this process's BLAS thread settings added."""
    environment = dict(shared)
    machine = dict(environment.get("machine", {}))
    machine["threads"] = {name: os.environ[name] for name in THREAD_VARIABLES
                          if name in os.environ}
    environment["machine"] = machine
    return environment


def plain_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-ready parameters (numpy scalars become Python numbers)."""
    return {k: v.item() if hasattr(v, "item") else v for k, v in params.items()}


# -- many points ----------------------------------------------------------------------------------

def run_points(tasks: Iterable[PointTask], isolate: bool = True) -> Iterator[Record]:
    """Measure each task, in order; with ``isolate`` each in a fresh spawned process with
    single-threaded BLAS (see :func:`~.worker.single_threaded_blas`).

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
            record = call_in_worker(measure_point, task, task.label)
        yield record
