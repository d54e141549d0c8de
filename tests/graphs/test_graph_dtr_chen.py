"""Tests of the graph policies ``dtr`` (Dynamic Tensor Rematerialization) and ``chen``
(segment checkpointing): every plan replays and fits its budget, is never cheaper than the
exact optimum (the ground-truth families of docs/graph_model.md and random small DAGs),
gives gradients bit-identical to store_all, the DTR ablations evict differently where they
should, and impossible budgets or contradictory parameters raise one clear error."""
from __future__ import annotations

import random

import numpy as np
import pytest

import checkpoint_ad as ca
from checkpoint_ad.errors import BudgetError, PolicyError
from checkpoint_ad.graphs.costs import GraphCosts
from checkpoint_ad.graphs.plans import GraphAction, check_graph_plan
from checkpoint_ad.graphs.policies import plan_graph
from checkpoint_ad.graphs.policies.chen import candidate_checkpoints
from checkpoint_ad.graphs.policies.dtr import HEURISTICS, THRASH_FACTOR
from checkpoint_ad.graphs.policies.optimal import minimum_budget, plan_optimal


# --- the ground-truth families (unit sizes and costs) ---------------------------------------

class _Builder:
    def __init__(self, inputs: int) -> None:
        self.parents: list[tuple[int, ...]] = [()] * inputs
        self.residuals: list[tuple[int, ...]] = [()] * inputs

    def op(self, parents: tuple[int, ...], residuals: tuple[int | str, ...]) -> int:
        self.parents.append(parents)
        node = len(self.parents) - 1
        self.residuals.append(tuple(node if r == "self" else r for r in residuals))
        return node

    def costs(self) -> GraphCosts:
        self.op((len(self.parents) - 1,), ())  # loss = sum(last), saves nothing
        return GraphCosts(self.parents, [1 if p else 0 for p in self.parents],
                          residuals=self.residuals)


def fig69_chain(n: int) -> GraphCosts:
    g, x = _Builder(1), 0
    for _ in range(n):
        x = g.op((x,), (x,))  # sin saves its input
    return g.costs()


def tanh_mlp(n: int) -> GraphCosts:
    g, h = _Builder(n + 1), 0
    for layer in range(1, n + 1):
        a = g.op((h, layer), (h, layer))  # matmul saves its inputs
        h = g.op((a,), ("self",))  # tanh saves its output
    return g.costs()


def resnet(k: int) -> GraphCosts:
    g, h = _Builder(1), 0
    for _ in range(k):
        a = g.op((h,), (h,))
        b = g.op((a,), (a,))
        h = g.op((b, h), ())  # add saves nothing
    return g.costs()


def unet(d: int) -> GraphCosts:
    g = _Builder(1)
    encoder = [0]
    for _ in range(d):
        encoder.append(g.op((encoder[-1],), (encoder[-1],)))
    h = encoder[d]
    for j in range(d, 0, -1):
        s = g.op((h,), (h,))
        h = g.op((s, encoder[j]), (s, encoder[j]))  # multiply saves its inputs
    return g.costs()


# least cost at each feasible budget (docs/graph_model.md), store_all (evals, peak)
FAMILIES = {
    "fig69_chain(6)": (fig69_chain(6), (7, 8), {3: 22, 4: 12, 5: 10, 6: 9, 7: 8, 8: 7}),
    "tanh_mlp(3)": (tanh_mlp(3), (7, 6), {3: 19, 4: 11, 5: 9, 6: 7}),
    "resnet(3)": (resnet(3), (10, 8), {5: 15, 6: 12, 7: 11, 8: 10}),
    "unet(3)": (unet(3), (10, 11), {7: 16, 8: 14, 9: 12, 10: 11, 11: 10}),
}


def random_graph(rng: random.Random, ops: int, fan_in: int = 2) -> GraphCosts:
    """A random DAG: 1-2 inputs, ops reading 1..fan_in earlier nodes (mostly recent ones) and
    saving a random subset of their parents and themselves, sizes and costs 1..3, one op in
    ten without a gradient (a comparison); the output reads every dangling op."""
    inputs = rng.randint(1, 2)
    parents: list[tuple[int, ...]] = [()] * inputs
    residuals: list[tuple[int, ...]] = [()] * inputs
    for i in range(inputs, inputs + ops - 1):
        window = range(max(0, i - 6), i) if rng.random() < 0.8 else range(i)
        chosen = tuple(sorted(rng.sample(window, rng.randint(1, min(fan_in, len(window))))))
        parents.append(chosen)
        residuals.append(tuple(r for r in chosen + (i,) if rng.random() < 0.6))
    consumed = {p for chosen in parents for p in chosen}
    parents.append(tuple(i for i in range(inputs, len(parents)) if i not in consumed))
    residuals.append(())
    sizes = [0] * inputs + [rng.randint(1, 3) for _ in range(ops)]
    costs = [0] * inputs + [rng.randint(1, 3) for _ in range(ops)]
    flags = [True] * inputs + [rng.random() > 0.1 for _ in range(ops - 1)] + [True]
    return GraphCosts(parents, sizes, costs=costs, residuals=residuals, differentiable=flags)


def checked(costs: GraphCosts, policy: str, **params: object):
    plan = plan_graph(policy, costs, **params)
    check_graph_plan(costs, plan)
    budget = params.get("budget_bytes")
    if budget is not None:
        assert plan.peak_bytes <= budget
    return plan


# --- dtr ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_dtr_without_a_budget_is_store_all(name: str) -> None:
    costs, store_all, _ = FAMILIES[name]
    for heuristic in HEURISTICS:
        plan = checked(costs, "dtr", heuristic=heuristic)
        assert (plan.forward_evals, plan.peak_bytes) == store_all
        assert plan.details["evictions"] == ()


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_dtr_fits_every_budget_of_the_families_and_is_never_below_optimal(name: str) -> None:
    costs, (ops, _), least = FAMILIES[name]
    for budget, optimum in least.items():
        plan = checked(costs, "dtr", budget_bytes=budget)
        assert plan.cost >= optimum
        assert plan.forward_evals > ops or budget == max(least)
        assert plan.method == "heuristic" and plan.status == "feasible"


def test_dtr_matches_the_optimum_on_the_chain_where_local_does_not() -> None:
    costs, _, least = FAMILIES["fig69_chain(6)"]
    assert [checked(costs, "dtr", budget_bytes=b).cost for b in least] == list(least.values())
    assert checked(costs, "dtr", budget_bytes=4, heuristic="local").cost == 13 > least[4]


def test_dtr_on_random_dags_fits_or_refuses_and_is_never_below_optimal() -> None:
    rng = random.Random(11)
    below_store_all = 0
    for _ in range(12):
        costs = random_graph(rng, rng.randint(5, 9))
        store_all = plan_graph("store_all", costs)
        for budget in range(minimum_budget(costs), store_all.peak_bytes + 1):
            optimum = plan_optimal(costs, budget_bytes=budget).cost
            for heuristic in HEURISTICS:
                try:
                    plan = checked(costs, "dtr", budget_bytes=budget, heuristic=heuristic)
                except BudgetError as error:
                    assert f"budget_bytes={budget}" in str(error)
                    assert budget < store_all.peak_bytes
                    continue
                assert plan.cost >= optimum
                below_store_all += budget < store_all.peak_bytes
    assert below_store_all > 200  # the check above is not vacuous (266 of 280 here)


def test_dtr_on_larger_random_dags_replays_and_fits() -> None:
    rng = random.Random(3)
    fitted = 0
    for _ in range(6):
        costs = random_graph(rng, 80, fan_in=3)
        peak = plan_graph("store_all", costs).peak_bytes
        for fraction in (0.3, 0.5, 0.8):
            budget = int(peak * fraction)
            for heuristic in HEURISTICS:
                try:
                    plan = checked(costs, "dtr", budget_bytes=budget, heuristic=heuristic)
                except BudgetError as error:
                    assert f"budget_bytes={budget}" in str(error)
                    continue
                fitted += 1
                assert plan.forward_evals > len(costs.op_nodes)
    assert fitted >= 40


def expensive_first_chain(sizes: list[int] | None = None) -> GraphCosts:
    """fig69_chain(6) whose first op costs 10 (or with the given sizes)."""
    base = fig69_chain(6)
    costs = [0, 10, 1, 1, 1, 1, 1, 1] if sizes is None else None
    return GraphCosts(base.parents, sizes or base.sizes, costs=costs, residuals=base.residuals)


def test_lru_evicts_the_stalest_value_where_dtr_keeps_the_expensive_one() -> None:
    costs = expensive_first_chain()
    lru = checked(costs, "dtr", budget_bytes=6, heuristic="lru")
    dtr = checked(costs, "dtr", budget_bytes=6)
    assert lru.details["evictions"][0] == 1  # v1 is the stalest when memory first runs out
    assert dtr.details["evictions"][0] == 2  # h_DTR keeps v1: recomputing it costs 10
    assert 1 not in dtr.details["evictions"]
    assert dtr.cost < lru.cost
    assert [s for s in dtr.steps if s.action is GraphAction.COMPUTE].count((GraphAction.COMPUTE, 1)) == 1


def test_size_evicts_the_largest_value_where_lru_evicts_the_stalest() -> None:
    costs = expensive_first_chain(sizes=[0, 1, 3, 1, 1, 1, 1, 1])
    lru = checked(costs, "dtr", budget_bytes=7, heuristic="lru")
    size = checked(costs, "dtr", budget_bytes=7, heuristic="size")
    assert lru.details["evictions"][0] == 1
    assert size.details["evictions"][0] == 2  # v2 holds 3 bytes
    assert size.cost < lru.cost


@pytest.mark.parametrize("units", [4, 8])
def test_next_use_plans_u_nets_cheaper_than_online_dtr(units: int) -> None:
    """Offline, the value read last is evicted first: on a U-Net, whose skip connections are
    read long after they are made, that beats DTR's guess from staleness at every budget where
    both run (measured: 5-20% fewer evaluations at 60-80% of store_all's peak)."""
    from checkpoint_ad.workloads.graph_models import build_graph
    built = build_graph("unet", {"n": units, "width": 8, "batch": 4})
    costs = ca.graph_costs(ca.trace(built.fn, *built.args))
    peak = plan_graph("store_all", costs).peak_bytes
    for fraction in (0.6, 0.7, 0.8):
        budget = int(peak * fraction)
        online = checked(costs, "dtr", budget_bytes=budget)
        offline = checked(costs, "dtr", budget_bytes=budget, heuristic="next_use")
        assert offline.cost < online.cost, (fraction, offline.cost, online.cost)


def test_dtr_refuses_a_budget_below_what_a_step_needs_at_once() -> None:
    with pytest.raises(BudgetError, match=r"budget_bytes=2 is too small: .* needs 3 bytes"):
        plan_graph("dtr", fig69_chain(6), budget_bytes=2)


def test_dtr_reports_thrashing() -> None:
    # at 3 bytes every backward step recomputes the chain from x0: about n^2 / 2 evaluations
    n = 150
    with pytest.raises(BudgetError, match=rf"budget_bytes=3 thrashes: more than "
                                          rf"{THRASH_FACTOR} evaluations per op"):
        plan_graph("dtr", fig69_chain(n), budget_bytes=3)
    assert checked(fig69_chain(n), "dtr", budget_bytes=8).forward_evals < THRASH_FACTOR * (n + 1)


@pytest.mark.parametrize(("params", "message"), [
    ({"heuristic": "fifo"}, "heuristic must be one of dtr, local, lru, size, next_use, got 'fifo'"),
    ({"budget_bytes": -1}, "budget_bytes must be a whole number of bytes >= 0, got -1"),
    ({"budget": 5}, "policy 'dtr' has no parameter budget"),
])
def test_dtr_bad_parameters(params: dict, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        plan_graph("dtr", fig69_chain(4), **params)


# --- chen -----------------------------------------------------------------------------------

def test_candidates_split_the_graph_into_blocks() -> None:
    assert candidate_checkpoints(fig69_chain(6)) == (1, 2, 3, 4, 5, 6)
    # resnet(3): a1 b1 h1 | a2 b2 h2 | ...: inside a block the skip edge h -> h' jumps over a, b
    # (b1 qualifies: what jumps over it is the input x0, which is pinned)
    assert candidate_checkpoints(resnet(3)) == (1, 2, 3, 6, 9)
    # unet(3): every encoder value is read by the decoder, so only the last op splits it
    assert candidate_checkpoints(unet(3)) == (1, 9)
    assert candidate_checkpoints(_two_branches()) == ()


def _two_branches() -> GraphCosts:
    """output = add(sin(x), cos(x)): no op splits it into blocks."""
    return GraphCosts([(), (0,), (0,), (1, 2)], [0, 1, 1, 1], residuals=[(), (0,), (0,), ()])


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_chen_segments_are_valid_and_never_below_optimal(name: str) -> None:
    costs, (ops, _), _ = FAMILIES[name]
    available = len(candidate_checkpoints(costs))
    for segments in range(1, available + 2):
        plan = checked(costs, "chen", segments=segments)
        assert len(plan.details["checkpoints"]) == segments - 1
        optimum = plan_optimal(costs, budget_bytes=plan.peak_bytes).cost
        assert plan.cost >= optimum
        # one forward pass, then at most one recomputation of each op
        assert ops <= plan.forward_evals <= 2 * ops


def test_chen_one_segment_is_a_forward_pass_then_store_all() -> None:
    costs = fig69_chain(6)
    plan = checked(costs, "chen", segments=1)
    assert plan.details["checkpoints"] == ()
    # forward (7), then recompute x1..x5 (the residuals of the backward steps of x2..x6)
    assert plan.forward_evals == 7 + 5
    assert plan.peak_bytes == plan_graph("store_all", costs).peak_bytes


def test_chen_more_segments_lower_the_peak_of_a_long_chain() -> None:
    costs = fig69_chain(64)
    peaks = [checked(costs, "chen", segments=k).peak_bytes for k in (1, 2, 8)]
    assert peaks[0] > peaks[1] > peaks[2]
    assert checked(costs, "chen").params == {"segments": 8}  # default: sqrt(65 ops)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_chen_budget_search_fits_and_is_the_cheapest_of_its_segmentations(name: str) -> None:
    costs, _, least = FAMILIES[name]
    available = len(candidate_checkpoints(costs))
    even = [checked(costs, "chen", segments=k) for k in range(1, available + 2)]
    for budget, optimum in least.items():
        try:
            plan = checked(costs, "chen", budget_bytes=budget)
        except BudgetError as error:
            assert f"budget_bytes={budget} is below the least peak of its plans" in str(error)
            assert all(p.peak_bytes > budget for p in even)
            continue
        assert plan.cost >= optimum
        assert all(plan.cost <= p.cost for p in even if p.peak_bytes <= budget)


def test_chen_on_random_dags_is_valid_and_never_below_optimal() -> None:
    rng = random.Random(5)
    for _ in range(12):
        costs = random_graph(rng, rng.randint(5, 9))
        for segments in range(1, len(candidate_checkpoints(costs)) + 2):
            plan = checked(costs, "chen", segments=segments)
            assert plan.cost >= plan_optimal(costs, budget_bytes=plan.peak_bytes).cost


def test_chen_budget_search_on_random_dags_fits_or_refuses() -> None:
    rng = random.Random(8)
    fitted = 0
    for _ in range(10):
        costs = random_graph(rng, rng.randint(5, 9))
        for budget in range(minimum_budget(costs), plan_graph("store_all", costs).peak_bytes + 3):
            try:
                plan = checked(costs, "chen", budget_bytes=budget)
            except BudgetError as error:
                assert "is below the least peak of its plans" in str(error)
                continue
            fitted += 1
            assert plan.cost >= plan_optimal(costs, budget_bytes=budget).cost
    assert fitted > 20


@pytest.mark.parametrize(("params", "error", "message"), [
    ({"segments": 2, "budget_bytes": 9}, PolicyError,
     "give segments or budget_bytes, not both"),
    ({"segments": 8}, PolicyError, "segments=8 needs 7 checkpoints, but this graph has only 6 "
                                   "candidates .* segments must be at most 7"),
    ({"segments": 0}, PolicyError, "segments must be a positive integer, got 0"),
    ({"budget_bytes": 3}, BudgetError, r"budget_bytes=3 is below the least peak of its plans "
                                       r"on this graph \(5 bytes"),
])
def test_chen_bad_parameters(params: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        plan_graph("chen", fig69_chain(6), **params)


def test_chen_without_articulation_points_says_so() -> None:
    with pytest.raises(PolicyError, match="segments=2 needs 1 checkpoint, but this graph has no "
                                          "articulation point .* only segments=1"):
        plan_graph("chen", _two_branches(), segments=2)
    assert checked(_two_branches(), "chen").details["checkpoints"] == ()


# --- gradients through backprop_graph ---------------------------------------------------------

def residual_mlp(x, w1, w2, w3):
    h = x
    for w in (w1, w2, w3):
        h = ca.add(h, ca.tanh(ca.matmul(h, w)))
    return ca.sum(ca.multiply(h, h))


@pytest.mark.parametrize("params", [
    {"policy": "dtr", "fraction": 0.625}, {"policy": "dtr", "fraction": 0.75, "heuristic": "lru"},
    {"policy": "dtr", "fraction": 0.75, "heuristic": "size"}, {"policy": "chen", "segments": 3},
    {"policy": "chen", "fraction": 0.75},
])
def test_gradients_equal_store_all_bit_for_bit(params: dict) -> None:
    rng = np.random.default_rng(0)
    args = [rng.standard_normal((4, 8))] + [rng.standard_normal((8, 8)) / 3 for _ in range(3)]
    argnums = (0, 1, 2, 3)
    reference = ca.backprop_graph(residual_mlp, *args, argnums=argnums)
    params = dict(params)
    fraction = params.pop("fraction", None)
    if fraction is not None:
        params["budget_bytes"] = int(reference.stats.peak_bytes * fraction)
    result = ca.backprop_graph(residual_mlp, *args, argnums=argnums, **params)
    assert result.value == reference.value
    for ours, theirs in zip(result.grads, reference.grads):
        assert np.array_equal(ours, theirs)
    assert result.stats.forward_evals > reference.stats.forward_evals  # it did recompute
    assert result.stats.peak_bytes == result.stats.predicted_peak_bytes == result.plan.peak_bytes
    if fraction is not None:
        assert result.stats.peak_bytes <= params["budget_bytes"]


def test_dtr_reaches_the_least_feasible_budget_of_the_residual_mlp() -> None:
    rng = np.random.default_rng(0)
    args = [rng.standard_normal((4, 8))] + [rng.standard_normal((8, 8)) / 3 for _ in range(3)]
    costs = ca.backprop_graph(residual_mlp, *args, argnums=(0, 1, 2, 3)).program.costs
    least = minimum_budget(costs)
    assert least < plan_graph("store_all", costs).peak_bytes
    assert checked(costs, "dtr", budget_bytes=least).peak_bytes == least
    with pytest.raises(BudgetError):
        plan_graph("dtr", costs, budget_bytes=least - 1)
