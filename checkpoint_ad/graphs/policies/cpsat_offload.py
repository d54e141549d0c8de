"""``cpsat`` with a ``bandwidth`` (docs/offload_model.md): the plan of least **time** CP-SAT
finds on the model of :mod:`.cpsat_offload_model` (the slot model with offloads, prefetches
and wait slots), hinted with the fastest of ``dtr``'s plans with transfers (online and
``next_use``) and the cheapest recompute-only heuristic plan, so never slower than them.

* **Capacities.** Op v may be computed ``max(computations, the hint's count)`` times, but
  never more than a plan no slower than the hint can (its cost is at most the hint's time
  less every backward step); it may be prefetched ``max(prefetches, the hint's count)``
  times; the wait slots are the hint's waits or, when more, one per backward step up to
  :data:`MOST_WAITS`. One solve, no rounds.
* **Bound.** The model restricts plans (:mod:`.cpsat_offload_model`), so its solver bound
  bounds nothing: ``lower_bound`` is the cost of computing every op once (as ``optimal``'s
  with a bandwidth), and the plan is "optimal" only when its time is store_all's (no plan
  is faster).
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace

from ...errors import BudgetError, PolicyError
from ..costs import GraphCosts
from ..plans import GraphPlan
from .dtr import plan_dtr

DEFAULT_PREFETCHES = 1
DEFAULT_COMPUTATIONS = 2
MOST_WAITS = 32  # wait slots beyond the hint's: at most this many (or one per backward step)
LP_OPS_LIMIT = 100  # past this, CP-SAT's linear relaxation is off
MODEL_SHARE = 0.9  # of the time left after the hint, for building and solving the model


def plan_with_transfers(costs: GraphCosts, budget: float, params: dict,
                        transfer: tuple[float, float], limit: float,
                        solver: tuple[int, int, float | None], computations: int,
                        hint: GraphPlan | None, started: float,
                        recompute_only: Callable | None = None,
                        prefetches: int = DEFAULT_PREFETCHES) -> GraphPlan:
    """The plan of the module docstring under ``budget`` device bytes; ``transfer`` is
    (bandwidth in bytes per cost unit, host budget in bytes), ``solver`` (workers, seed,
    effort), ``limit`` seconds from ``started`` (a ``time.perf_counter()`` value). Without a
    ``hint``, the hint is the fastest of ``dtr``'s plans and ``recompute_only``'s
    (:func:`fastest_hint`)."""
    bandwidth, host = transfer
    budget_bytes = params.get("budget_bytes")
    deadline = started + limit
    if hint is None:
        hint = fastest_hint(costs, budget, transfer, started + limit / 4, deadline,
                            recompute_only)
    if hint is None:
        raise BudgetError(f"policy 'cpsat': no heuristic plan (dtr with transfers, or "
                          f"without) fits budget_bytes={budget_bytes} to start from; "
                          f"optimal may find one")
    if hint.peak_bytes > budget:
        raise PolicyError(f"policy 'cpsat': the hint peaks at {hint.peak_bytes} bytes, above "
                          f"budget_bytes={budget:g}")
    steps, status, rounds = tuple(hint.steps), "hint only", 0
    model_deadline = time.perf_counter() + MODEL_SHARE * (deadline - time.perf_counter())
    found = _solve(costs, budget, transfer, hint, computations, prefetches, model_deadline,
                   solver)
    if found is not None:
        solved, status = found
        rounds = 1
        if solved is not None:
            plan = GraphPlan.build(costs, solved, "cpsat", params, bandwidth)
            if plan.time < hint.time:
                steps = solved
    plan = GraphPlan.build(costs, steps, "cpsat", params, bandwidth)
    store_all_time = costs.total_cost + costs.total_backward_cost
    details = {"objective": "time", "hint_time": hint.time, "solver_status": status,
               "rounds": rounds, "transfers": "planned" if plan.transfers else "none saved time"}
    return replace(plan, method="cpsat", lower_bound=costs.total_cost,
                   status="optimal" if plan.time <= store_all_time else "feasible",
                   solve_s=time.perf_counter() - started, details=details)


def fastest_hint(costs: GraphCosts, budget: float, transfer: tuple[float, float],
                 deadline: float, last: float, recompute_only: Callable | None
                 ) -> GraphPlan | None:
    """The fastest plan within ``budget`` of ``dtr`` with transfers (online and ``next_use``;
    each already the faster of its runs with and without transfers) and the cheapest plan of
    ``recompute_only`` (cpsat's heuristic hint, a function of (costs, budget, deadline,
    last)); None when none fits."""
    bandwidth, host = transfer
    host_bytes = None if host == math.inf else int(host)
    found = []
    for heuristic in ("dtr", "next_use"):
        left = last - time.perf_counter()
        if left <= 0:
            break
        try:
            found.append(plan_dtr(costs, budget_bytes=int(budget), heuristic=heuristic,
                                  time_limit=left, bandwidth=bandwidth,
                                  host_budget_bytes=host_bytes))
        except PolicyError:
            continue
    if recompute_only is not None and time.perf_counter() < last:
        alone = recompute_only(costs, budget, deadline, last)
        if alone is not None:
            found.append(alone)
    fitting = [plan for plan in found if plan.peak_bytes <= budget]
    return min(fitting, key=lambda plan: (plan.time, plan.peak_bytes), default=None)


def _solve(costs: GraphCosts, budget: float, transfer: tuple[float, float], hint: GraphPlan,
           computations: int, prefetches: int, deadline: float,
           solver_settings: tuple[int, int, float | None]
           ) -> tuple[list | None, str] | None:
    """Build the model, hint it with ``hint`` and solve it until ``deadline``: (the decoded
    steps or None, the solver's status), or None when building ran out of time."""
    from ortools.sat.python import cp_model

    from .checkmate_model import OutOfTime
    from .cpsat_model import complete_capacity
    from .cpsat_offload_model import OffloadModel, _Layout
    bandwidth, host = transfer
    workers, seed, effort = solver_settings
    layout = _Layout.of(costs, hint.steps, bandwidth)
    ceiling = complete_capacity(costs, hint.time - costs.total_backward_cost)
    capacity = [0] * len(costs)
    most = [0] * len(costs)
    for v in costs.op_nodes:
        counted = len(layout.computed[v]) if layout is not None else 1
        capacity[v] = int(max(counted, min(computations, ceiling[v])))
        most[v] = max(prefetches, len(layout.fetched[v]) if layout is not None else 0)
    waits = max(min(len(costs.backward_order), MOST_WAITS),
                len(layout.waits) if layout is not None else 0)
    try:
        model = OffloadModel(costs, budget, capacity, bandwidth, most, waits, host, deadline)
    except OutOfTime:
        return None
    model.hint(hint.steps)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.0, deadline - time.perf_counter())
    solver.parameters.num_workers = workers
    solver.parameters.random_seed = seed
    if len(costs.op_nodes) > LP_OPS_LIMIT:  # its LP takes seconds to load
        solver.parameters.linearization_level = 0
    if effort is not None:
        solver.parameters.max_deterministic_time = effort
    status = solver.Solve(model.model)
    name = solver.StatusName(status)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None, name
    return model.decode(solver), name


def improve_with_transfers(costs: GraphCosts, budget: float, chosen: tuple[str, GraphPlan],
                           transfer: tuple[float, float], deadline: float, workers: int,
                           details: dict) -> tuple[str, GraphPlan]:
    """For ``optimal`` past exact search: CP-SAT with transfers hinted with ``chosen`` (the
    fastest plan so far) until ``deadline``; (method, plan) of the faster of the two.
    ``details["tried"]`` gets CP-SAT's time."""
    started = time.perf_counter()
    left = deadline - started
    method, plan = chosen
    if left <= 0:
        details["out_of_time"] = details.get("out_of_time", ()) + ("cpsat:transfers",)
        return chosen
    params = {"budget_bytes": int(budget), "bandwidth": transfer[0]}
    try:
        solved = plan_with_transfers(costs, budget, params, transfer, left, (workers, 0, None),
                                     DEFAULT_COMPUTATIONS, plan, started)
    except (PolicyError, BudgetError) as error:
        details["cpsat:transfers"] = str(error)
        return chosen
    details["tried"]["cpsat:transfers"] = solved.time
    if solved.time < plan.time:
        return "cpsat", replace(solved, lower_bound=costs.total_cost, status="feasible")
    return chosen
