"""Measure one graph policy configuration at one grid point: the graph family's counterpart of
:func:`~.measure.measure_point`, making one :class:`~.schema.Record` with ``family="graph"``.

What a point runs, in its own worker process like a chain point: the workload is built and
traced once (the structure pass, not counted); the plan made before the run (or, without one,
planned here); one run sampled for RSS (also the warm-up); ``repeats`` timed runs without
tracemalloc (their Meter gives ``peak_bytes``, and the timeline on the detail point); one run
under tracemalloc; one store_all run on the same inputs for ``max_grad_diff``. Costs are the
traced graph's (1 per op: the graph workloads' cost model), so ``forward_cost`` counts op
computations.

``budget_fraction`` becomes ``budget_bytes``: that fraction of store_all's activation peak
(resident op values and cotangents, docs/graph_model.md), rounded down to whole bytes.
"""
from __future__ import annotations

import datetime
import statistics
from collections.abc import Mapping
from typing import Any

from ..plans import limits
from ..engine.trees import flatten
from ..graphs.backprop import GraphResult, Traced, trace_function
from ..graphs.bounds import GraphLowerBound, graph_lower_bound
from ..graphs.costs import GraphCosts
from ..graphs.plans import GraphAction, GraphPlan
from ..graphs.policies import get_policy, plan_graph
from ..workloads.graph_models import GraphWorkload
from ..workloads.user import build_workload
from .points import (downsample, largest_difference, offload_fields, plain_params, PointTask,
                     resolve_fractions, worker_environment)
from .rss import rss_run
from ..records.schema import Record


def trace_task(task: PointTask) -> tuple[GraphWorkload, Traced]:
    """The task's graph workload, built from its sizes, seed and dtype, and its trace."""
    workload = build_workload(task.workload, task.sizes, task.seed, task.dtype, "graph")
    return workload, trace_function(workload.fn, *workload.args, argnums=workload.argnums,
                                    seed=task.seed)


def store_all_peak(costs: GraphCosts) -> int:
    """store_all's activation peak (bytes): the reference of ``budget_fraction``."""
    return plan_graph("store_all", costs).peak_bytes


def graph_parameters(policy: str, params: Mapping[str, Any], costs: GraphCosts
                     ) -> dict[str, Any]:
    """The graph policy's own parameters: ``budget_fraction`` becomes ``budget_bytes``."""
    return resolve_fractions(policy, params, get_policy(policy).parameters,
                             lambda: store_all_peak(costs))


BOUND_MAX_STATES = 5_000  # exact search's effort for a record's lower bound (about a second)
BOUND_TIME_LIMIT = 1.0  # seconds for the whole bound: exact search, Checkmate's model, its LP
BOUND_MEMORY = 256 * 2**20  # bytes a record's bound may take at most (a model of ~100 ops)


def bound_budget(params: Mapping[str, Any], plan: GraphPlan) -> int:
    """The budget a record's lower bound is taken at: the planner's ``budget_bytes``, or the
    plan's own peak for a policy without one (how far a fixed policy is from the least cost at
    its memory)."""
    budget = params.get("budget_bytes")
    return int(budget) if budget is not None else plan.peak_bytes


def point_bound(costs: GraphCosts, budget_bytes: int) -> GraphLowerBound:
    """The lower bound a record carries: :func:`~checkpoint_ad.graph_lower_bound` at
    ``budget_bytes`` (see :func:`bound_budget`) with a small effort (exact when the search
    finishes, else the closure bound, every op once or Checkmate's relaxation bounds) within
    :data:`BOUND_TIME_LIMIT` seconds and :data:`BOUND_MEMORY` bytes (its ``note`` says what
    was cut short)."""
    with limits.limited(memory_bytes=min(BOUND_MEMORY, limits.current().memory_bytes)):
        return graph_lower_bound(costs, budget_bytes, BOUND_MAX_STATES, BOUND_TIME_LIMIT)


BOUNDING_EVERY_PLAN = ("optimal", "cpsat")  # their plan.lower_bound bounds every plan


def proven_bound(plan: GraphPlan, bound: GraphLowerBound) -> GraphLowerBound:
    """``bound``, or the cost of ``plan`` when exact search proved that plan optimal over all
    plans at its budget, or the plan's own lower bound when its planner proves one of every
    plan (:data:`BOUNDING_EVERY_PLAN`: the closure bound, CP-SAT's), whichever is the
    stronger bound of every plan."""
    if plan.method == "exact" and plan.status == "optimal" and (
            bound.formulation != "all plans" or plan.cost > bound.value):
        return GraphLowerBound(plan.cost, "all plans", "exact search")
    own = plan.lower_bound
    if plan.policy in BOUNDING_EVERY_PLAN and own is not None and (
            bound.formulation != "all plans" or own > bound.value):
        return GraphLowerBound(float(own), "all plans", f"{plan.policy}'s bound")
    return bound


def record_bound(costs: GraphCosts, params: Mapping[str, Any], plan: GraphPlan
                 ) -> GraphLowerBound:
    """The lower bound a record carries: :func:`point_bound` (improved by :func:`proven_bound`);
    for a planner given a bandwidth, every op once (docs/offload_model.md: a value moved to
    the host and back is not computed again, so the bounds of recompute-only plans do not
    hold)."""
    if params.get("bandwidth"):
        return GraphLowerBound(float(costs.total_cost), "all plans", "every op once",
                               "a plan may move values to host memory: bounds of "
                               "recompute-only plans do not hold")
    return proven_bound(plan, point_bound(costs, bound_budget(params, plan)))


def peak_values(plan: GraphPlan) -> int:
    """The most op values a plan holds resident at once (at least 1)."""
    resident: set[int] = set()
    most = 1
    for action, node in plan.steps:
        if action is GraphAction.COMPUTE:
            resident.add(node)
            most = max(most, len(resident))
        elif action is GraphAction.FREE:
            resident.discard(node)
    return most


def gradient_difference(result: GraphResult, reference: GraphResult) -> float:
    """The largest absolute difference between two runs' gradients (0.0: bit-identical)."""
    return largest_difference(flatten(result.grads)[0], flatten(reference.grads)[0])


def _timed_run(traced: Traced, plan: GraphPlan, task: PointTask) -> GraphResult:
    return traced.run(plan, max_memory=task.max_memory, trace_memory=False,
                      record_timeline=task.detail)


def graph_offload_fields(params: Mapping[str, Any], plan: GraphPlan, stats: Any,
                         costs: GraphCosts) -> dict[str, Any]:
    """A graph record's offload fields (:func:`~.points.offload_fields`): the plan's time,
    store_all's every op once plus every backward step."""
    return offload_fields(params, plan.time if plan.time is not None else plan.cost,
                          costs.total_cost + costs.total_backward_cost, stats)


def measure_graph_point(task: PointTask) -> Record:
    """Measure graph point ``task`` in this process (see the module docstring)."""
    workload, traced = trace_task(task)
    costs = traced.program.costs
    params = graph_parameters(task.policy, task.params, costs)
    plan = task.plan if task.plan is not None else plan_graph(task.policy, costs, **params)
    bound = task.bound if task.bound is not None else record_bound(costs, params, plan)
    rss_sampled, rss_high_water = rss_run(lambda: traced.run(plan, trace_memory=False))
    result = _timed_run(traced, plan, task)
    times = [result.stats.wall_s]
    for _ in range(task.repeats - 1):
        result = _timed_run(traced, plan, task)
        times.append(result.stats.wall_s)
    measured = traced.run(plan).stats.measured_peak_bytes
    reference = traced.run(plan_graph("store_all", costs), trace_memory=False)
    stats = result.stats
    detail: dict[str, Any] = {}
    if task.detail:
        detail = {"timeline": downsample(list(enumerate(stats.timeline))),
                  "graph": {"parents": [list(p) for p in costs.parents],
                            "ops": list(costs.ops)},
                  "graph_steps": [[step.action.value, step.node] for step in plan.steps]}
    return Record(
        experiment=task.experiment, workload=task.workload, sizes=dict(workload.sizes),
        policy=task.policy, params=plain_params(params),
        plan_params=plain_params(dict(plan.params)), seed=task.seed, dtype=task.dtype,
        costs=task.costs, repeats=len(times), forward_evals=stats.forward_evals,
        peak_stored=peak_values(plan), forward_cost=float(plan.cost),
        peak_bytes=stats.peak_bytes, peak_bytes_by_kind=dict(stats.peak_bytes_by_kind),
        predicted_peak_bytes=stats.predicted_peak_bytes, measured_peak_bytes=measured,
        rss_peak_increase_bytes=rss_sampled, rss_high_water_increase_bytes=rss_high_water,
        parameter_bytes=stats.input_bytes, parameter_gradient_bytes=stats.gradient_bytes,
        wall_s_median=statistics.median(times), wall_s_min=min(times), wall_s_max=max(times),
        max_grad_diff=gradient_difference(result, reference), loss=float(result.value),
        backend=task.backend, family="graph", ops=len(costs.op_nodes),
        store_all_cost=float(costs.total_cost), budget_bytes=params.get("budget_bytes"),
        store_all_peak_bytes=store_all_peak(costs), method=plan.method, status=plan.status,
        lower_bound=bound.value, bound_formulation=bound.formulation, bound_note=bound.note,
        solve_s=plan.solve_s, plan_lower_bound=plan.lower_bound,
        trajectory=plan.details.get("trajectory"),
        **graph_offload_fields(params, plan, stats, costs),
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **worker_environment(task.environment), **detail)
