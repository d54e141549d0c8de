"""Certify the chain DP: how far ``optimal``'s plan is from the least cost of *every* schedule.

The ``optimal`` recursion (:mod:`.policies.optimal`) is exact only among persistent schedules
(each checkpoint kept until it is dead) and, with byte budgets, only up to its memory levels.
:func:`certify_chain` solves the CP-SAT model of :mod:`.cpsat_model` (every schedule of the
tape model, docs/chains.md, "Certifying ``optimal``") hinted with the DP's plan, over enough
slots for every schedule as cheap as that plan, so that the solver's bound is a lower bound on
the cost of every schedule within the store budget. It returns the DP's cost, the best plan
found (never dearer than the DP's), that bound and the DP's certified gap.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

from ..checks import whole_number
from ..errors import PolicyError
from ..plans.registry import positive_int, positive_seconds
from .costs import ChainCosts
from .cpsat_model import ChainModel, complete_horizon
from .plans import Plan
from .policies.optimal import plan_optimal
from .replay import forward_cost

NAME = "certify"
MAX_LITERALS = 2_000_000  # Boolean variables of the model (7 per stage and slot)


@dataclass(frozen=True)
class Certificate:
    """What :func:`certify_chain` found. Costs are forward costs (sum of u_t over the
    evaluations, docs/cost_model.md); ``lower_bound`` is at most the cost of every schedule
    within the budget; ``status`` is "optimal" when ``cost`` is proven the least, else
    "feasible"; ``dp_gap`` = dp_cost / lower_bound - 1 is the DP's certified gap (0 when the
    DP is proven optimal) and ``gap`` the same for the best plan."""

    dp_cost: float
    dp_plan: Plan
    cost: float
    plan: Plan
    lower_bound: float
    status: str
    horizon: int
    seconds: float

    @property
    def dp_gap(self) -> float:
        return self.dp_cost / self.lower_bound - 1 if self.lower_bound > 0 else math.inf

    @property
    def gap(self) -> float:
        return self.cost / self.lower_bound - 1 if self.lower_bound > 0 else math.inf


def _check(costs: ChainCosts, time_limit: object, effort: object, workers: object,
           seed: object) -> tuple[float, float | None, int, int]:
    if any(costs.tape_input_bytes):
        raise PolicyError(f"{NAME}: tapes that keep their input (tape_input_bytes) share "
                          f"memory with a stored input, which the CP-SAT model does not count")
    limit = positive_seconds(NAME, "time_limit", time_limit)
    if effort is not None:
        effort = positive_seconds(NAME, "effort", effort)
    return (limit, effort, positive_int(NAME, "workers", workers),
            whole_number(seed, f"policy {NAME!r}: seed", error=PolicyError))


def certify_chain(costs: ChainCosts, store_budget_bytes: float | None = None,
                  slots: int | None = None, tapes: bool = True, time_limit: float = 10.0,
                  effort: float | None = None, workers: int = 1, seed: int = 0) -> Certificate:
    """Certify ``optimal``'s plan for ``costs`` within one budget: ``store_budget_bytes``
    (checkpoints and held tapes, x_0 included, sized by ``costs.state_bytes`` and
    ``costs.tape_bytes``) or ``slots`` (every state and held tape one slot). ``tapes=False``
    forbids held tapes (revolve's model). The solver stops after ``time_limit`` seconds, or
    ``effort`` (CP-SAT's deterministic time, about a second of work; with ``workers=1`` and a
    fixed ``seed`` the answer is reproducible on any machine), whichever comes first."""
    started = time.perf_counter()
    limit, effort, workers, seed = _check(costs, time_limit, effort, workers, seed)
    dp_plan = plan_optimal(costs, slots=slots, store_budget_bytes=store_budget_bytes,
                           tapes=tapes)
    dp_cost = forward_cost(dp_plan, costs)
    least = sum(costs.compute)  # every stage is evaluated at least once
    horizon = complete_horizon(costs, dp_cost)
    if dp_cost <= least:
        return Certificate(dp_cost, dp_plan, dp_cost, dp_plan, dp_cost, "optimal", horizon,
                           time.perf_counter() - started)
    if 7 * costs.n * horizon > MAX_LITERALS:
        raise PolicyError(f"{NAME}: the model of {costs.n} stages over {horizon:,} slots "
                          f"(the most events of a plan as cheap as the DP's, "
                          f"{dp_cost:g}) is over {MAX_LITERALS:,} literals")
    ones = (1,) * (costs.n + 1)
    sizes = ones if slots is not None else costs.state_bytes
    budget = slots if slots is not None else math.floor(store_budget_bytes)
    model = ChainModel(costs, sizes, (ones if slots is not None else costs.tape_bytes)
                       if tapes else None, budget, horizon)
    model.hint(dp_plan)
    solver, status = _solve(model, limit - (time.perf_counter() - started), effort, workers,
                            seed)
    cost, plan = dp_cost, dp_plan
    if status in ("OPTIMAL", "FEASIBLE"):
        params = {"slots" if slots is not None else "store_budget_bytes":
                  slots if slots is not None else store_budget_bytes, "tapes": tapes}
        found = model.decode(solver).build(NAME, params, slots=slots)
        if forward_cost(found, costs) < cost:
            cost, plan = forward_cost(found, costs), found
    bound = solver.best_objective_bound / model.scale if status != "UNKNOWN" else least
    bound = max(least, math.ceil(bound - 1e-9) if model.scale == 1 else bound)
    proven = (status == "OPTIMAL" and model.scale == 1) or bound >= cost - 1e-9
    return Certificate(dp_cost, dp_plan, cost, plan, min(bound, cost),
                       "optimal" if proven else "feasible", horizon,
                       time.perf_counter() - started)


def _solve(model: ChainModel, seconds: float, effort: float | None, workers: int, seed: int):
    from ortools.sat.python import cp_model
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(seconds, 0.01)
    if effort is not None:
        solver.parameters.max_deterministic_time = effort
    solver.parameters.num_workers = workers
    solver.parameters.random_seed = seed
    status = solver.status_name(solver.Solve(model.model))
    if status in ("INFEASIBLE", "MODEL_INVALID"):  # the DP's plan is a solution
        raise AssertionError(f"{NAME}: the CP-SAT model is {status} with the DP's plan")
    return solver, status
