"""Offload to host memory (docs/offload_model.md): the ground-truth table recomputed, exact search
against an independent exhaustive search over every action, the replay's rules, and the
properties any planner must keep (no bandwidth changes nothing; more bandwidth or budget never
costs time)."""
from __future__ import annotations

import heapq
import itertools
import json
import math
import re
from pathlib import Path

import pytest

import checkpoint_ad as ca
from checkpoint_ad import GraphAction, GraphCosts, GraphStep, check_graph_plan, plan_graph
from checkpoint_ad.graphs.replay import replay
from checkpoint_ad.graphs.policies.optimal import minimum_budget
from graph_families import fig69_chain, random_dag, resnet, tanh_mlp, unet

DOC = Path(__file__).resolve().parents[2] / "docs" / "offload_model.md"
FAMILIES = {"fig69_chain(6)": fig69_chain(6), "tanh_mlp(3)": tanh_mlp(3),
            "resnet(2)": resnet(2), "unet(2)": unet(2)}
BANDWIDTHS = (0.5, 1, 2)
C, F, B = GraphAction.COMPUTE, GraphAction.FREE, GraphAction.BACKWARD
O, P, W = GraphAction.OFFLOAD, GraphAction.PREFETCH, GraphAction.WAIT


def table() -> list[tuple[str, int, list[float]]]:
    """The rows of the doc's ground-truth table: (graph, budget, [recompute only, times at
    each of BANDWIDTHS])."""
    rows = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] in FAMILIES:
            rows.append((cells[0], int(cells[1]), [float(c) for c in cells[2:]]))
    return rows


def test_the_table_covers_every_budget_of_the_four_families() -> None:
    rows = table()
    assert {name for name, _, _ in rows} == set(FAMILIES)
    for name, costs in FAMILIES.items():
        budgets = [b for n, b, _ in rows if n == name]
        assert budgets[-1] == plan_graph("store_all", costs).peak_bytes
        assert budgets == list(range(budgets[0], budgets[-1] + 1))


@pytest.mark.parametrize("name, budget, times", table(), ids=lambda v: str(v))
def test_exact_search_reproduces_the_ground_truth(name: str, budget: int,
                                                  times: list[float]) -> None:
    costs = FAMILIES[name]
    found = [plan_graph("optimal", costs, budget_bytes=budget).time]
    for bandwidth in BANDWIDTHS:
        plan = plan_graph("optimal", costs, budget_bytes=budget, bandwidth=bandwidth)
        assert plan.peak_bytes <= budget and plan.status == "optimal"
        assert replay(costs, plan.steps, bandwidth).time == plan.time
        found.append(plan.time)
    assert found == times


def exhaustive_time(costs: GraphCosts, budget: int, bandwidth: float) -> float | None:
    """The least time over every plan of the six actions, by Dijkstra over single actions
    (any compute, free, backward, offload, prefetch or wait at any moment, host copies kept
    forever); a step's time is paid when its compute, backward or wait ends it. None when no
    plan fits."""
    ops, order, sizes = list(costs.op_nodes), costs.backward_order, costs.sizes

    cotangents, alive = [], set()  # bytes of the cotangents alive before backward step k
    for b in order + (None,):
        cotangents.append(sum(sizes[p] for p in alive))
        if b is not None:
            alive.discard(b)
            alive |= set(costs.new_cotangents[b])

    # state: resident (incl. arriving), host copies, k, arriving, leaving
    start = (frozenset(), frozenset(), 0, frozenset(), frozenset())
    best, tie = {start: 0.0}, itertools.count()
    frontier = [(0.0, next(tie), start)]
    while frontier:
        time, _, state = heapq.heappop(frontier)
        if time > best[state]:
            continue
        resident, host, k, arriving, leaving = state
        if k == len(order) and not resident and not arriving:
            return time
        readable = resident - arriving
        moving = arriving | leaving
        held = sum(sizes[i] for i in resident) + cotangents[k]

        def ended(extra_time: float, new_resident: frozenset, new_k: int) -> tuple:
            out = sum(sizes[i] for i in leaving)
            into = sum(sizes[i] for i in arriving)
            step = max(extra_time, out / bandwidth, into / bandwidth)
            return (step, (new_resident - leaving, host | leaving, new_k, frozenset(),
                           frozenset()))

        moves = []
        for i in ops:
            if i not in resident and all(p in readable for p in costs.op_parents[i]):
                if held + sizes[i] <= budget:
                    moves.append(ended(costs.costs[i], resident | {i}, k))
            if i in resident and i not in moving:
                moves.append((0.0, (resident - {i}, host, k, arriving, leaving)))
                moves.append((0.0, (resident, host, k, arriving, leaving | {i})))
            if i in host and i not in resident and held + sizes[i] <= budget:
                moves.append((0.0, (resident | {i}, host, k, arriving | {i}, leaving)))
        if moving:
            moves.append(ended(0.0, resident, k))
        if k < len(order):
            b = order[k]
            seed = sizes[b] if b == costs.output else 0
            fresh = sum(sizes[p] for p in costs.new_cotangents[b])
            if set(costs.op_residuals[b]) <= readable and \
                    held + seed + fresh <= budget:
                moves.append(ended(costs.backward_costs[b], resident, k + 1))
        for step, new_state in moves:
            if time + step < best.get(new_state, math.inf):
                best[new_state] = time + step
                heapq.heappush(frontier, (time + step, next(tie), new_state))
    return None


@pytest.mark.parametrize("seed", range(6))
def test_exact_search_equals_an_independent_exhaustive_search(seed: int) -> None:
    costs = random_dag(3, 300 + seed)
    peak = plan_graph("store_all", costs).peak_bytes
    bandwidth = (0.5, 1, 3)[seed % 3]
    for budget in sorted({peak // 2, peak - 1, peak}):
        want = exhaustive_time(costs, budget, bandwidth)
        if want is None:
            with pytest.raises(ca.BudgetError):
                plan_graph("optimal", costs, budget_bytes=budget, bandwidth=bandwidth)
            continue
        plan = plan_graph("optimal", costs, budget_bytes=budget, bandwidth=bandwidth)
        assert plan.time == pytest.approx(want) and plan.peak_bytes <= budget


def test_exhaustive_search_agrees_on_a_ground_truth_entry() -> None:
    costs = fig69_chain(3)
    for budget, bandwidth in ((3, 0.5), (3, 2), (4, 1)):
        plan = plan_graph("optimal", costs, budget_bytes=budget, bandwidth=bandwidth)
        assert plan.time == exhaustive_time(costs, budget, bandwidth)


@pytest.mark.parametrize("bandwidth", [None, 0, 0.0])
def test_no_bandwidth_changes_nothing(bandwidth: object) -> None:
    costs = tanh_mlp(3)
    for budget in (3, 4, 6):
        alone = plan_graph("optimal", costs, budget_bytes=budget)
        plan = plan_graph("optimal", costs, budget_bytes=budget, bandwidth=bandwidth)
        assert plan.steps == alone.steps and plan.transfers == 0
        assert plan.time == alone.cost + costs.total_backward_cost == alone.time
    for policy in ("store_all", "recompute_all", "dtr", "chen"):
        params = {"budget_bytes": 4} if policy == "dtr" else {}
        assert plan_graph(policy, costs, bandwidth=bandwidth, **params).steps == \
            plan_graph(policy, costs, **params).steps


def test_more_bandwidth_or_budget_never_takes_longer() -> None:
    costs = resnet(2)
    times = {(budget, bandwidth): plan_graph("optimal", costs, budget_bytes=budget,
                                             bandwidth=bandwidth).time
             for budget in (4, 5, 6) for bandwidth in (0, 0.25, 0.5, 1, 2, 1e6)}
    for (budget, bandwidth), time in times.items():
        for (other_budget, other_bandwidth), other in times.items():
            if other_budget >= budget and other_bandwidth >= bandwidth:
                assert other <= time
    store_all = plan_graph("store_all", costs).time
    assert times[(5, 1e6)] == store_all  # a fast link reaches store_all's time
    assert store_all < times[(4, 1e6)] <= store_all + 1e-5  # but for stalls of 1e-6 each


def test_a_plan_with_transfers_round_trips_and_older_plans_still_read() -> None:
    costs = fig69_chain(6)
    plan = plan_graph("optimal", costs, budget_bytes=3, bandwidth=1)
    assert plan.transfers and plan.bandwidth == 1 and plan.host_peak_bytes > 0
    loaded = ca.GraphPlan.from_json(plan.to_json())
    assert loaded == plan and check_graph_plan(costs, loaded).time == plan.time
    older = plan_graph("optimal", costs, budget_bytes=4)
    data = json.loads(older.to_json())
    for name in ("time", "host_peak_bytes", "bandwidth"):
        del data[name]
    read = ca.GraphPlan.from_json(json.dumps(data))
    assert read.time is None and read.steps == older.steps
    assert check_graph_plan(costs, read).time == older.time


def test_explain_says_when_values_leave_and_come_back() -> None:
    costs = fig69_chain(6)
    plan = plan_graph("optimal", costs, budget_bytes=3, bandwidth=1)
    accounts = {v.node: v for v in plan.explain(costs).values}
    moved = [v for v in accounts.values() if v.prefetched_before]
    assert moved
    for value in moved:
        (left,), (back,) = value.offloaded_after, value.prefetched_before
        assert plan.steps[left].action in (C, B, W) and left < back
        assert value.verdict.startswith("offloaded")
        assert f"offloaded after step {left}, prefetched before step {back}" in \
            str(plan.explain(costs))
    assert "offloaded" not in str(plan_graph("store_all", costs).explain(costs))


def chain_plan(*steps: tuple[GraphAction, int]) -> list[GraphStep]:
    return [GraphStep(action, node) for action, node in steps]


# fig69_chain(2): x1 = sin(x0), x2 = sin(x1), loss v3 = sum(x2); backward v3, v2, v1
GOOD = [(C, 1), (O, 1), (C, 2), (C, 3), (F, 2), (B, 3), (F, 3), (P, 1), (W, 1), (B, 2),
        (F, 1), (B, 1)]


def test_the_replay_counts_a_hand_made_plan() -> None:
    costs = fig69_chain(2)
    counted = replay(costs, chain_plan(*GOOD), 0.5)
    # steps: c1 (1) | o1 + c2 (max(1, 2)) | c3 (1) | b3 (2) | p1 + wait (2) | b2 (2) | b1 (2)
    assert counted.time == 1 + 2 + 1 + 2 + 2 + 2 + 2
    assert (counted.cost, counted.host_peak_bytes) == (3, 1)
    assert counted.offloaded[1] == (2,) and counted.prefetched[1] == (9,)


@pytest.mark.parametrize("steps, bandwidth, message", [
    (GOOD[:8] + [(B, 2)], 1,
     "v1, whose prefetch is still in flight"),
    ([(C, 1), (O, 1), (F, 1)], 1, "v1's offload is still in flight"),
    (GOOD, None, "needs a bandwidth"),
    ([(C, 1), (W, 1)], 1, "v1 is not transferred in this step"),
    ([(C, 1), (P, 1)], 1, "already resident"),
    ([(C, 1), (C, 2), (P, 1)], 1, "already resident"),
    ([(C, 1), (F, 1), (P, 1)], 1, "v1 has no host copy"),
    ([(C, 1), (O, 1), (P, 1)], 1, "v1's offload is still in flight"),
    ([(C, 1), (O, 1)], 1, "the plan ends with the transfer of v1 in flight"),
])
def test_the_replay_refuses_broken_transfers(steps: list, bandwidth: float | None,
                                             message: str) -> None:
    with pytest.raises(ca.PlanError, match=re.escape(message)):
        replay(fig69_chain(2), chain_plan(*steps), bandwidth)


@pytest.mark.parametrize("bandwidth", [-1, math.nan, math.inf, "fast", True])
def test_bad_bandwidths_are_refused(bandwidth: object) -> None:
    with pytest.raises(ca.PolicyError, match="bandwidth"):
        plan_graph("optimal", fig69_chain(3), budget_bytes=3, bandwidth=bandwidth)


def test_planners_without_transfers_name_the_ones_that_have_them() -> None:
    with pytest.raises(ca.PolicyError, match="does not plan transfers.*policies that do: "
                                             "optimal, dtr, cpsat$"):
        plan_graph("chen", fig69_chain(3), budget_bytes=3, bandwidth=1)


def test_the_hierarchical_plan_says_transfers_were_not_planned() -> None:
    costs = unet(3)
    plan = plan_graph("optimal", costs, budget_bytes=8, bandwidth=1, method="hierarchical")
    assert plan.transfers == 0
    assert plan.details["transfers"] == "not planned past exact search"


def sin_chain(x):
    for _ in range(5):
        x = ca.sin(x)
    return ca.sum(x)


def mlp(x, w1, w2, w3):
    h = x
    for w in (w1, w2, w3):
        h = ca.tanh(h @ w)
    return ca.sum(h * h)


@pytest.mark.parametrize("function, budget_fraction", [(sin_chain, 0.0), (sin_chain, 0.5),
                                                       (mlp, 0.0)])
def test_the_executor_moves_values_and_gradients_stay_bit_identical(function,
                                                                    budget_fraction) -> None:
    import numpy as np
    rng = np.random.default_rng(1)
    args = ((rng.normal(size=(16, 8)),) if function is sin_chain else
            (rng.normal(size=(4, 8)),) + tuple(rng.normal(size=(8, 8)) for _ in range(3)))
    argnums = tuple(range(len(args)))
    reference = ca.backprop_graph(function, *args, argnums=argnums, policy="store_all")
    costs = reference.program.costs
    least = minimum_budget(costs)
    budget = least + int((reference.plan.peak_bytes - least) * budget_fraction)
    for bandwidth in (8192, 1e9):  # bytes per unit op: slower and faster than recomputing
        result = ca.backprop_graph(function, *args, argnums=argnums, policy="optimal",
                                   budget_bytes=budget, bandwidth=bandwidth)
        plan, stats = result.plan, result.stats
        assert plan.transfers > 0  # the plan moves values, so the run does too
        assert result.value == reference.value
        assert all(np.array_equal(a, b) for a, b in zip(result.grads, reference.grads))
        assert stats.peak_bytes == stats.predicted_peak_bytes == plan.peak_bytes <= budget
        assert stats.host_peak_bytes == stats.predicted_host_peak_bytes == \
            plan.host_peak_bytes > 0
        assert check_graph_plan(costs, plan).time == plan.time
