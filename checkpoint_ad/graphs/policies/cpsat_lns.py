"""Large-neighbourhood search (LNS) for :mod:`.cpsat`: improve a plan on graphs too large for
CP-SAT to move on the whole model within the time limit.

One model is built: the interval model of :mod:`.cpsat_model`, not exact (events may share a
slot; twice as many slots as events, so events can be inserted) and not ordered (an op's
computations are only kept disjoint), with ``capacity[v]`` the best plan's count of op v plus
:data:`EXTRA` (at most what a plan as cheap can use). Each step of the search:

* places the best plan on the slots (one event every other slot, :meth:`~.cpsat_model.
  IntervalModel.placement`) and picks a **neighbourhood**, alternately a window (the slots
  ``[a, b]`` of about ``size`` consecutive events of the plan, ending at a random event) and
  a set of about ``size`` ops (a breadth-first walk over parents and consumers from a random
  op);
* copies the model and fixes everything outside it to the plan: computations and backward
  steps outside the window, and computations of ops outside the set, keep their slot (a
  value may be freed earlier; one resident when the window opens may stay until ``b``);
  those inside may move (within the window; anywhere for the set's ops) or, computations, be
  dropped; an unused computation of each op may be added there. The objective must be below
  the plan's;
* solves that small model for at most :data:`STEP_EFFORT` of deterministic time; a solution
  is decoded (each value freed after its last use) and replayed, and kept when its replayed
  cost is lower and its peak within the budget (it always is: the model's memory only
  overestimates the peak). The neighbourhood grows by :data:`GROWTH` after a step that proves
  no cheaper plan exists in it, and shrinks after one that runs out of effort.

It gives plans, never bounds: the sub-models bound nothing. With one worker, a fixed
``seed`` and ``effort`` it is deterministic (each step's limit is deterministic time; the wall
clock only stops it at ``deadline``).
"""
from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence

from ..costs import GraphCosts
from ..plans import GraphPlan, GraphStep
from .checkmate_model import OutOfTime

EXTRA = 1  # computations of each op a neighbourhood may add, beyond the plan's
FIRST_SIZE = 24  # events in the first window
FIRST_OPS = 8  # ops in the first set
LEAST_SIZE, MOST_SIZE = 8, 400
GROWTH = 1.25
STEP_EFFORT = 0.5  # deterministic seconds per step, at most
MINIMUM_EFFORT = 1e-3  # counted for a step, at least (so an effort limit always ends it)


def improve(costs: GraphCosts, budget: float, plan: tuple[tuple[GraphStep, ...], float],
            deadline: float, effort: float | None = None, seed: int = 0, workers: int = 1,
            found: Callable[[float], None] | None = None) -> tuple[tuple[GraphStep, ...],
                                                                    float, float]:
    """The cheapest plan the search of the module docstring finds from ``plan`` (its steps
    and cost, within ``budget``) before ``deadline`` (a ``time.perf_counter()`` value) and
    within ``effort`` deterministic seconds (None: no limit): (steps, cost, effort used).
    ``found(cost)`` is called on each better plan. Never dearer than ``plan``."""
    from ortools.sat.python import cp_model

    from .cpsat_model import complete_capacity
    steps, cost = plan
    rng, used, step = random.Random(seed), 0.0, 0
    sizes = [FIRST_SIZE, FIRST_OPS]  # events of a window, ops of a set
    model, ceiling = None, complete_capacity(costs, cost)
    while time.perf_counter() < deadline and (effort is None or used < effort):
        counts = _counts(costs, steps)
        if model is None or any(counts[v] + EXTRA > model.capacity[v] for v in costs.op_nodes
                                if model.capacity[v] < ceiling[v]):
            ceiling = complete_capacity(costs, cost)
            model = _model(costs, budget, counts, ceiling, deadline)
            if model is None:
                break
        by_ops = bool(step % 2)
        window, most = _window(model, steps, sizes[by_ops], rng, by_ops)
        sub = _neighbourhood(model, window)
        solver = cp_model.CpSolver()
        solver.parameters.num_workers = workers
        solver.parameters.random_seed = rng.randrange(1 << 30)
        solver.parameters.max_time_in_seconds = max(0.0, deadline - time.perf_counter())
        step_effort = STEP_EFFORT if effort is None else min(STEP_EFFORT, effort - used)
        solver.parameters.max_deterministic_time = step_effort
        status = solver.Solve(sub)
        used += max(MINIMUM_EFFORT, solver.ResponseProto().deterministic_time)
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            better = GraphPlan.build(costs, model.decode(solver), "cpsat", {})
            if better.cost < cost and better.peak_bytes <= budget:
                steps, cost = tuple(better.steps), better.cost
                if found is not None:
                    found(cost)
        step += 1
        if status == cp_model.INFEASIBLE:  # nothing cheaper in it: look wider
            sizes[by_ops] = min(MOST_SIZE, max(sizes[by_ops] + 1,
                                               round(sizes[by_ops] * GROWTH)), most)
        elif status != cp_model.OPTIMAL:
            sizes[by_ops] = max(LEAST_SIZE, round(sizes[by_ops] / GROWTH))
    return steps, cost, used


def search_round(search, deadline: float, share: float, solver: tuple[int, int],
                 effort: list[float] | None, tighten: Callable) -> bool:
    """A round of :mod:`.cpsat` (its ``search`` state) that improves the best plan by
    :func:`improve` until ``deadline`` and for ``share`` of the effort left (``effort[0]``,
    reduced by what it uses) with ``solver`` (workers, seed), recording each better plan in
    the trajectory and calling ``tighten(search)`` after one; True when another round should
    follow (time and effort are left, and the bound does not meet the best plan's cost)."""
    workers, seed = solver
    steps, cost, used = improve(search.costs, search.budget, search.best, deadline,
                                None if effort is None else effort[0] * share,
                                seed + search.rounds, workers, search.trajectory.incumbent)
    search.rounds += used > 0  # a round when some neighbourhood was solved
    if effort is not None:
        effort[0] -= used
    if cost < search.best[1]:
        search.best = (steps, cost)
        tighten(search)
    return search.best[1] > search.bound and time.perf_counter() < search.deadline and (
        effort is None or effort[0] > 0)


def _counts(costs: GraphCosts, steps: Sequence[GraphStep]) -> list[int]:
    counts = [0] * len(costs)
    for action, node in steps:
        counts[node] += action.value == "compute"
    return counts


def _model(costs: GraphCosts, budget: float, counts: list[int], ceiling: list[float],
           deadline: float) -> object | None:
    """The model of the module docstring (None when building it outlasts ``deadline``)."""
    from .cpsat_model import IntervalModel
    capacity = [int(min(counts[v] + EXTRA, max(ceiling[v], counts[v]))) if v in costs.op_nodes
                else 0 for v in range(len(costs))]
    try:
        return IntervalModel(costs, budget, capacity, deadline, exact=False, ordered=False)
    except OutOfTime:
        return None


def _window(model, steps: Sequence[GraphStep], size: int, rng: random.Random,
            ops: bool) -> tuple[tuple, int]:
    """A neighbourhood of the plan placed on the model's slots: ``(a, b, free, found,
    taken)``. By time (``ops`` False): the slots [a, b] of ``size`` consecutive events ending
    at a random one, no op free everywhere. By ops: ``size`` ops around a random one (a
    breadth-first walk over parents and consumers), free at every slot, and no window.
    Also the number of events (or ops)."""
    found, taken = model.placement(steps)
    costs = model.costs
    if ops:
        chosen = [rng.choice(costs.op_nodes)]
        seen = set(chosen)
        for node in chosen:
            if len(chosen) >= size:
                break
            near = [u for u in costs.op_parents[node] + costs.consumers[node]
                    if u not in seen and not costs.is_input(u)]
            seen.update(near)
            chosen += near
        return (-1, -1, set(chosen[:size]), found, taken), len(costs.op_nodes)
    slots = sorted([record[0] for records in found.values() for record in records] + taken)
    end = rng.randrange(len(slots))
    first = max(0, end - size + 1)
    return (slots[first], slots[end], set(), found, taken), len(slots)


def _neighbourhood(model, window: tuple) -> object:
    """A copy of ``model.model`` with everything outside the neighbourhood fixed to the plan
    (see the module docstring) and its objective below the plan's."""
    a, b, free, found, taken = window
    top = model.horizon - 1
    sub = model.model.clone()
    variables = sub.proto.variables

    def domain(variable, low: int, high: int) -> None:
        held = variables[variable.index].domain
        held.clear()
        held.extend([low, high])

    for v, records in found.items():
        inside = (lambda r: True) if v in free else (lambda r: a <= r[0] <= b)
        # computations fixed outside the neighbourhood first (the first is always present)
        records = sorted(records, key=inside)
        for c in range(model.capacity[v]):
            present, start, last = model.present[v][c], model.start[v][c], model.last[v][c]
            if c >= len(records) or inside(records[c]):  # free (within the window)
                domain(start, *((0, top) if v in free else (a, b)))
                continue
            s, e = records[c]
            if c:
                domain(present, 1, 1)
            domain(start, s, s)
            # freed earlier at will; a value resident when the window opens, also later
            domain(last, s, max(e, b) if s < a <= e + 1 else e)
    for variable, slot in zip(model.step, taken):
        domain(variable, *((a, b) if a <= slot <= b else (slot, slot)))
    units = sum(math.floor(model.costs.costs[v] * model.scale + 1e-9) * len(found[v])
                for v in found)
    sub.proto.objective.domain.clear()
    sub.proto.objective.domain.extend([0, units - 1])
    return sub
