"""The host budget (docs/offload_model.md#the-host-budget): every plan's host peak within it
(replayed and measured by the Meter), 0 is the recompute-only plan, more never takes longer
under exact search, the checker refuses a plan above it, and a refusal names the least host
budget that works."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import checkpoint_ad as ca
from checkpoint_ad import check_graph_plan, plan_graph
from checkpoint_ad.errors import BudgetError, PlanError, PolicyError
from checkpoint_ad.graphs.policies.optimal import minimum_budget
from graph_families import fig69_chain, random_dag, resnet, tanh_mlp, unet

FAMILIES = {"fig69_chain(6)": (fig69_chain(6), (3, 4)), "tanh_mlp(3)": (tanh_mlp(3), (3, 4)),
            "resnet(2)": (resnet(2), (4,)), "unet(2)": (unet(2), (6,))}


@pytest.mark.parametrize("name", FAMILIES)
def test_exact_search_keeps_to_the_host_budget_and_more_never_takes_longer(name: str) -> None:
    costs, budgets = FAMILIES[name]
    for budget in budgets:
        free = plan_graph("optimal", costs, budget_bytes=budget, bandwidth=1)
        times = []
        for host in range(free.host_peak_bytes + 1):
            plan = plan_graph("optimal", costs, budget_bytes=budget, bandwidth=1,
                              host_budget_bytes=host)
            assert plan.host_peak_bytes <= host and plan.peak_bytes <= budget
            assert check_graph_plan(costs, plan).host_peak_bytes == plan.host_peak_bytes
            times.append(plan.time)
        assert times == sorted(times, reverse=True)  # more host memory: never longer
        assert times[-1] == free.time  # the unbounded plan's host peak: its time
        assert times[0] == plan_graph("optimal", costs, budget_bytes=budget).time


@pytest.mark.parametrize("policy", ["optimal", "dtr"])
def test_a_host_budget_of_zero_is_the_recompute_only_plan(policy: str) -> None:
    costs = fig69_chain(6)
    alone = plan_graph(policy, costs, budget_bytes=3)
    plan = plan_graph(policy, costs, budget_bytes=3, bandwidth=1, host_budget_bytes=0)
    assert plan.steps == alone.steps and plan.transfers == 0 and plan.time == alone.time
    assert plan.params["host_budget_bytes"] == 0
    assert plan_graph(policy, costs, budget_bytes=3, bandwidth=1).transfers > 0


@pytest.mark.parametrize("name", FAMILIES)
def test_dtr_keeps_to_the_host_budget(name: str) -> None:
    costs, budgets = FAMILIES[name]
    for budget in budgets:
        free = plan_graph("dtr", costs, budget_bytes=budget, bandwidth=2)
        for host in range(free.host_peak_bytes + 1):
            plan = plan_graph("dtr", costs, budget_bytes=budget, bandwidth=2,
                              host_budget_bytes=host)
            assert plan.host_peak_bytes <= host and plan.peak_bytes <= budget
            assert plan.time <= plan_graph("dtr", costs, budget_bytes=budget).time


def test_the_portfolio_past_exact_search_keeps_to_the_host_budget() -> None:
    costs = unet(3)
    for host in (0, 2, None):
        plan = plan_graph("optimal", costs, budget_bytes=8, bandwidth=2, max_states=10,
                          host_budget_bytes=host)
        assert plan.method != "exact" and plan.peak_bytes <= 8
        assert host is None or plan.host_peak_bytes <= host


def test_the_checker_refuses_a_plan_above_its_host_budget() -> None:
    costs = fig69_chain(6)
    plan = plan_graph("optimal", costs, budget_bytes=3, bandwidth=1)
    assert plan.host_peak_bytes == 4
    tight = replace(plan, params={**plan.params, "host_budget_bytes": 3})
    with pytest.raises(PlanError, match="holds 4 bytes in host memory at once, above its "
                                        "host_budget_bytes=3"):
        check_graph_plan(costs, tight)


def test_policies_without_transfers_accept_a_host_budget_and_bad_ones_are_refused() -> None:
    costs = tanh_mlp(3)
    assert plan_graph("chen", costs, host_budget_bytes=0).steps == \
        plan_graph("chen", costs).steps
    for policy in ("optimal", "dtr", "store_all"):
        with pytest.raises(PolicyError, match="host_budget_bytes must be a whole number of "
                                              "bytes >= 0"):
            plan_graph(policy, costs, bandwidth=1, host_budget_bytes=-1)


def test_a_refusal_names_the_least_host_budget_that_works() -> None:
    costs = random_dag(7, 3)  # transfers lower its least budget: 14 bytes without, 12 with
    assert plan_graph("optimal", costs, budget_bytes=12, bandwidth=1,
                      host_budget_bytes=2).host_peak_bytes <= 2
    with pytest.raises(BudgetError, match="no plan fits budget_bytes=12 within "
                       "host_budget_bytes=1; the least host budget that works at this "
                       "budget is 2 bytes"):
        plan_graph("optimal", costs, budget_bytes=12, bandwidth=1, host_budget_bytes=1)
    with pytest.raises(BudgetError, match="budget_bytes=12 is below the minimum of 14"):
        plan_graph("optimal", costs, budget_bytes=12)


def sin_chain(x):
    for _ in range(5):
        x = ca.sin(x)
    return ca.sum(x)


def test_the_meter_measures_the_host_peak_within_the_host_budget() -> None:
    x = np.random.default_rng(2).normal(size=(16, 8))
    reference = ca.backprop_graph(sin_chain, x, policy="store_all")
    costs = reference.program.costs
    budget = minimum_budget(costs)
    unbounded = ca.backprop_graph(sin_chain, x, policy="optimal", budget_bytes=budget,
                                  bandwidth=1e9)
    host = unbounded.plan.host_peak_bytes - 1
    result = ca.backprop_graph(sin_chain, x, policy="optimal", budget_bytes=budget,
                               bandwidth=1e9, host_budget_bytes=host)
    stats = result.stats
    assert 0 < stats.host_peak_bytes == stats.predicted_host_peak_bytes == \
        result.plan.host_peak_bytes <= host
    assert result.plan.time >= unbounded.plan.time
    assert all(np.array_equal(a, b) for a, b in zip(result.grads, reference.grads))
