"""Plan every point of a sweep in this process before any runs, so that a bad budget or
parameter, or a point above ``max_memory``, is refused before anything runs or is written.

:func:`check_points` profiles each grid point once, resolves the policy parameters, plans and
predicts the activation peak symbolically: well under a second for the shipped experiments.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from ..chains import policies
from ..workloads.user import build_workload
from ..chains.chain import profile_chain
from ..errors import BudgetError, CheckpointADError
from ..chains.replay import predict_meter
from .measure import torch_backend
from .points import PointTask, plain_params, planning_costs, policy_parameters
from ..records.schema import configuration_label, point_identity, point_label


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
        """The identity its record will have (:func:`~.schema.point_identity`)."""
        task = self.task
        return point_identity(task.experiment, task.workload, self.sizes, task.policy,
                              self.params, task.seed, task.dtype, task.costs,
                              max(1, task.repeats), task.backend, task.family)

    @property
    def label(self) -> str:
        label = point_label(self.task.workload, self.sizes, self.task.policy, self.params)
        return label if self.task.family == "chain" else f"graph {label}"


def check_points(tasks: Iterable[PointTask], source: str | None = None,
                 unplanned: list[str] | None = None) -> list[PointCheck]:
    """Plan every task in this process, without running it: build the workload, profile the
    chain (trace the graph) once per grid point, resolve the parameters, plan and predict the
    peak. A point's task carries its plan into the run (planned once: a sweep of budgets reads
    one ``optimal`` table; a graph plan keeps its solve time), except a chain point with
    "measure" costs, whose plan depends on the worker's own timings.

    Raises the package's own error, prefixed with ``source`` (the experiment's file) and the
    point, for anything that would make a point fail at planning (an infeasible budget, a bad
    parameter). With an ``unplanned`` list, a graph point whose planner finds no plan within its
    budget or time limit is left out instead, its reason appended to the list (a sweep of
    planners at tight budgets reports who could not plan, it does not stop).
    """
    checks: list[PointCheck] = []
    built: dict[str, Any] = {}  # the grid point being checked: its workload, profile or trace
    bounds: dict[tuple[str, int, bool], Any] = {}  # (point, bound's budget, moving) -> bound
    for task in tasks:
        if task.backend == "torch":  # refused before anything runs: no torch, no equivalent
            torch_backend().check_workload(task.workload)
        where = " ".join([*([source] if source else []), task.workload,
                          *(f"{k}={v}" for k, v in task.sizes.items())])
        key = _point_key(task)
        if task.family == "graph":
            check = _check_graph_point(task, built, bounds, where, unplanned)
            checks += [check] if check is not None else []
            continue
        try:
            if built.get("key") != key:  # grid point major: build each point once
                workload = build_workload(task.workload, task.sizes, task.seed, task.dtype,
                                          "chain")
                built = {"key": key, "workload": workload,
                         "profile": profile_chain(workload.chain, workload.x0, task.seed)}
            workload, profile = built["workload"], built["profile"]
            params = policy_parameters(task.policy, task.params, lambda: profile)
            costs = planning_costs(workload, task.costs)
            chain_costs = profile.costs(costs)
            plan = policies.make_plan(task.policy, chain_costs, **params)
            peak = predict_meter(plan, chain_costs, record_timeline=False).peak
        except CheckpointADError as error:
            raise type(error)(f"{where}: {error}") from None
        carried = (replace(task, plan=plan) if task.costs != "measure" and task.backend == "numpy"
                   else task)
        checks.append(PointCheck(carried, dict(workload.sizes), plain_params(params), int(peak)))
    return [_strongest_bound(check, bounds) for check in checks]


def _point_key(task: PointTask) -> str:
    """What identifies a task's grid point (its workload is built once per key)."""
    return repr((task.family, task.workload, sorted(task.sizes.items()), task.seed, task.dtype))


def _strongest_bound(check: PointCheck, bounds: dict[tuple[str, int, bool], Any]
                     ) -> PointCheck:
    """A graph check with the strongest bound of its point and budget (an exact plan of a
    later policy may have proved a stronger one), apart for plans that may move values."""
    if check.task.family != "graph":
        return check
    from .graph_measure import bound_budget

    bound = bounds[_point_key(check.task), bound_budget(check.params, check.task.plan),
                   bool(check.params.get("bandwidth"))]
    return replace(check, task=replace(check.task, bound=bound))


def _check_graph_point(task: PointTask, built: dict[str, Any],
                       bounds: dict[tuple[str, int, bool], Any], where: str,
                       unplanned: list[str] | None) -> PointCheck | None:
    """:func:`check_points` for a graph point (``built`` caches the trace of its grid point;
    ``bounds`` collects the best lower bound of each point and budget)."""
    from .graph_measure import (bound_budget, graph_parameters, point_bound, proven_bound,
                                record_bound, trace_task)
    from ..graphs.executor import predict_meter
    from ..graphs.policies import plan_graph

    key = _point_key(task)
    try:
        if built.get("key") != key:
            workload, traced = trace_task(task)
            built.clear()
            built.update(key=key, sizes=dict(workload.sizes), traced=traced)
        program = built["traced"].program
        params = graph_parameters(task.policy, task.params, program.costs)
    except CheckpointADError as error:
        raise type(error)(f"{where}: {error}") from None
    ops = len(program.costs.op_nodes)
    if task.max_ops is not None and ops > task.max_ops:
        if unplanned is not None:
            unplanned.append(f"{where} {configuration_label(task.policy, task.params)}: not "
                             f"run: the graph has {ops} ops, above the policy's "
                             f"max_ops={task.max_ops}")
        return None
    try:
        plan = plan_graph(task.policy, program.costs, **params)
    except BudgetError as error:  # no plan within this budget (or the planner's time limit)
        if unplanned is None:
            raise type(error)(f"{where}: {error}") from None
        unplanned.append(f"{where} {configuration_label(task.policy, task.params)}: {error}")
        return None
    peak = predict_meter(program, plan).peak
    budget, moving = bound_budget(params, plan), bool(params.get("bandwidth"))
    if moving:  # a plan that may move values: bounds of recompute-only plans do not hold
        bounds[key, budget, moving] = record_bound(program.costs, params, plan)
    else:
        known = bounds.get((key, budget, moving)) or point_bound(program.costs, budget)
        bounds[key, budget, moving] = proven_bound(plan, known)
    return PointCheck(replace(task, plan=plan), built["sizes"], plain_params(params), int(peak))


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

