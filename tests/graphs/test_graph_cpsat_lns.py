"""``cpsat``'s large-neighbourhood search (:mod:`checkpoint_ad.graphs.policies.cpsat_lns`):
never dearer than the plan it starts from, its plans pass the checker and replay to their
cost within the budget, it improves a poor plan, never below the exhaustive optimum, and is
deterministic with a fixed seed and ``effort``; in ``cpsat``'s rounds it keeps the bound and
records each better plan. Limits are deterministic (``effort``), far below the wall-clock
deadline."""
from __future__ import annotations

import math
import time

import pytest

import checkpoint_ad as ca
from checkpoint_ad import check_graph_plan, plan_graph
from checkpoint_ad.graphs.floors import closure_bound
from checkpoint_ad.graphs.plans import GraphPlan
from checkpoint_ad.graphs.policies import cpsat, cpsat_lns
from checkpoint_ad.graphs.policies.cpsat_lns import improve
from graph_families import GROUND_TRUTH, random_dag
from test_graphs import simulate

EFFORT = 0.3  # deterministic seconds of CP-SAT
WALL = 60.0


def searched(costs: ca.GraphCosts, budget: int, start: GraphPlan, seed: int = 0,
             effort: float = EFFORT) -> GraphPlan:
    """The LNS's plan from ``start``, checked, replayed independently to its cost, within
    ``budget`` and never dearer than ``start``."""
    steps, cost, used = improve(costs, budget, (tuple(start.steps), start.cost),
                                time.perf_counter() + WALL, effort, seed)
    plan = GraphPlan.build(costs, steps, "cpsat", {})
    check_graph_plan(costs, plan)
    assert simulate(costs, list(plan.steps)) == (plan.forward_evals, cost, plan.peak_bytes)
    assert plan.peak_bytes <= budget and cost <= start.cost and 0 < used
    return plan


@pytest.mark.parametrize("name", ["fig69_chain(6)", "resnet(3)", "unet(3)"])
def test_it_improves_recompute_all_and_stays_above_the_least_cost(name: str) -> None:
    costs, _, _, table = GROUND_TRUTH[name]
    budget = sorted(table)[1]  # one byte above the least budget: recompute_all is poor there
    start = plan_graph("recompute_all", costs)
    assert start.cost > table[budget]
    plan = searched(costs, budget, start)
    assert table[budget] <= plan.cost < start.cost


@pytest.mark.parametrize("seed", range(6))
def test_random_dags_never_dearer_than_the_start_nor_below_the_optimum(seed: int) -> None:
    costs = random_dag(6 + seed % 3, 900 + seed)
    peak = plan_graph("store_all", costs).peak_bytes
    budget = -(-peak * 2 // 3)
    try:
        least = plan_graph("optimal", costs, budget_bytes=budget).cost  # exact search
    except ca.BudgetError:
        return
    start = plan_graph("recompute_all", costs)
    if start.peak_bytes > budget:
        return
    assert searched(costs, budget, start, seed).cost >= least


def test_a_plan_that_is_already_the_least_cost_comes_back_unchanged() -> None:
    costs, _, _, table = GROUND_TRUTH["unet(3)"]
    start = plan_graph("optimal", costs, budget_bytes=9)
    assert start.cost == table[9]
    assert searched(costs, 9, start).steps == start.steps


def test_deterministic_with_a_fixed_seed_and_effort() -> None:
    costs = random_dag(9, 77)
    budget = -(-plan_graph("store_all", costs).peak_bytes * 2 // 3)
    start = plan_graph("recompute_all", costs)
    first, second = (searched(costs, budget, start, seed=3) for _ in range(2))
    assert first.steps == second.steps


def test_in_cpsat_rounds_it_records_better_plans_and_keeps_the_bound(monkeypatch) -> None:
    """With every round not exact (the complete model deemed too large) and the LNS's
    threshold at 0 ops, cpsat's rounds after the first are the LNS's: from recompute_all's
    plan they find cheaper ones, each in the trajectory, and the bound is the one cpsat has
    without them (the LNS bounds nothing)."""
    monkeypatch.setattr(cpsat, "COMPLETE_LITERALS", 0)
    monkeypatch.setattr(cpsat, "LNS_OPS", 0)  # this graph is far below the threshold
    searches: list[tuple[float, float]] = []  # (cost before, cost after) of each LNS round

    def spied(*arguments, **named):
        found = improve(*arguments, **named)
        searches.append((arguments[2][1], found[1]))
        return found

    monkeypatch.setattr(cpsat_lns, "improve", spied)
    costs, _, _, table = GROUND_TRUTH["fig69_chain(6)"]
    hint = plan_graph("recompute_all", costs)
    plan = cpsat.plan_cpsat(costs, 4, time_limit=WALL, effort=EFFORT, hint=hint)
    check_graph_plan(costs, plan)
    assert table[4] <= plan.cost < hint.cost and plan.peak_bytes <= 4
    assert not plan.details["complete"] and plan.details["rounds"] >= 2
    assert searches and any(after < before for before, after in searches)
    assert all(after <= before for before, after in searches)
    incumbents = [cost for _, cost in plan.details["trajectory"]["incumbents"]]
    assert incumbents[0] == hint.cost and incumbents[-1] == plan.cost
    assert all(b < a for a, b in zip(incumbents, incumbents[1:]))
    assert closure_bound(costs, 4) <= plan.lower_bound <= table[4]
    # without the LNS (its threshold past the graph): the same bound
    monkeypatch.setattr(cpsat, "LNS_OPS", math.inf)
    before = cpsat.plan_cpsat(costs, 4, time_limit=WALL, effort=EFFORT, hint=hint)
    assert before.lower_bound == plan.lower_bound and before.cost >= table[4]
