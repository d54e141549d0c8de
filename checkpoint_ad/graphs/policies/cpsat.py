"""``cpsat``: the least-cost graph plan under a byte budget by OR-Tools CP-SAT on the interval
model of :mod:`.cpsat_model` (the live-values model of docs/graph_model.md, exactly, with at
most a few computations of each op), anytime and warm-started.

* **Warm start.** The solver is hinted with a plan (``hint``; by default the cheapest of
  ``dtr``, offline ``dtr`` (``next_use``), ``chen``, the hierarchical plan of ``optimal`` and
  ``recompute_all`` that fits the budget), so its answer is never dearer than the hint: the
  hint is returned when the solver finds nothing better.
* **Capacity.** Op v may be computed ``max(computations, the hint's count of v)`` times, and
  never more than a plan as cheap as the hint can use (``1 + (U - total) / costs[v]``, U the
  hint's cost). When the solver finishes early (proven optimal, or infeasible, for this
  capacity) and some capacity is below that ceiling, it is raised (+1 for the ops whose
  capacity the solution uses up, else for all) and the model solved again, hinted with the
  best plan so far, until the time limit.
* **Neighbourhoods.** From :data:`LNS_OPS` ops, a round after the first on a model that is
  not exact is a large-neighbourhood search of the best plan (:mod:`.cpsat_lns`; plans only).
* **Bound.** ``lower_bound`` is valid for **every** plan: the solver's bound when the model is
  complete (every capacity at the ceiling above, so the model holds an optimal plan), the
  closure bound of :mod:`~checkpoint_ad.graphs.floors`, the window bound of
  :mod:`~checkpoint_ad.graphs.windows` (when the closure bound does not meet the hint's
  cost; in at most :data:`WINDOW_SHARE` of the time left, its coarse windows tried until it
  meets that cost or stops rising) or the ``bound`` given, whichever
  is largest. The plan is "optimal" when the solver proves the optimum of a complete model
  or the bound meets its cost (when it meets the hint's, the solver is not run; when it
  meets a plan the solver found, no further round is solved).
* **Time.** ``time_limit`` bounds the whole call in wall time (the hint's planners, building
  the model, solving); ``effort`` optionally stops the solver after that much deterministic
  time (CP-SAT's own unit, about a second of work), which with ``workers=1`` and a fixed
  ``seed`` makes the plan reproducible on any machine.

``details`` holds the capacities used (``max_computations``), whether the model was complete,
the solver's status and bound, the rounds solved, the hint's cost and the ``trajectory``
(:mod:`.anytime`): ``{"incumbents": [[seconds, cost], ...], "bounds": [[seconds, bound],
...]}``, seconds since the call started; the hint is the first incumbent, the closure (or
window) bound the first bound, and a solver's rising bound is kept only from a complete model (it bounds
every plan only then).
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from ...checks import whole_number
from ...errors import BudgetError, PolicyError, TimeLimitError
from ...plans.registry import Parameter, PolicySpec, budget_value, positive_int, positive_seconds
from ...plans.transfers import bandwidth_value, host_budget_value
from .. import solvers
from ..costs import GraphCosts
from ..floors import closure_bound, least_peak_floor
from ..windows import window_bound
from ..plans import GraphPlan
from . import exact
from .anytime import Trajectory
from .checkmate import within_budget
from .chen import plan_chen
from .dtr import plan_dtr
from .fixed import plan_recompute_all, plan_store_all
from .hierarchical import plan_hierarchical

DEFAULT_TIME_LIMIT = 10.0
DEFAULT_COMPUTATIONS = 2
MINIMUM_SEARCH_STATES = 50_000  # naming the least budget is a courtesy: it must stay quick
MINIMUM_SEARCH_OPS = 40
COMPLETE_LITERALS = 50_000  # the complete model is solved at once when it is this small
GROWTH = 2  # a first round improves the hint when the complete model is this much larger
FIRST_SHARE = 0.125  # of the time (and effort) left, for that round
WINDOW_SHARE = 0.25  # of the time left, at most, for the window bound (..windows)
LNS_OPS = 30  # from this many ops, rounds that are not exact search neighbourhoods (.cpsat_lns)
LP_OPS_LIMIT = 300  # past this, CP-SAT's linear relaxation is off (it loads too slowly)


@dataclass
class _Search:
    """The state of one call: the best plan so far (steps, cost), the capacity per node,
    the valid lower bound and what the rounds found."""

    costs: GraphCosts
    budget: float
    deadline: float
    best: tuple | None
    capacity: list[int]
    ceiling: list[float]
    bound: float
    rounds: int = 0
    status: str = "unknown"
    solver_bound: float | None = None
    complete: bool = False
    proven: bool = False
    trajectory: Trajectory | None = None


def plan_cpsat(costs: GraphCosts, budget_bytes: int | None = None,
               time_limit: float = DEFAULT_TIME_LIMIT, workers: int = 1, seed: int = 0,
               computations: int = DEFAULT_COMPUTATIONS, effort: float | None = None,
               hint: GraphPlan | None = None, bound: float | None = None,
               bandwidth: float | None = None,
               host_budget_bytes: int | None = None) -> GraphPlan:
    """The cheapest plan CP-SAT finds within ``budget_bytes`` (None: no limit) and
    ``time_limit`` seconds, hinted with ``hint`` (see the module docstring); ``bound`` is a
    lower bound the caller knows to hold for every plan (kept when larger than the
    solver's). With a ``bandwidth`` (bytes per cost unit; None or 0: none) the plan of least
    **time**, moving values to host memory and back, with host copies within
    ``host_budget_bytes`` (None: no limit; 0: as without a bandwidth): :mod:`.cpsat_offload`
    (``bound`` is then not used)."""
    budget = budget_value("cpsat", budget_bytes)
    limit = positive_seconds("cpsat", "time_limit", time_limit)
    workers = positive_int("cpsat", "workers", workers)
    computations = positive_int("cpsat", "computations", computations)
    seed = whole_number(seed, "policy 'cpsat': seed", error=PolicyError, noun="whole number")
    effort = None if effort is None else positive_seconds("cpsat", "effort", effort)
    speed = bandwidth_value(bandwidth, "policy 'cpsat'", PolicyError)
    host = host_budget_value(host_budget_bytes, "policy 'cpsat'", PolicyError)
    solvers.load(solvers.CPSAT)
    started = time.perf_counter()
    params = {"time_limit": limit, "workers": workers, "seed": seed,
              "computations": computations}
    if budget_bytes is not None:
        params = {"budget_bytes": budget_bytes, **params}
    if speed and host:
        params["bandwidth"] = bandwidth
        if host_budget_bytes is not None:
            params["host_budget_bytes"] = host_budget_bytes
    store_all = plan_store_all(costs)
    if budget >= store_all.peak_bytes:  # computing every op once is the least cost of any plan
        return GraphPlan.build(costs, store_all.steps, "cpsat", params, method="store_all",
                               status="optimal", lower_bound=costs.total_cost,
                               solve_s=time.perf_counter() - started)
    if speed and host:
        from .cpsat_offload import plan_with_transfers
        _refuse_below_floor(costs, budget, budget_bytes)
        return plan_with_transfers(costs, budget, params, (speed, host), limit,
                                   (workers, seed, effort), computations, hint, started,
                                   _heuristic_hint)
    _refuse_below_floor(costs, budget, budget_bytes)
    hint = hint if hint is not None else _heuristic_hint(costs, budget, started + limit / 4,
                                                         started + limit)
    if hint is None:  # no heuristic fits: on a small graph, exact search names the least budget
        least = _least_budget(costs)
        if least is not None and budget < least:
            raise BudgetError(f"policy 'cpsat': budget_bytes={budget_bytes} is below the "
                              f"minimum of {least} bytes for this graph")
    search = _start(costs, budget, started + limit, hint, computations, bound)
    search.trajectory = Trajectory(started)
    search.trajectory.bound(search.bound)
    if search.best is not None:
        search.trajectory.incumbent(search.best[1])
    left = None if effort is None else [effort]  # deterministic time left, across rounds
    proven = search.best is not None and search.bound >= search.best[1]  # the hint is optimal
    while not proven and _round(search, workers, seed, left):
        pass
    limits = f"time_limit={limit:g} s" + ("" if effort is None else f" and effort={effort:g}")
    return _finish(search, params, hint, budget_bytes, limits, started)


def _refuse_below_floor(costs: GraphCosts, budget: float, budget_bytes: object) -> None:
    """BudgetError for a budget below what every plan needs (:func:`.least_peak_floor`)."""
    floor = least_peak_floor(costs)
    if budget < floor:
        raise _below_minimum(costs, budget_bytes, floor)


def _least_budget(costs: GraphCosts) -> int | None:
    """The least peak of any plan by a short exact search, on graphs of at most
    :data:`MINIMUM_SEARCH_OPS` ops; None when out of its reach."""
    if len(costs.op_nodes) > MINIMUM_SEARCH_OPS:
        return None
    try:
        return int(exact.search(costs, math.inf, MINIMUM_SEARCH_STATES, minimise_peak=True)[2])
    except exact.SearchLimit:
        return None


def _below_minimum(costs: GraphCosts, budget_bytes: object, floor: int) -> BudgetError:
    """The refusal of a budget no plan meets: it names the least budget (exact search, on
    graphs small enough for a quick one), else the floor every plan needs."""
    least = _least_budget(costs)
    if least is not None:
        return BudgetError(f"policy 'cpsat': budget_bytes={budget_bytes} is below the minimum "
                           f"of {least} bytes for this graph")
    return BudgetError(f"policy 'cpsat': budget_bytes={budget_bytes} is below the minimum of "
                       f"at least {floor} bytes for this graph (what its largest step holds)")


def _heuristic_hint(costs: GraphCosts, budget: float, deadline: float,
                    last: float) -> GraphPlan | None:
    """The cheapest plan within ``budget`` of dtr, offline dtr, chen, the hierarchical plan
    of ``optimal`` and recompute_all, each in the time left before ``deadline``, or before
    ``last`` while none fits yet (a first plan comes before the solver's time); None when
    none fits."""
    planners: list[Callable[[float], GraphPlan]] = [
        lambda s: plan_dtr(costs, budget_bytes=int(budget), time_limit=s),
        lambda s: plan_dtr(costs, budget_bytes=int(budget), heuristic="next_use", time_limit=s),
        lambda s: plan_chen(costs, budget_bytes=int(budget), time_limit=s),
        lambda s: plan_hierarchical(costs, budget, "cpsat", time_limit=s),
        lambda s: plan_recompute_all(costs)]
    fitting: list[GraphPlan] = []
    for planner in planners:
        left = (deadline if fitting else last) - time.perf_counter()
        if left <= 0:
            break
        try:
            plan = planner(left)
        except PolicyError:  # BudgetError and TimeLimitError included: the hint is optional
            continue
        if plan.peak_bytes <= budget:
            fitting.append(plan)
    return min(fitting, key=lambda plan: plan.cost, default=None)


def _start(costs: GraphCosts, budget: float, deadline: float, hint: GraphPlan | None,
           computations: int, bound: float | None) -> _Search:
    """The search's first state: capacities from the hint (see the module docstring)."""
    from .cpsat_model import complete_capacity
    best = None if hint is None else (tuple(hint.steps), hint.cost)
    if hint is not None and hint.peak_bytes > budget:
        raise PolicyError(f"policy 'cpsat': the hint peaks at {hint.peak_bytes} bytes, above "
                          f"budget_bytes={budget:g}")
    counts = [0] * len(costs)
    for action, node in () if hint is None else hint.steps:
        counts[node] += action.value == "compute"
    ceiling = (complete_capacity(costs, hint.cost) if hint is not None
               else [math.inf] * len(costs))
    capacity = [int(min(max(computations, counts[v]), ceiling[v])) if v in costs.op_nodes
                else 0 for v in range(len(costs))]
    valid = max(closure_bound(costs, budget, deadline),
                bound if bound is not None else -math.inf)
    if best is None or valid < best[1]:  # the hint is not proven optimal yet
        now = time.perf_counter()
        valid = max(valid, window_bound(costs, budget, now + WINDOW_SHARE * (deadline - now),
                                         enough=math.inf if best is None else best[1],
                                         known=valid))
    return _Search(costs, budget, deadline, best, capacity, ceiling, valid)


def coverage_literals(costs: GraphCosts, capacity: list) -> float:
    """An estimate of the model's size: the literals choosing which computation of a parent
    (or residual) covers each computation (or backward step) that reads it."""
    edges = sum(capacity[u] * capacity[p] for u in costs.op_nodes for p in costs.op_parents[u])
    return edges + sum(capacity[r] for b in costs.backward_order for r in costs.op_residuals[b])


def _next_round(search: _Search) -> tuple[list[int], float, bool]:
    """The capacities, share of the time (and effort) left and exactness of the next round:
    the complete, exact model (capacities at the ceilings) with all the time left when it is
    small enough
    (:data:`COMPLETE_LITERALS`) and, in the first round, not much larger than the model at the
    hint's capacities; else the current capacities in a model that is not exact
    (:mod:`.cpsat_model`), hinted with the best plan, to improve it and so lower the ceilings:
    for :data:`FIRST_SHARE` of the time left when the complete model comes next, else half
    of it (the rest for the rounds after)."""
    costs = search.costs
    if all(math.isfinite(search.ceiling[v]) for v in costs.op_nodes):
        ceiling = [int(c) for c in search.ceiling]
        size = coverage_literals(costs, ceiling)
        first = search.rounds == 0 and size > GROWTH * coverage_literals(costs, search.capacity)
        if size <= COMPLETE_LITERALS:
            if not first:
                return ceiling, 1.0, True
            return list(search.capacity), FIRST_SHARE, False
    return list(search.capacity), 0.5, False


def _round(search: _Search, workers: int, seed: int, effort: list[float] | None) -> bool:
    """Build and solve the model of :func:`_next_round`, keeping what it finds; True when
    another round should follow (time is left, the model was not complete and solved, and
    the bound does not meet the best plan's cost)."""
    from ortools.sat.python import cp_model

    from .checkmate_model import OutOfTime
    from .cpsat_model import IntervalModel
    costs = search.costs
    capacity, share, exact = _next_round(search)
    deadline = time.perf_counter() + share * (search.deadline - time.perf_counter())
    if not exact and search.rounds and search.best is not None and len(
            costs.op_nodes) >= LNS_OPS:
        from .cpsat_lns import search_round  # neighbourhoods of the best plan
        return search_round(search, deadline, share, (workers, seed), effort, _tighten)
    try:
        model = IntervalModel(costs, search.budget, capacity, search.deadline, exact,
                              search.bound)
    except OutOfTime:
        return False
    if search.best is not None:
        model.hint(search.best[0])
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.0, deadline - time.perf_counter())
    solver.parameters.num_workers = workers
    solver.parameters.random_seed = seed
    if len(costs.op_nodes) > LP_OPS_LIMIT:  # its LP would take the time limit to load
        solver.parameters.linearization_level = 0
    if effort is not None:
        solver.parameters.max_deterministic_time = effort[0] * share
    rising: list[tuple[float, float]] = []  # the solver's bounds as they rise: (clock, bound)
    solver.best_bound_callback = lambda value: rising.append((time.perf_counter(),
                                                             value / model.scale))
    status = solver.Solve(model.model, _recorder(search.trajectory, model.scale))
    if effort is not None:
        effort[0] -= solver.ResponseProto().deterministic_time
    search.rounds += 1
    search.status = solver.StatusName(status)
    search.capacity = list(capacity)
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        steps = model.decode(solver)
        found = GraphPlan.build(costs, steps, "cpsat", {}).cost
        if search.best is None or found < search.best[1]:
            search.best = (tuple(steps), found)
            search.trajectory.incumbent(found)
            _tighten(search)
    # the model holds every plan as cheap as the best known (hence an optimal one) when its
    # capacities reach the ceilings of that cost: only then does its bound bound every plan
    complete = all(capacity[v] >= search.ceiling[v] for v in costs.op_nodes)
    search.complete = complete
    finished = status in (cp_model.OPTIMAL, cp_model.INFEASIBLE)
    if complete and status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        search.solver_bound = solver.BestObjectiveBound() / model.scale
        for at, value in rising:
            search.trajectory.bound(value, at)
        search.bound = max(search.bound, search.solver_bound)
        search.trajectory.bound(search.bound)
        search.proven = status == cp_model.OPTIMAL and model.scale == 1
    if complete and status == cp_model.INFEASIBLE and search.best is None:
        search.proven = True  # no plan of any number of computations fits
    met = search.best is not None and search.bound >= search.best[1]  # a bound proves it
    if (complete and finished) or met or time.perf_counter() >= search.deadline or (
            effort is not None and effort[0] <= 0):
        return False
    if finished:
        _relax(search, model.counts(solver) if status == cp_model.OPTIMAL else {})
    return True


def _recorder(trajectory: Trajectory, scale: float) -> object:
    """A solution callback putting each solution's cost (the objective over the cost scale:
    rounded down for fractional costs) into ``trajectory``."""
    from ortools.sat.python import cp_model

    class Recorder(cp_model.CpSolverSolutionCallback):
        def on_solution_callback(self) -> None:
            trajectory.incumbent(self.ObjectiveValue() / scale)

    return Recorder()


def _tighten(search: _Search) -> None:
    """Lower the ceilings to what a plan as cheap as the best one can use (the best plan
    stays within them)."""
    from .cpsat_model import complete_capacity
    search.ceiling = complete_capacity(search.costs, search.best[1])
    for v in search.costs.op_nodes:
        search.capacity[v] = int(min(search.capacity[v], search.ceiling[v]))


def _relax(search: _Search, counts: dict[int, int]) -> None:
    """Raise the capacities after a round the solver finished (proved optimal or infeasible)
    on an incomplete model: +1 for the ops whose capacity the solution uses up, or for every
    op below its ceiling when none does."""
    ops = search.costs.op_nodes
    below = [v for v in ops if search.capacity[v] < search.ceiling[v]]
    full = [v for v in below if counts.get(v, 0) >= search.capacity[v]]
    for v in full or below:
        search.capacity[v] += 1


def _finish(search: _Search, params: dict, hint: GraphPlan | None, budget_bytes: object,
            limits: str, started: float) -> GraphPlan:
    """The plan of the search, or the refusal when it found none."""
    costs = search.costs
    if search.best is None:
        if search.proven:
            raise _below_minimum(costs, budget_bytes, least_peak_floor(costs))
        raise TimeLimitError(f"policy 'cpsat': no plan of this {len(costs.op_nodes)}-op graph "
                             f"within budget_bytes={budget_bytes} was found within {limits} "
                             f"(solver status {search.status}); raise them")
    steps, cost = search.best
    bound = min(search.bound, cost) if search.bound <= cost + 1e-9 * max(1.0, cost) else search.bound
    status = "optimal" if (search.proven or bound >= cost) else "feasible"
    details = {"max_computations": max(search.capacity[v] for v in costs.op_nodes),
               "complete": search.complete, "solver_status": search.status,
               "solver_bound": search.solver_bound, "rounds": search.rounds,
               "hint_cost": None if hint is None else hint.cost,
               "trajectory": search.trajectory.details()}
    plan = GraphPlan.build(costs, steps, "cpsat", params, method="cpsat", status=status,
                           lower_bound=bound, solve_s=time.perf_counter() - started,
                           details=details)
    return within_budget(plan, search.budget)


SPEC = PolicySpec(
    "cpsat", "OR-Tools CP-SAT on an interval model of the live-values model, warm-started "
    "from the heuristic planners, anytime, with a lower bound valid for every plan",
    plan_cpsat,
    (Parameter("budget_bytes", int, None, "byte budget for activations (values and "
               "cotangents); default: no limit"),
     Parameter("time_limit", float, DEFAULT_TIME_LIMIT, "seconds the whole call may take "
               "(hint, model building, solving); the best plan found is returned"),
     Parameter("workers", int, 1, "CP-SAT's search workers (1: deterministic up to the time "
               "limit)"),
     Parameter("seed", int, 0, "CP-SAT's random seed"),
     Parameter("computations", int, DEFAULT_COMPUTATIONS, "computations of each op the "
               "model allows at first (raised when the solver finishes early)"),
     Parameter("effort", float, None, "CP-SAT's deterministic time limit (reproducible "
               "plans); default: none, only time_limit"),
     Parameter("bandwidth", float, None, "bytes per cost unit between device and host "
               "memory: the plan of least time, offloading and prefetching values too, on "
               "a model with transfers (docs/offload_model.md); default: no offload"),
     Parameter("host_budget_bytes", int, None, "byte budget for host copies (with a "
               "bandwidth); default: no limit")))
