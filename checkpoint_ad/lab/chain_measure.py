"""Measure one chain policy configuration at one grid point: counts, bytes, time, gradient
agreement. One call of :func:`measure_chain_point` makes one
:class:`~checkpoint_ad.records.schema.Record`.
One call of :func:`measure_point` makes one :class:`~.schema.Record`.

What a point runs, in order, in its own process (:func:`~.measure.run_points` starts a fresh worker per
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
import statistics
from collections.abc import Callable, Mapping
from typing import Any

from ..chains.backprop import Result, backprop, prepare_backprop
from ..chains.chain import ChainProfile, profile_chain
from ..chains.executor import Executor
from ..chains.replay import SymbolicRunner, forward_cost, plan_time
from ..chains.costs import ChainCosts
from ..chains.plans import Plan
from ..engine.trees import flatten
from ..plans.memory import Meter, TracemallocProbe
from ..records.schema import Record
from ..workloads import chain_models
from ..workloads.user import build_workload
from .points import (PointTask, downsample, largest_difference, offload_fields, plain_params,
                     planning_costs, policy_parameters, store_all_peak, worker_environment)
from .rss import rss_run


def prepare_run(workload: chain_models.Workload, policy: str, params: Mapping[str, Any], seed: int,
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
    Executor(plan, SymbolicRunner(profile.costs()), meter).forward(None)
    return meter.events


def max_difference(result: Result, reference: Result) -> float:
    """The largest absolute difference between two runs' gradients (input and parameters)."""
    return largest_difference([result.grad_input] + flatten(result.grad_params)[0],
                              [reference.grad_input] + flatten(reference.grad_params)[0])


def relative_costs(workload: chain_models.Workload) -> ChainCosts:
    """The workload's stage costs normalised to a mean of 1 (unit costs when it has none)."""
    n = workload.chain.n
    units = workload.stage_costs or (1.0,) * n
    mean = sum(units) / n
    return ChainCosts(n, tuple(u / mean for u in units))


def measure_chain_point(task: PointTask) -> Record:
    """Measure chain task ``task`` in this process (see the module docstring for what runs)."""
    workload = build_workload(task.workload, task.sizes, task.seed, task.dtype, "chain")
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
                       max_difference(result, reference), profile if task.detail else None,
                       budget_fields(workload, params, result, profile().costs(costs),
                                     store_all_peak(profile())))


def budget_fields(workload: chain_models.Workload, params: Mapping[str, Any], result: Result,
                  chain_costs: ChainCosts, store_all_peak_bytes: int) -> dict[str, Any]:
    """A chain record's budget and offload fields, as a graph record's: the planner's
    ``budget_bytes`` (None for a policy without one), store_all's whole activation peak (what
    ``budget_fraction`` scales), store_all's ``forward_cost`` (n: the record's costs have a
    mean of 1), and :func:`~.points.offload_fields` with the plan's time and store_all's on
    ``chain_costs``, the costs the planner saw (docs/chain_offload.md: cost units, a backward
    step ``ChainCosts.backward_costs``)."""
    store_all_time = sum(chain_costs.compute) + sum(chain_costs.backward_costs)
    return {"budget_bytes": params.get("budget_bytes"),
            "store_all_cost": round(sum(relative_costs(workload).compute), 6),
            "store_all_peak_bytes": store_all_peak_bytes,
            **offload_fields(params, plan_time(result.plan, chain_costs), store_all_time,
                             result.stats)}


def make_record(task: PointTask, workload: chain_models.Workload, params: dict[str, Any],
                result: Result, times: list[float], measured: int | None, rss_sampled: int,
                rss_high_water: int | None,
            grad_diff: float, profile: Callable[[], ChainProfile] | None,
            extra: Mapping[str, Any] | None = None) -> Record:
    """The record of one measured chain point; ``extra``: more fields (:func:`budget_fields`)."""
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
        **worker_environment(task.environment), **detail, **(extra or {}))
