"""``dtr`` with a bandwidth (docs/offload_model.md, "dtr with transfers"): valid plans, never
slower than the recompute-only run, within the budget, the same plans without a bandwidth, and
gradients bit-identical when executed; ``optimal`` past exact search plans transfers with it."""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

import checkpoint_ad as ca
from checkpoint_ad import check_graph_plan, plan_graph
from checkpoint_ad.graphs.policies.dtr_offload import OffloadRun
from checkpoint_ad.graphs.policies.optimal import minimum_budget
from graph_families import fig69_chain, random_dag, resnet, tanh_mlp, unet
from test_offload import BANDWIDTHS, table
from test_offload import FAMILIES as TRUTH_FAMILIES

FAMILIES = {"fig69_chain(6)": fig69_chain(6), "tanh_mlp(3)": tanh_mlp(3),
            "resnet(3)": resnet(3), "unet(3)": unet(3), "fig69_chain(20)": fig69_chain(20)}


def feasible(costs: ca.GraphCosts, heuristic: str = "dtr"
             ) -> Iterator[tuple[int, ca.GraphPlan]]:
    """(budget, recompute-only dtr plan) at every budget up to store_all's peak where dtr
    finds one."""
    for budget in range(1, plan_graph("store_all", costs).peak_bytes + 1):
        try:
            yield budget, plan_graph("dtr", costs, budget_bytes=budget, heuristic=heuristic)
        except ca.BudgetError:
            continue


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("heuristic", ["dtr", "next_use"])
def test_plans_check_fit_and_are_never_slower(name: str, heuristic: str) -> None:
    costs, faster = FAMILIES[name], 0
    for budget, alone in feasible(costs, heuristic):
        for bandwidth in (0.25, 1, 2, 1e6):
            plan = plan_graph("dtr", costs, budget_bytes=budget, heuristic=heuristic,
                              bandwidth=bandwidth)
            assert check_graph_plan(costs, plan).time == plan.time
            assert plan.peak_bytes <= budget and plan.time <= alone.time
            assert plan.params["bandwidth"] == bandwidth
            if plan.transfers:
                assert plan.details["transfers"] == "planned" and plan.details["offloaded"]
                assert plan.bandwidth == bandwidth and plan.host_peak_bytes > 0
            faster += plan.time < alone.time
    assert faster  # the transfers do help somewhere on every family


@pytest.mark.parametrize("seed", range(6))
def test_random_graphs_give_valid_plans_never_slower(seed: int) -> None:
    costs = random_dag(8, 500 + seed)
    for budget, alone in feasible(costs):
        for bandwidth in (0.5, 3):
            plan = plan_graph("dtr", costs, budget_bytes=budget, bandwidth=bandwidth)
            check_graph_plan(costs, plan)
            assert plan.peak_bytes <= budget and plan.time <= alone.time


def test_a_chain_at_its_least_budget_reaches_the_exact_optimum() -> None:
    costs = fig69_chain(6)  # ground truth at budget 3: 26 at bandwidth 1, 23.5 at 2
    assert plan_graph("dtr", costs, budget_bytes=3).time == 36
    for bandwidth, least in ((1, 26), (2, 23.5)):
        plan = plan_graph("dtr", costs, budget_bytes=3, bandwidth=bandwidth)
        assert plan.time == least == plan_graph("optimal", costs, budget_bytes=3,
                                                bandwidth=bandwidth).time


def test_against_the_ground_truth_never_below_and_as_the_docs_count() -> None:
    rows, equal, worst = table(), 0, 0.0
    for name, budget, times in rows:
        for bandwidth, least in zip(BANDWIDTHS, times[1:]):
            time = plan_graph("dtr", TRUTH_FAMILIES[name], budget_bytes=budget,
                              bandwidth=bandwidth).time
            assert time >= least  # exact search's least time is a floor
            equal += time == least
            worst = max(worst, time / least - 1)
    assert (equal, len(rows) * len(BANDWIDTHS), round(worst, 2)) == (34, 48, 0.14)


def test_a_slow_link_keeps_the_recompute_only_plan() -> None:
    costs = unet(3)
    alone = plan_graph("dtr", costs, budget_bytes=8)
    plan = plan_graph("dtr", costs, budget_bytes=8, bandwidth=0.01)  # nothing hides
    assert plan.steps == alone.steps and plan.transfers == 0 and plan.time == alone.time
    assert plan.details["transfers"] == "none saved time" and plan.bandwidth is None


def test_where_the_run_with_transfers_is_slower_the_recompute_only_plan_is_kept() -> None:
    costs, budget, bandwidth = random_dag(8, 528), 19, 0.5
    run = OffloadRun(costs, budget, budget, "dtr", None, bandwidth=bandwidth)
    moving = ca.GraphPlan.build(costs, run.run(), "dtr", {}, bandwidth)
    alone = plan_graph("dtr", costs, budget_bytes=budget)
    assert moving.transfers and moving.time > alone.time  # offloading led DTR astray here
    plan = plan_graph("dtr", costs, budget_bytes=budget, bandwidth=bandwidth)
    assert plan.steps == alone.steps and plan.time == alone.time
    assert plan.details["transfers"] == "none saved time"


@pytest.mark.parametrize("bandwidth", [None, 0, 0.0])
def test_no_bandwidth_gives_todays_plan(bandwidth: object) -> None:
    costs = resnet(3)
    for heuristic in ("dtr", "lru"):
        alone = plan_graph("dtr", costs, budget_bytes=6, heuristic=heuristic)
        plan = plan_graph("dtr", costs, budget_bytes=6, heuristic=heuristic,
                          bandwidth=bandwidth)
        assert (plan.steps, plan.details, plan.params) == (alone.steps, alone.details,
                                                           alone.params)
        assert "transfers" not in plan.details


@pytest.mark.parametrize("bandwidth", [-1, float("nan"), float("inf"), "fast"])
def test_bad_bandwidths_are_refused(bandwidth: object) -> None:
    with pytest.raises(ca.PolicyError, match="policy 'dtr'.*bandwidth"):
        plan_graph("dtr", fig69_chain(3), budget_bytes=3, bandwidth=bandwidth)


def mlp(x, w1, w2, w3):
    h = x
    for w in (w1, w2, w3):
        h = ca.tanh(h @ w)
    return ca.sum(h * h)


def test_executed_plans_move_values_and_gradients_stay_bit_identical() -> None:
    rng = np.random.default_rng(1)
    args = (rng.normal(size=(4, 8)),) + tuple(rng.normal(size=(8, 8)) for _ in range(3))
    argnums = tuple(range(len(args)))
    reference = ca.backprop_graph(mlp, *args, argnums=argnums, policy="store_all")
    costs = reference.program.costs
    least = minimum_budget(costs)
    for budget in (least, (least + reference.plan.peak_bytes) // 2):
        alone = plan_graph("dtr", costs, budget_bytes=budget)
        result = ca.backprop_graph(mlp, *args, argnums=argnums, policy="dtr",
                                   budget_bytes=budget, bandwidth=8192)
        plan, stats = result.plan, result.stats
        assert plan.transfers > 0 and plan.time < alone.time
        assert result.value == reference.value
        assert all(np.array_equal(a, b) for a, b in zip(result.grads, reference.grads))
        assert stats.peak_bytes == stats.predicted_peak_bytes == plan.peak_bytes <= budget
        assert stats.host_peak_bytes == stats.predicted_host_peak_bytes == plan.host_peak_bytes


def test_optimal_past_exact_search_plans_transfers_with_dtr() -> None:
    costs = unet(3)
    alone = plan_graph("optimal", costs, budget_bytes=8, max_states=10, time_limit=5.0)
    plan = plan_graph("optimal", costs, budget_bytes=8, bandwidth=1, max_states=10,
                      time_limit=5.0)
    # dtr's plan with transfers, or CP-SAT with transfers improving on it
    assert plan.status == "feasible" and plan.method in ("dtr", "dtr:next_use", "cpsat")
    assert plan.transfers and plan.time <= plan.details["tried"]["dtr"]
    assert plan.time == min(plan.details["tried"].values()) < alone.time
    assert "transfers" not in plan.details and check_graph_plan(costs, plan).time == plan.time
    assert plan.peak_bytes <= 8 and plan.policy == "optimal"


@pytest.mark.parametrize("bandwidth", [1e-6, 1.0])
def test_past_exact_search_cpsat_improves_the_plan_without_transfers_which_competes_on_time(
        bandwidth: float) -> None:
    """With a bandwidth, CP-SAT still improves the cheapest plan without transfers: a slow
    link (no transfer pays) then gives the recompute-only time, never a slower plan."""
    costs = unet(3)
    plan = plan_graph("optimal", costs, budget_bytes=8, bandwidth=bandwidth, max_states=10,
                      time_limit=5.0)
    tried = plan.details["tried"]
    assert "cpsat" in tried and plan.time == min(tried.values())
    assert check_graph_plan(costs, plan).time == plan.time and plan.peak_bytes <= 8
    alone = plan_graph("optimal", costs, budget_bytes=8, max_states=10, time_limit=5.0)
    if bandwidth < 1e-3:
        assert plan.time <= alone.time
