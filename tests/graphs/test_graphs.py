"""Graph plans: the ground truth of docs/graph_model.md, an independent replay and an
independent exhaustive search, and errors."""
from __future__ import annotations

import heapq
import itertools

import pytest

import checkpoint_ad as ca
from checkpoint_ad import GraphAction, GraphCosts, GraphPlan, GraphStep, check_graph_plan, plan_graph
from checkpoint_ad.graphs.policies import names as graph_policy_names
from checkpoint_ad.graphs.floors import retention_bound
from graph_families import GROUND_TRUTH, random_dag

COMPUTE, FREE, BACKWARD = GraphAction.COMPUTE, GraphAction.FREE, GraphAction.BACKWARD


def simulate(costs: GraphCosts, steps: list[GraphStep]) -> tuple[int, float, int]:
    """An independent replay: live bytes recounted from the resident and cotangent sets at
    every moment; returns (evaluations, cost, peak)."""
    count = len(costs.parents)
    is_op = [bool(p) for p in costs.parents]
    resident: set[int] = set()
    cotangents: set[int] = set()
    done: list[int] = []
    evaluations, total, peak = 0, 0.0, 0

    def live(extra: int = 0) -> int:
        return sum(costs.sizes[i] for i in resident) + sum(costs.sizes[i] for i in cotangents) + extra

    for action, i in steps:
        if action is COMPUTE:
            assert is_op[i] and i not in resident
            assert all(p in resident for p in costs.parents[i] if is_op[p])
            peak = max(peak, live(costs.sizes[i]))
            resident.add(i)
            evaluations += 1
            total += costs.costs[i]
        elif action is FREE:
            resident.remove(i)
        else:
            expected = [j for j in reversed(range(count)) if is_op[j] and costs.has_cotangent[j]]
            assert expected[len(done)] == i
            needed = [r for r in costs.residuals[i] if is_op[r]] + ([i] if i == count - 1 else [])
            assert all(r in resident for r in needed)
            if i == count - 1:
                cotangents.add(i)
            fresh = {p for p in costs.parents[i] if is_op[p] and costs.has_cotangent[p]
                     and costs.differentiable[i] and p not in cotangents and p not in done}
            peak = max(peak, live(sum(costs.sizes[p] for p in fresh)))
            cotangents |= fresh
            cotangents.discard(i)
            done.append(i)
    assert not resident and len(done) == len(costs.backward_order)
    return evaluations, total, peak


def brute_force(costs: GraphCosts, budget: int) -> float | None:
    """Least cost over every plan (any compute, any free, at any moment), by Dijkstra over
    (resident set, backward steps taken); None when no plan fits."""
    order = costs.backward_order
    ops = [i for i, p in enumerate(costs.parents) if p]

    def cotangent_bytes(k: int) -> int:
        alive: set[int] = set()
        for b in order[:k]:
            alive.discard(b)
            alive |= set(costs.new_cotangents[b])
        return sum(costs.sizes[p] for p in alive)

    start = (frozenset(), 0)
    best = {start: 0.0}
    tie = itertools.count()
    frontier = [(0.0, next(tie), start)]
    while frontier:
        cost, _, (resident, k) = heapq.heappop(frontier)
        if cost > best[(resident, k)]:
            continue
        if k == len(order) and not resident:
            return cost
        base = sum(costs.sizes[i] for i in resident) + cotangent_bytes(k)
        moves = []
        for i in ops:
            if i not in resident and all(p in resident for p in costs.op_parents[i]):
                if base + costs.sizes[i] <= budget:
                    moves.append((resident | {i}, k, costs.costs[i]))
        for i in resident:
            moves.append((resident - {i}, k, 0.0))
        if k < len(order):
            b = order[k]
            seed = costs.sizes[b] if b == costs.output else 0
            fresh = sum(costs.sizes[p] for p in costs.new_cotangents[b])
            if set(costs.op_residuals[b]) <= resident and base + seed + fresh <= budget:
                moves.append((resident, k + 1, 0.0))
        for new_resident, new_k, step_cost in moves:
            state = (frozenset(new_resident), new_k)
            if cost + step_cost < best.get(state, float("inf")):
                best[state] = cost + step_cost
                heapq.heappush(frontier, (cost + step_cost, next(tie), state))
    return None


@pytest.mark.parametrize("name", GROUND_TRUTH)
def test_ground_truth_of_the_fixed_policies(name: str) -> None:
    costs, store_all, recompute_all, _ = GROUND_TRUTH[name]
    for policy, expected in (("store_all", store_all), ("recompute_all", recompute_all)):
        plan = plan_graph(policy, costs)
        check_graph_plan(costs, plan)
        assert (plan.forward_evals, plan.peak_bytes) == expected
        assert simulate(costs, list(plan.steps)) == (plan.forward_evals, plan.cost, plan.peak_bytes)


@pytest.mark.parametrize("name", GROUND_TRUTH)
def test_ground_truth_of_optimal_at_every_budget(name: str) -> None:
    costs, _, _, least = GROUND_TRUTH[name]
    for budget, cost in least.items():
        plan = plan_graph("optimal", costs, budget_bytes=budget)
        assert (plan.forward_evals, plan.cost) == (cost, cost)
        assert plan.peak_bytes <= budget and plan.status == "optimal"
        assert simulate(costs, list(plan.steps))[2] == plan.peak_bytes
    minimum = min(least)
    with pytest.raises(ca.BudgetError, match=f"minimum of {minimum} bytes"):
        plan_graph("optimal", costs, budget_bytes=minimum - 1)


@pytest.mark.parametrize("seed", range(12))
def test_optimal_equals_an_independent_exhaustive_search(seed: int) -> None:
    costs = random_dag(4 + seed % 3, seed)
    peak = plan_graph("store_all", costs).peak_bytes
    for budget in range(1, peak + 2):
        want = brute_force(costs, budget)
        if want is None:
            with pytest.raises(ca.BudgetError):
                plan_graph("optimal", costs, budget_bytes=budget)
            continue
        plan = plan_graph("optimal", costs, budget_bytes=budget)
        assert plan.cost == want and plan.peak_bytes <= budget


@pytest.mark.parametrize("seed", range(20))
def test_every_policy_replays_to_the_numbers_it_reports(seed: int) -> None:
    costs = random_dag(5 + seed % 8, 100 + seed)
    plans = [plan_graph("store_all", costs), plan_graph("recompute_all", costs),
             plan_graph("save_ops", costs, ops=("op",)),
             plan_graph("optimal", costs, budget_bytes=plan_graph("store_all", costs).peak_bytes)]
    for plan in plans:
        assert simulate(costs, list(plan.steps)) == (plan.forward_evals, plan.cost,
                                                     plan.peak_bytes)
    assert plans[3].cost == costs.total_cost  # store_all's budget allows computing once


def test_mutated_plans_are_rejected() -> None:
    costs = GROUND_TRUTH["resnet(3)"][0]
    plan = plan_graph("optimal", costs, budget_bytes=6)
    for position in range(len(plan.steps)):
        dropped = plan.steps[:position] + plan.steps[position + 1:]
        try:
            counted = ca.graphs.plans.replay(costs, dropped)
        except ca.PlanError:
            continue
        # a step whose removal is still legal can only be a free made redundant: never cheaper
        assert counted.cost == plan.cost
    with pytest.raises(ca.PlanError, match="reports"):
        check_graph_plan(costs, GraphPlan(plan.policy, plan.params, plan.steps,
                                          plan.forward_evals - 1, plan.cost, plan.peak_bytes))
    with pytest.raises(ca.PlanError, match="input"):
        ca.graphs.plans.replay(costs, [GraphStep(COMPUTE, 0)])
    with pytest.raises(ca.PlanError, match="next backward step"):
        ca.graphs.plans.replay(costs, [GraphStep(BACKWARD, 1)])


def test_unknown_graph_policy_lists_the_known_ones() -> None:
    costs = GROUND_TRUTH["resnet(3)"][0]
    with pytest.raises(ca.UnknownNameError, match="known graph policies: store_all"):
        plan_graph("rewind", costs)
    assert {"store_all", "recompute_all", "save_ops", "optimal"} <= set(graph_policy_names())


@pytest.mark.parametrize("budget", ["64MiB", 1.5, -1, True])
def test_budgets_of_the_wrong_type_are_refused(budget: object) -> None:
    with pytest.raises(ca.PolicyError, match="budget_bytes must be a whole number"):
        plan_graph("optimal", GROUND_TRUTH["resnet(3)"][0], budget_bytes=budget)


def test_a_graph_too_large_for_any_planner_names_the_limits() -> None:
    costs = random_dag(40, 3)  # too many states for exact search, no cut for the blocks
    with pytest.raises(ca.BudgetError, match="exact search handles graphs up to about"):
        plan_graph("optimal", costs, budget_bytes=plan_graph("recompute_all", costs).peak_bytes,
                   max_states=2000)


def test_save_ops_refuses_unknown_op_names() -> None:
    with pytest.raises(ca.PolicyError, match="unknown op 'matmull'"):
        plan_graph("save_ops", GROUND_TRUTH["tanh_mlp(3)"][0], ops=("matmull",))


@pytest.mark.parametrize("parents, message", [
    ([(), (1,)], "earlier nodes"),
    ([(), ()], "an op as its last node"),
    ([(), (0,), (0,)], "no path to the output"),
])
def test_malformed_graphs_are_refused(parents: list, message: str) -> None:
    with pytest.raises(ca.PlanError, match=message):
        GraphCosts(parents, [1] * len(parents))


def test_explain_accounts_for_every_value() -> None:
    costs = GROUND_TRUTH["fig69_chain(6)"][0]
    plan = plan_graph("optimal", costs, budget_bytes=4)
    explanation = plan.explain(costs)
    assert sum(v.computed for v in explanation.values) == plan.forward_evals == 12
    by_node = {v.node: v for v in explanation.values}
    assert by_node[1].read_by == (2,) and by_node[7].read_by == (7,)  # x1 read by backward(x2)
    assert "why each value was kept" in str(explanation)
    assert any(v.verdict == "recomputed" for v in explanation.values)


def test_hierarchical_plans_are_valid_and_never_below_the_exact_optimum() -> None:
    from checkpoint_ad.graphs.policies.hierarchical import plan_hierarchical
    from graph_families import fig69_chain, resnet
    for costs in (fig69_chain(6), resnet(3)):
        store_all = plan_graph("store_all", costs)
        for budget in range(5, store_all.peak_bytes + 1):
            exact = plan_graph("optimal", costs, budget_bytes=budget)
            try:
                plan = plan_hierarchical(costs, budget)
            except ca.BudgetError:
                continue
            assert simulate(costs, list(plan.steps)) == (plan.forward_evals, plan.cost,
                                                         plan.peak_bytes)
            assert plan.peak_bytes <= budget and plan.cost >= exact.cost
            assert plan.method == "hierarchical" and plan.lower_bound == costs.total_cost
        assert plan_hierarchical(costs, store_all.peak_bytes).cost == store_all.cost


@pytest.mark.parametrize("fraction", [0.3, 0.5, 0.7])
def test_optimal_past_exact_search_is_never_worse_than_dtr_or_chen(fraction: float) -> None:
    from graph_families import resnet
    costs = resnet(40)
    budget = int(plan_graph("store_all", costs).peak_bytes * fraction)
    plan = plan_graph("optimal", costs, budget_bytes=budget, max_states=500, time_limit=3)
    assert plan.method in ("hierarchical", "dtr", "dtr:next_use", "chen", "milp", "cpsat")
    assert simulate(costs, list(plan.steps))[2] == plan.peak_bytes <= budget
    for other, params in (("dtr", {}), ("dtr", {"heuristic": "next_use"}), ("chen", {})):
        try:
            assert plan.cost <= plan_graph(other, costs, budget_bytes=budget, **params).cost
        except ca.BudgetError:
            pass
    # the bound: the retention bound (graphs/floors.py), or CP-SAT's where its model was
    # complete; "optimal" exactly when it meets the cost
    assert costs.total_cost < retention_bound(costs, budget) <= plan.lower_bound <= plan.cost
    assert plan.gap == plan.cost / plan.lower_bound - 1
    assert (plan.status == "optimal") == (plan.gap == 0)
