"""The window bound (checkpoint_ad.graphs.windows): never above the exhaustive optimum (the
random DAGs of test_graph_cpsat check it at every budget too), and tight where the closure
bound is not, because it pays the recomputation of every window between backward steps."""
from __future__ import annotations

import math

import checkpoint_ad as ca
from checkpoint_ad.graphs.floors import closure_bound
from checkpoint_ad.graphs.policies.cpsat import plan_cpsat
from checkpoint_ad.graphs.windows import window_bound
from graph_families import GROUND_TRUTH


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
