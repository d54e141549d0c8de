"""Tests of the optimal (dynamic programming) policy: exact counts, optimality, budgets, errors.

No model numerics: only ChainCosts, plans and counts. Optimality is checked against an
exhaustive search over every schedule the plan checker accepts (chain_search.py, written
independently of the DP from the action semantics of plans.py): all schedules up to 5 stages, or with unit sizes;
persistent ones (no checkpoint freed while still needed) at 6 stages with unequal sizes, where
the recursion's model is narrower than the checker's (see
test_freeing_a_live_checkpoint_is_outside_the_model).
"""
from __future__ import annotations

import functools
import math
import random
import sys

import pytest

from checkpoint_ad.errors import BudgetError, PolicyError
from checkpoint_ad.chains.costs import ChainCosts
from checkpoint_ad.chains.plans import Action, check_plan
from checkpoint_ad.chains.replay import forward_cost
from checkpoint_ad.chains.policies import make_plan, optimal_dp
from checkpoint_ad.chains.policies.optimal import SPEC, optimal_cost, plan_optimal
from checkpoint_ad.chains.policies.optimal_table import default_resolution
from closed_forms import griewank_advances
from chain_search import exhaustive_cost, random_budgets, random_chain, stored_bytes_peak

# (n, slots): (optimal with held tapes, revolve = T_G + n), from docs/cost_model.md
HOMOGENEOUS = {(5, 2): (8, 11), (6, 2): (11, 14), (6, 3): (9, 13), (7, 2): (14, 18),
               (8, 2): (17, 22), (8, 3): (13, 19), (20, 3): (49, 65), (30, 5): (65, 92)}


@pytest.mark.parametrize(("n", "slots"), sorted(HOMOGENEOUS))
def test_homogeneous_table(n: int, slots: int) -> None:
    with_tapes, revolve = HOMOGENEOUS[n, slots]
    costs = ChainCosts.unit(n)
    for tapes, expected in ((True, with_tapes), (False, revolve)):
        plan = plan_optimal(costs, slots=slots, tapes=tapes)
        assert optimal_cost(costs, slots=slots, tapes=tapes) == expected
        assert check_plan(plan).forward_evals == expected
        assert plan.peak_stored <= slots


def test_without_tapes_equals_revolve() -> None:
    for n in range(1, 41):
        for slots in (1, 2, 3, 4, 6, 9):
            expected = griewank_advances(n, slots) + n
            costs = ChainCosts.unit(n)
            assert optimal_cost(costs, slots=slots, tapes=False) == expected, (n, slots)
            with_tapes = plan_optimal(costs, slots=slots)
            assert with_tapes.forward_evals <= expected, (n, slots)
            assert not any(step.action is Action.TAPE
                           for step in plan_optimal(costs, slots=slots, tapes=False))


def test_reaches_store_all() -> None:
    for n in (1, 2, 7, 15):
        for slots in (n, n + 1, 10 * n):
            plan = plan_optimal(ChainCosts.unit(n), slots=slots)
            assert plan.forward_evals == n
            assert plan.peak_stored <= min(slots, n)


def test_single_stage() -> None:
    plan = plan_optimal(ChainCosts.unit(1), slots=1)
    assert [str(step) for step in plan] == ["turn 1"]


def check_against_search(costs: ChainCosts, budget: int, persistent: bool = False) -> None:
    """DP optimum == exhaustive optimum == the plan's cost, with and without held tapes."""
    for tapes in (True, False):
        expected = exhaustive_cost(costs, budget, costs.state_bytes, costs.tape_bytes, tapes,
                                   persistent)
        assert optimal_cost(costs, store_budget_bytes=budget, tapes=tapes) == expected
        plan = plan_optimal(costs, store_budget_bytes=budget, tapes=tapes)
        check_plan(plan)
        assert forward_cost(plan, costs) == expected
        assert stored_bytes_peak(plan, costs) <= budget


def test_search_reproduces_the_table() -> None:
    for (n, slots), (with_tapes, revolve) in HOMOGENEOUS.items():
        if n <= 6:
            ones = (1,) * (n + 1)
            assert exhaustive_cost(ChainCosts.unit(n), slots, ones, ones) == with_tapes
            assert exhaustive_cost(ChainCosts.unit(n), slots, ones, ones, False) == revolve


@pytest.mark.parametrize("seed", range(12))
def test_matches_exhaustive_search_in_bytes(seed: int) -> None:
    rng = random.Random(seed)
    costs = random_chain(rng, 5 if seed % 2 else rng.randint(1, 4))
    for budget in random_budgets(rng, costs, 4):
        check_against_search(costs, budget)


@pytest.mark.parametrize("seed", range(3))
def test_matches_persistent_search_on_six_stages(seed: int) -> None:
    rng = random.Random(50 + seed)
    costs = random_chain(rng, 6)
    for budget in random_budgets(rng, costs, 3):
        check_against_search(costs, budget, persistent=True)


def test_freeing_a_live_checkpoint_is_outside_the_model() -> None:
    """The recursion keeps every checkpoint until it is dead (a persistent schedule).

    With unequal sizes a schedule may do better by freeing a small checkpoint that is still
    needed to make room for a larger one: here x_1 (2 bytes) is restored, advanced to x_2 and
    freed so that x_2 (3 bytes) fits; stage 2 later recomputes x_1 from x_0. Cost 61, against
    the recursion's 63, the best persistent schedule.
    """
    costs = ChainCosts(6, (2, 6, 3, 6, 6, 4), (1, 2, 3, 4, 1, 4, 1), (2, 1, 4, 2, 5, 2))
    sizes = costs.state_bytes, costs.tape_bytes
    assert optimal_cost(costs, store_budget_bytes=4, tapes=False) == 63
    assert exhaustive_cost(costs, 4, *sizes, tapes=False, persistent=True) == 63
    assert exhaustive_cost(costs, 4, *sizes, tapes=False) == 61


@pytest.mark.parametrize("seed", range(4))
def test_matches_exhaustive_search_in_slots(seed: int) -> None:
    rng = random.Random(100 + seed)
    costs = random_chain(rng, 6)
    ones = (1,) * (costs.n + 1)
    for slots in range(1, costs.n + 1):
        for tapes in (True, False):
            expected = exhaustive_cost(costs, slots, ones, ones, tapes)
            plan = plan_optimal(costs, slots=slots, tapes=tapes)
            assert check_plan(plan).peak_stored <= slots
            assert forward_cost(plan, costs) == expected == optimal_cost(costs, slots=slots,
                                                                          tapes=tapes)


def recursion_cost(costs: ChainCosts, budget: int, tapes: bool = True) -> float:
    """The recursion of docs/cost_model.md transcribed directly (memoised recursion: small n only)."""
    u, a = costs.compute, costs.state_bytes
    b = costs.tape_bytes if tapes else (math.inf,) * costs.n

    @functools.cache
    def restorable(i: int, j: int, m: int, f: int) -> float:
        if j == i + 1:
            return u[i]
        release = a[i] if f and i else 0
        best = u[i] + restorable(i + 1, j, m + release - b[i], 0) if b[i] <= m + release \
            else math.inf
        for k in range(i + 1, j):
            best = min(best, sum(u[i:k]) + working(k, j, m) + restorable(i, k, m, f))
        return best

    @functools.cache
    def working(k: int, j: int, m: int) -> float:
        if j == k + 1:
            return u[k]
        store = restorable(k, j, m - a[k], 1) if a[k] <= m else math.inf
        return min(store, u[k] + restorable(k + 1, j, m - b[k], 0) if b[k] <= m else math.inf)

    return restorable(0, costs.n, budget - a[0], 0)


def test_matches_the_recursion_transcribed() -> None:
    rng = random.Random(21)
    for n in (7, 12, 18):
        costs = random_chain(rng, n)
        for budget in random_budgets(rng, costs, 3):
            for tapes in (True, False):
                assert optimal_cost(costs, store_budget_bytes=budget, tapes=tapes) == \
                    recursion_cost(costs, budget, tapes), (n, budget, tapes)


def test_blocked_minimum_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    """The advance branch's minimum, taken a few splits at a time, does not depend on the block."""
    rng = random.Random(5)
    costs = ChainCosts(40, tuple(rng.uniform(0.5, 2.0) for _ in range(40)))
    expected = [optimal_cost(costs, slots=slots, tapes=tapes)
                for slots in (2, 5) for tapes in (True, False)]
    monkeypatch.setattr(optimal_dp, "BLOCK_BYTES", 1)
    assert [optimal_cost(costs, slots=slots, tapes=tapes)
            for slots in (2, 5) for tapes in (True, False)] == expected


def test_plan_cost_equals_optimum_on_larger_chains() -> None:
    rng = random.Random(7)
    for n in (12, 40, 90):
        costs = ChainCosts(n, tuple(rng.uniform(0.1, 3.0) for _ in range(n)),
                           tuple(rng.randint(100, 900) for _ in range(n + 1)),
                           tuple(rng.randint(200, 3000) for _ in range(n)))
        for budget in (costs.state_bytes[0], 2000, 5000, 20000):
            optimum = optimal_cost(costs, store_budget_bytes=budget, resolution=30)
            plan = plan_optimal(costs, store_budget_bytes=budget, resolution=30)
            check_plan(plan)
            assert forward_cost(plan, costs) == pytest.approx(optimum, rel=1e-12)
            assert stored_bytes_peak(plan, costs) <= budget


def test_rounding_never_exceeds_the_budget() -> None:
    rng = random.Random(11)
    costs = ChainCosts(25, tuple(rng.randint(1, 9) for _ in range(25)),
                       tuple(rng.randint(1000, 1999) for _ in range(26)),
                       tuple(rng.randint(1000, 4999) for _ in range(25)))
    for budget in range(costs.state_bytes[0], 40000, 2777):
        for resolution in (1, 3, 10):
            plan = plan_optimal(costs, store_budget_bytes=budget, resolution=resolution)
            assert stored_bytes_peak(plan, costs) <= budget


def test_exact_sizes_more_memory_never_costs_more() -> None:
    rng = random.Random(12)
    costs = ChainCosts(20, tuple(rng.randint(1, 9) for _ in range(20)),
                       tuple(rng.randint(2, 9) for _ in range(21)),
                       tuple(rng.randint(3, 20) for _ in range(20)))
    values = [optimal_cost(costs, store_budget_bytes=budget + 0.5, resolution=400)
              for budget in range(costs.state_bytes[0], 300, 7)]
    assert values == sorted(values, reverse=True)
    assert values[-1] == sum(costs.compute)


def test_more_slots_never_cost_more() -> None:
    rng = random.Random(3)
    costs = ChainCosts(30, tuple(rng.randint(1, 9) for _ in range(30)))
    values = [optimal_cost(costs, slots=slots) for slots in range(1, 32)]
    assert values == sorted(values, reverse=True)
    assert values[-1] == sum(costs.compute)


def test_long_chain_needs_no_recursion() -> None:
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(150)
    try:
        plan = plan_optimal(ChainCosts.unit(600), slots=2)
    finally:
        sys.setrecursionlimit(limit)
    assert check_plan(plan).peak_stored <= 2


def test_registered() -> None:
    plan = make_plan("optimal", 8, slots=3)
    assert plan.policy == "optimal" and plan.forward_evals == 13
    assert dict(plan.params) == {"slots": 3, "tapes": True}
    long_chain = ChainCosts(300, state_bytes=(8,) * 301, tape_bytes=(8,) * 300)
    assert dict(make_plan("optimal", long_chain, store_budget_bytes=80).params) == {
        "store_budget_bytes": 80, "tapes": True, "resolution": default_resolution(300)}
    assert [default_resolution(n) for n in (1, 35, 36, 157, 500, 1000, 3000)] == [
        1000, 1000, 972, 227, 71, 35, 16]
    assert {parameter.name for parameter in SPEC.parameters} == {
        "slots", "budget_bytes", "tapes", "resolution", "store_budget_bytes", "bandwidth"}


def test_budget_below_minimum_names_it() -> None:
    costs = ChainCosts(4, state_bytes=(700, 10, 10, 10, 10), tape_bytes=(20, 20, 20, 20))
    with pytest.raises(BudgetError, match=r"minimum of 700 bytes"):
        plan_optimal(costs, store_budget_bytes=699)
    with pytest.raises(BudgetError, match=r"minimum of 1 slot"):
        plan_optimal(costs, slots=0)
    assert plan_optimal(costs, store_budget_bytes=700).forward_evals == 10  # recompute-all


@pytest.mark.parametrize("params", [
    {}, {"slots": 3, "budget_bytes": 100}, {"budget_bytes": 100, "store_budget_bytes": 100},
    {"store_budget_bytes": math.nan}, {"slots": True}, {"slots": 2.0}, {"slots": "3"},
    {"budget_bytes": "big"}, {"budget_bytes": True}, {"budget_bytes": math.nan},
    {"budget_bytes": math.inf}, {"budget_bytes": -5}, {"budget_bytes": 0},
    {"slots": -1}, {"slots": 3, "tapes": 1}, {"budget_bytes": 100, "resolution": 0},
    {"budget_bytes": 100, "resolution": 2.5}, {"slots": 3, "memory": 4},
])
def test_bad_parameters(params: dict[str, object]) -> None:
    with pytest.raises(PolicyError, match="optimal"):
        SPEC.plan(ChainCosts.unit(5), **params)
