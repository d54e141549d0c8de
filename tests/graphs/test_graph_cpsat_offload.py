"""``cpsat`` with a bandwidth (docs/offload_model.md, "CP-SAT with transfers"): its plans pass
the checker and replay to their reported time and peaks, within the device and host budgets;
it reaches the least time of the ground-truth table where its effort allows; no bandwidth
changes nothing; ``optimal`` past exact search uses it."""
from __future__ import annotations

import pytest

import checkpoint_ad as ca
from checkpoint_ad import check_graph_plan, plan_graph
from checkpoint_ad.graphs.replay import replay
from graph_families import fig69_chain, random_dag, resnet, tanh_mlp, unet

FAST = {"effort": 0.3, "workers": 1, "time_limit": 60}
QUICK = {**FAST, "effort": 0.05}  # where only validity is asserted
FAMILIES = {"fig69_chain(6)": fig69_chain(6), "tanh_mlp(3)": tanh_mlp(3),
            "resnet(2)": resnet(2), "unet(2)": unet(2)}


def checked(costs: ca.GraphCosts, plan: ca.GraphPlan, budget: int, bandwidth: float,
            host_budget: int | None = None) -> None:
    """The plan passes the checker, replays to its numbers and fits its budgets."""
    check_graph_plan(costs, plan)
    counted = replay(costs, plan.steps, bandwidth)
    assert (counted.time, counted.peak_bytes, counted.host_peak_bytes) == \
        (plan.time, plan.peak_bytes, plan.host_peak_bytes)
    assert plan.peak_bytes <= budget
    if host_budget is not None:
        assert plan.host_peak_bytes <= host_budget


# entries of the doc's ground-truth table where dtr's hint is slower than the least time:
# CP-SAT must find the rest (the other entries: the hint is already optimal)
@pytest.mark.parametrize("name, budget, bandwidth", [
    ("fig69_chain(6)", 4, 1), ("tanh_mlp(3)", 3, 1), ("resnet(2)", 4, 2), ("unet(2)", 6, 1)])
def test_cpsat_reaches_the_least_time_of_the_ground_truth(name: str, budget: int,
                                                          bandwidth: float) -> None:
    costs = FAMILIES[name]
    least = plan_graph("optimal", costs, budget_bytes=budget, bandwidth=bandwidth)
    plan = plan_graph("cpsat", costs, budget_bytes=budget, bandwidth=bandwidth, **FAST)
    checked(costs, plan, budget, bandwidth)
    assert plan.details["hint_time"] > least.time  # so the solver, not the hint, found it
    assert plan.time == least.time and plan.method == "cpsat"


@pytest.mark.parametrize("seed", range(3))
def test_cpsat_on_random_graphs_is_never_below_exact_search_nor_above_its_hint(
        seed: int) -> None:
    costs = random_dag(5, 400 + seed)
    peak = plan_graph("store_all", costs).peak_bytes
    bandwidth = (0.5, 1, 3)[seed]
    for budget in ((2 * peak) // 3,):
        try:
            least = plan_graph("optimal", costs, budget_bytes=budget, bandwidth=bandwidth)
        except ca.BudgetError:
            continue
        plan = plan_graph("cpsat", costs, budget_bytes=budget, bandwidth=bandwidth, **QUICK)
        checked(costs, plan, budget, bandwidth)
        assert least.time <= plan.time <= plan.details["hint_time"]
        assert plan.params["bandwidth"] == bandwidth


def test_a_host_budget_bounds_cpsats_host_peak() -> None:
    costs = fig69_chain(6)
    plan = plan_graph("cpsat", costs, budget_bytes=3, bandwidth=1, host_budget_bytes=1,
                      **FAST)
    checked(costs, plan, 3, 1, 1)
    assert plan.transfers and plan.params["host_budget_bytes"] == 1
    least = plan_graph("optimal", costs, budget_bytes=3, bandwidth=1, host_budget_bytes=1)
    assert least.time <= plan.time < plan.details["hint_time"]
    assert plan_graph("cpsat", costs, budget_bytes=3, bandwidth=1, host_budget_bytes=0,
                      **QUICK).transfers == 0


@pytest.mark.parametrize("bandwidth", [None, 0, 0.0])
def test_no_bandwidth_gives_cpsats_recompute_only_plan(bandwidth: object) -> None:
    costs = tanh_mlp(3)
    alone = plan_graph("cpsat", costs, budget_bytes=4, **FAST)
    plan = plan_graph("cpsat", costs, budget_bytes=4, bandwidth=bandwidth, **FAST)
    assert plan.steps == alone.steps and plan.transfers == 0 and plan.time == alone.time
    assert "bandwidth" not in plan.params


def test_cpsat_plans_transfers_and_says_so() -> None:
    with pytest.raises(ca.PolicyError, match="policies that do: optimal, dtr, cpsat$"):
        plan_graph("chen", tanh_mlp(3), bandwidth=1)
    plan = plan_graph("cpsat", fig69_chain(6), budget_bytes=8, bandwidth=1, **FAST)
    assert plan.method == "store_all" and plan.status == "optimal"


def test_optimal_past_exact_search_tries_cpsat_with_transfers() -> None:
    costs = resnet(2)
    plan = plan_graph("optimal", costs, budget_bytes=4, bandwidth=1, max_states=1,
                      time_limit=4)
    checked(costs, plan, 4, 1)
    assert "cpsat:transfers" in plan.details["tried"]
    assert plan.time == min(plan.details["tried"].values())
