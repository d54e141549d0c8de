"""A budget is a promise: for every policy that takes ``budget_bytes``, in both families and the
torch bridge, the Meter's peak (the whole activation peak) never exceeds it; under ``optimal``
a larger budget never costs more; a refusal names the least budget that works (chains: the
exact least budget of ``optimal``; graphs: a floor no plan of any planner goes below)."""
from __future__ import annotations

import random
import re

import numpy as np
import pytest

import checkpoint_ad as ca
from checkpoint_ad.chains.costs import ChainCosts
from checkpoint_ad.chains.replay import forward_cost, peak_bytes, predict_meter
from checkpoint_ad.chains.policies import make_plan
from checkpoint_ad.errors import BudgetError
from checkpoint_ad.graphs.floors import least_peak_floor
from checkpoint_ad.graphs.policies import exact
from graph_families import GROUND_TRUTH, random_dag

SEEDS = range(40)


def random_costs(seed: int) -> ChainCosts:
    """A chain whose sizes a real run could have: each held tape holds its output (and its
    input, when it keeps it) besides its private residuals."""
    rng = random.Random(seed)
    n = rng.randint(1, 12)
    states = tuple(rng.choice((8, 16, 64, 256)) for _ in range(n + 1))
    inputs = tuple(states[t] if rng.random() < 0.5 else 0 for t in range(n))
    tapes = tuple(states[t + 1] + inputs[t] + rng.choice((0, 8, 32)) for t in range(n))
    return ChainCosts(n, tuple(float(rng.randint(1, 9)) for _ in range(n)), states, tapes,
                      inputs, tuple(rng.random() < 0.5 for _ in range(n)),
                      returns_output=rng.random() < 0.3)


def budgets_between(low: int, high: int, count: int = 12) -> list[int]:
    return sorted({low, high, *np.linspace(low, high, count).astype(int).tolist()})


# -- chains: the DP's family of plans ----------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("tapes", [True, False])
def test_chain_optimal_keeps_within_the_whole_peak_and_never_costs_more_with_more(
        seed: int, tapes: bool) -> None:
    costs = random_costs(seed)
    least = ca.minimum_budget(costs, tapes=tapes)
    top = peak_bytes(make_plan("store_all", costs), costs) + 64
    spent = []
    for budget in budgets_between(least, top):
        plan = make_plan("optimal", costs, budget_bytes=budget, tapes=tapes)
        assert peak_bytes(plan, costs) == predict_meter(plan, costs).peak <= budget
        spent.append(forward_cost(plan, costs))
    assert spent == sorted(spent, reverse=True)  # non-increasing in the budget
    with pytest.raises(BudgetError, match=f"budget_bytes={least - 1} is below the minimum of "
                                          f"{least:,} bytes"):
        make_plan("optimal", costs, budget_bytes=least - 1, tapes=tapes)


@pytest.mark.parametrize("seed", SEEDS)
def test_chain_optimal_is_never_dearer_than_a_fixed_policy_that_fits(seed: int) -> None:
    costs = random_costs(seed)
    others = [make_plan("recompute_all", costs), make_plan("store_all", costs)]
    others += [make_plan(policy, costs, **{key: k}) for k in range(1, costs.n + 1)
               for policy, key in (("sqrt_n", "segments"), ("revolve", "slots"))]
    for other in others:
        budget = peak_bytes(other, costs)
        plan = make_plan("optimal", costs, budget_bytes=budget)
        assert forward_cost(plan, costs) <= forward_cost(other, costs)


def test_hand_made_sizes_that_no_run_could_have_are_refused_for_the_whole_peak() -> None:
    costs = ChainCosts(3, state_bytes=(8, 8, 8, 8), tape_bytes=(4, 8, 8))
    with pytest.raises(ca.PlanError, match="stage 1's tape_bytes 4 is below its state_bytes 8"):
        make_plan("optimal", costs, budget_bytes=100)
    assert make_plan("optimal", costs, store_budget_bytes=16).forward_evals >= 3


# -- chains: real runs, numpy and torch ----------------------------------------------------------

def dense_chain(n: int, widths: list[int], seed: int) -> tuple[ca.Chain, np.ndarray]:
    rng = np.random.default_rng(seed)
    stages = [ca.Stage(lambda x, w: ca.tanh(x @ w), rng.normal(size=(widths[t], widths[t + 1])))
              for t in range(n)]
    return ca.Chain(stages), rng.normal(size=(2, widths[0]))


@pytest.mark.parametrize("seed", range(6))
def test_numpy_chains_hold_the_budget_in_the_meter_with_the_same_gradients(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randint(2, 9)
    chain, x0 = dense_chain(n, [rng.choice((2, 8, 24)) for _ in range(n + 1)], seed)
    reference = ca.backprop(chain, x0, policy="store_all", seed=1, trace_memory=False)
    costs = ca.profile_chain(chain, x0, 1).costs()
    least = ca.minimum_budget(costs)
    evaluations = []
    for budget in budgets_between(least, reference.stats.peak_bytes, 5):
        run = ca.backprop(chain, x0, policy="optimal", budget_bytes=budget, seed=1,
                          trace_memory=False)
        assert run.stats.peak_bytes == run.stats.predicted_peak_bytes <= budget
        assert np.array_equal(run.grad_input, reference.grad_input)
        assert all(np.array_equal(a, b) for a, b in zip(run.grad_params, reference.grad_params))
        evaluations.append(forward_cost(run.plan, costs))
    assert evaluations == sorted(evaluations, reverse=True)


@pytest.mark.parametrize("seed", range(4))
def test_torch_stacks_hold_the_budget_in_the_meter(seed: int) -> None:
    torch = pytest.importorskip("torch")
    from checkpoint_ad.torch import CheckpointedSequential, profile
    torch.manual_seed(seed)
    widths = [random.Random(seed).choice((4, 16, 32)) for _ in range(7)]
    modules = [layer for a, b in zip(widths, widths[1:])
               for layer in (torch.nn.Linear(a, b).double(), torch.nn.Tanh())]
    x = torch.randn(3, widths[0], dtype=torch.float64)
    costs = profile(modules, x)
    least = ca.minimum_budget(costs)
    top = peak_bytes(make_plan("store_all", costs), costs)
    spent = []
    for budget in budgets_between(least, top, 4):
        model = CheckpointedSequential(modules, "optimal", costs="unit", budget_bytes=budget)
        model(x.clone().requires_grad_(True)).sum().backward()
        assert model.stats.peak_bytes == model.stats.predicted_peak_bytes <= budget
        spent.append(model.stats.forward_evals)
    assert spent == sorted(spent, reverse=True)


# -- graphs ----------------------------------------------------------------------------------------

GRAPH_POLICIES = [("optimal", {}), ("dtr", {}), ("dtr", {"heuristic": "next_use"}),
                  ("chen", {}), ("checkmate", {"time_limit": 20.0}),
                  ("checkmate_lp", {"time_limit": 20.0})]


def small_graphs() -> list[ca.GraphCosts]:
    return ([costs for costs, *_ in GROUND_TRUTH.values()]
            + [random_dag(8, seed) for seed in range(8)])


@pytest.mark.parametrize("index", range(12))
def test_graph_planners_keep_within_the_budget_and_refusals_name_a_floor(index: int) -> None:
    costs = small_graphs()[index]
    least = exact.search(costs, float("inf"), exact.DEFAULT_MAX_STATES, minimise_peak=True)[2]
    floor = least_peak_floor(costs)
    assert floor <= least
    top = ca.plan_graph("store_all", costs).peak_bytes
    for policy, params in GRAPH_POLICIES:
        spent = []
        for budget in budgets_between(int(least), top, 4):
            try:
                plan = ca.plan_graph(policy, costs, budget_bytes=budget, **params)
            except BudgetError as refusal:
                assert policy != "optimal"  # exact search: the least budget fits
                named = str(refusal).replace(f"budget_bytes={budget}", "")
                numbers = [int(n.replace(",", "")) for n in re.findall(r"\d[\d,]*", named)]
                assert any(number >= floor for number in numbers), refusal
                continue
            assert plan.peak_bytes <= budget
            spent.append(plan.cost)
        if policy == "optimal":
            assert spent == sorted(spent, reverse=True)


@pytest.mark.parametrize("index", range(12))
def test_the_graph_optimal_refusal_names_the_least_budget(index: int) -> None:
    costs = small_graphs()[index]
    least = ca.minimum_budget(costs)
    with pytest.raises(BudgetError, match=f"below the minimum of {least} bytes"):
        ca.plan_graph("optimal", costs, budget_bytes=least - 1)
    assert ca.plan_graph("optimal", costs, budget_bytes=least).peak_bytes <= least
