"""The window bound (checkpoint_ad.graphs.windows): never above the exhaustive optimum (the
random DAGs of test_graph_cpsat check it at every budget too; here every coarse grouping
solved to its end as well), and tight where the closure bound is not, because it pays the
recomputation of every window between backward steps."""
from __future__ import annotations

import math

import pytest

import checkpoint_ad as ca
from checkpoint_ad import plan_graph
from checkpoint_ad.graphs import windows
from checkpoint_ad.graphs.floors import closure_bound
from checkpoint_ad.graphs.policies.cpsat import plan_cpsat
from checkpoint_ad.graphs.policies.optimal import minimum_budget
from checkpoint_ad.graphs.windows import grouped_boundaries, grouped_window_bound, window_bound
from graph_families import GROUND_TRUTH, random_dag


def test_never_above_the_least_cost_on_the_table() -> None:
    for costs, _, _, table in GROUND_TRUTH.values():
        for budget, least in table.items():
            assert costs.total_cost <= window_bound(costs, budget) <= least


def test_it_meets_the_least_cost_where_the_closure_bound_does_not() -> None:
    """At the tightest budgets the chain, the MLP and the U-Net recompute in many windows:
    the closure bound, one step at a time, stays below the least cost; the window bound
    meets it (on the chain at 3 units: 22, where the closure bound gives 12)."""
    for name, budget in (("fig69_chain(6)", 3), ("fig69_chain(6)", 4), ("tanh_mlp(3)", 3),
                         ("unet(3)", 7), ("unet(3)", 8)):
        costs, _, _, table = GROUND_TRUTH[name]
        assert closure_bound(costs, budget) < window_bound(costs, budget) == table[budget]


def test_no_bound_beyond_every_op_once_without_a_budget_or_time() -> None:
    costs, _, _, table = GROUND_TRUTH["fig69_chain(6)"]
    assert window_bound(costs, math.inf) == costs.total_cost
    assert window_bound(costs, 3, deadline=0.0) == costs.total_cost


def test_cpsat_proves_the_tightest_chain_budget_with_it() -> None:
    """The hint (recompute_all, 22 evaluations) is the least cost at 3 units: the window
    bound proves it before CP-SAT runs."""
    costs, _, _, table = GROUND_TRUTH["fig69_chain(6)"]
    plan = plan_cpsat(costs, 3, time_limit=60.0, effort=0.2,
                      hint=ca.plan_graph("recompute_all", costs))
    assert (plan.cost, plan.status, plan.lower_bound) == (table[3], "optimal", table[3])
    assert plan.details["rounds"] == 0


def every_grouping(costs: ca.GraphCosts) -> list[list[int]]:
    """The coarse windows' boundaries of 2 groups up to one group per step, with and without
    a middle step added."""
    steps = len(costs.backward_order)
    return [grouped_boundaries(steps, groups, pressed) for groups in range(2, steps)
            for pressed in (None, steps // 2)]


def test_every_coarse_grouping_solved_to_the_end_stays_below_the_least_cost() -> None:
    """Each 0-1 program of coarse windows, solved to its optimum (not just its root node),
    bounds every plan: it is never above the exhaustive optimum on the table."""
    for costs, _, _, table in GROUND_TRUTH.values():
        for budget, least in table.items():
            for bounds in every_grouping(costs):
                assert costs.total_cost <= grouped_window_bound(costs, budget, bounds) <= least


@pytest.mark.parametrize("seed", range(6))
def test_coarse_groupings_on_random_dags_never_exceed_the_exhaustive_optimum(seed: int) -> None:
    costs = random_dag(5 + seed % 4, 900 + seed)
    peak = plan_graph("store_all", costs).peak_bytes
    for budget in range(minimum_budget(costs), peak + 1):
        least = plan_graph("optimal", costs, budget_bytes=budget).cost
        for bounds in every_grouping(costs):
            assert grouped_window_bound(costs, budget, bounds) <= least


def test_the_coarse_windows_alone_meet_the_least_cost_where_the_closure_bound_does_not(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With the fine windows switched off (as past WINDOW_OPS_LIMIT ops), the coarse ones
    still meet the least cost on the chain at 3 units (22; closure bound 12) and the U-Net at
    7 (16; closure bound 14); two groups alone give less on the chain."""
    monkeypatch.setattr(windows, "WINDOW_OPS_LIMIT", 0)
    for name, budget in (("fig69_chain(6)", 3), ("unet(3)", 7)):
        costs, _, _, table = GROUND_TRUTH[name]
        assert closure_bound(costs, budget) < window_bound(costs, budget) == table[budget]
    costs = GROUND_TRUTH["fig69_chain(6)"][0]
    assert grouped_window_bound(costs, 3, grouped_boundaries(7, 2)) < 22


def test_the_scan_stops_once_the_bound_is_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    """``enough`` (a plan's cost) stops the coarse windows once met: on the chain at 3 units
    with the fine windows off, asking for 12 (the closure bound) solves fewer groupings."""
    monkeypatch.setattr(windows, "WINDOW_OPS_LIMIT", 0)
    costs = GROUND_TRUTH["fig69_chain(6)"][0]
    solved: list[list[int]] = []
    kept = windows._solved
    monkeypatch.setattr(windows, "_solved", lambda c, b, bounds, *rest: (
        solved.append(bounds), kept(c, b, bounds, *rest))[1])
    assert window_bound(costs, 3, enough=12) >= 12
    few = len(solved)
    solved.clear()
    assert window_bound(costs, 3) == 22
    assert 1 <= few < len(solved)
