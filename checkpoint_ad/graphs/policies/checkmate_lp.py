"""``checkmate_lp``: Checkmate's LP relaxation with two-phase rounding (Jain et al., MLSys
2020, section 5): solve the relaxation of :mod:`.checkmate_model`, round the checkpoint
matrix S (deterministically at thresholds 0.1..0.9, or randomly: S[t,p] = 1 with probability
S*[t,p]), then take the least R that the rounded S needs. Each rounding is decoded and
replayed; the cheapest within the budget wins. When none fits, the LP is solved again at
90%, 80%, 70% of the budget (the paper's artifact solves at 90%).

``lower_bound`` is the LP value: a lower bound of the formulation's MILP, **not** of every
plan (the formulation fixes the order inside stages; see docs/graphs.md).
"""
from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np

from ...checks import whole_number
from ...errors import BudgetError, PolicyError
from ...plans.registry import Parameter, PolicySpec, budget_value, positive_int, positive_seconds
from .. import solvers
from ..costs import GraphCosts
from ..floors import least_peak_floor
from ..plans import GraphPlan
from ..replay import replay
from .checkmate import (DEFAULT_TIME_LIMIT, budget_error, capped, out_of_time,
                         store_all_if_cheaper)
from .checkmate_model import Model, OutOfTime
from .fixed import plan_store_all

ROUNDINGS = ("deterministic", "randomized")
THRESHOLDS = tuple(k / 10 for k in range(1, 10))
SHRINK = (1.0, 0.9, 0.8, 0.7)


def plan_checkmate_lp(costs: GraphCosts, budget_bytes: int | None = None,
                      rounding: str = "deterministic", samples: int = 20, seed: int = 0,
                      time_limit: float = DEFAULT_TIME_LIMIT) -> GraphPlan:
    """The cheapest rounding of Checkmate's LP relaxation that fits ``budget_bytes``."""
    budget = budget_value("checkmate_lp", budget_bytes)
    seconds = positive_seconds("checkmate_lp", "time_limit", time_limit)
    samples = positive_int("checkmate_lp", "samples", samples)
    if rounding not in ROUNDINGS:
        raise PolicyError(f"policy 'checkmate_lp': rounding must be one of "
                          f"{', '.join(ROUNDINGS)}, got {rounding!r}")
    seed = whole_number(seed, "policy 'checkmate_lp': seed", error=PolicyError,
                        noun="whole number")
    solvers.load(solvers.HIGHS)
    started = time.perf_counter()
    try:
        model = Model(costs, started + seconds)
        bound, best, factor = _search(model, budget, budget_bytes, (rounding, samples, seed),
                                      seconds)
    except OutOfTime:
        raise out_of_time("checkmate_lp", seconds, len(costs.op_nodes)) from None
    params = {"rounding": rounding, "samples": samples, "seed": seed, "time_limit": seconds}
    if budget_bytes is not None:
        params = {"budget_bytes": budget_bytes, **params}
    plan = None if best[1] is None else GraphPlan.build(
        costs, best[1], "checkmate_lp", params, method="lp rounding", status="feasible",
        details={"budget_factor": factor, "unit_bytes": model.unit})
    plan = store_all_if_cheaper(costs, budget, plan, "checkmate_lp", params) or plan
    if plan is None:
        raise BudgetError(f"policy 'checkmate_lp': no rounding of the LP relaxation fits "
                          f"budget_bytes={budget_bytes} (no plan fits below "
                          f"{least_peak_floor(costs):,} bytes); use 'checkmate' (the MILP)")
    if plan.method == "lp rounding":  # the LP bounds the formulation only when exact
        plan = replace(plan, lower_bound=capped(bound, plan.cost) if model.exact else None)
    return replace(plan, solve_s=time.perf_counter() - started)


def _search(model: Model, budget: float, budget_bytes: object, rounding: tuple[str, int, int],
            seconds: float) -> tuple[float | None, tuple[float, list | None], float]:
    """(the LP's bound, the cheapest rounding that fits as (cost, steps), the budget factor
    it was found at): the LP at the budget, then at smaller ones while none fits and time is
    left (what was found stands when it runs out between budgets)."""
    bound, best, factor = None, (math.inf, None), 1.0
    for factor in SHRINK if math.isfinite(budget) else (1.0,):
        if factor != 1.0 and time.perf_counter() >= model.deadline:
            break
        relaxed = model.solve(math.floor(budget * factor) if math.isfinite(budget) else budget,
                              integral=False)
        if relaxed.S is None:
            if (factor == 1.0 and relaxed.status == "infeasible"
                    and plan_store_all(model.costs).peak_bytes > budget):
                raise budget_error("checkmate_lp", model, budget_bytes, seconds)
            break
        bound = relaxed.bound if bound is None else bound
        best = _cheapest(model, _roundings(relaxed.S, *rounding), budget, best)
        if best[1] is not None:
            break
    return bound, best, factor


def _roundings(S: np.ndarray, rounding: str, samples: int, seed: int) -> list[np.ndarray]:
    if rounding == "deterministic":
        return [(S >= threshold - 1e-9).astype(int) for threshold in THRESHOLDS]
    draw = np.random.default_rng(seed)
    return [(draw.random(S.shape) < S).astype(int) for _ in range(samples)]


def _cheapest(model: Model, roundings: list[np.ndarray], budget: float,
              best: tuple[float, list | None]) -> tuple[float, list | None]:
    """(cost, steps) of the cheapest decoded rounding that fits, or ``best``."""
    for S in roundings:
        steps = model.decode(model.recompute_for(S))
        counted = replay(model.costs, steps)
        if counted.peak_bytes <= budget and counted.cost < best[0]:
            best = (counted.cost, steps)
    return best


SPEC = PolicySpec(
    "checkmate_lp", "Checkmate's LP relaxation with two-phase rounding (approximate)",
    plan_checkmate_lp,
    (Parameter("budget_bytes", int, None, "byte budget for activations (values and "
               "cotangents); default: no limit"),
     Parameter("rounding", str, "deterministic", "rounding of S: 'deterministic' "
               "(thresholds 0.1..0.9) or 'randomized'"),
     Parameter("samples", int, 20, "randomized roundings drawn"),
     Parameter("seed", int, 0, "seed of the randomized rounding"),
     Parameter("time_limit", float, DEFAULT_TIME_LIMIT, "seconds for building the model and "
               "solving its LP relaxation")))
