"""Tests of certify_chain (the CP-SAT model of every chain schedule, checkpoint_ad/chains/
cpsat_model.py): on small heterogeneous chains its proven optimum is the exhaustive search's
(chain_search.py, written apart from both planners), its bound never exceeds it, and its plan
passes the checker and replays to its cost within the budget. Deterministic effort, one worker.
"""
from __future__ import annotations

import random

import pytest

from checkpoint_ad.chains.certify import certify_chain
from checkpoint_ad.chains.costs import ChainCosts
from checkpoint_ad.chains.cpsat_model import ChainModel, single_events
from checkpoint_ad.chains.plans import check_plan
from checkpoint_ad.chains.policies.optimal import plan_optimal
from checkpoint_ad.chains.replay import forward_cost
from checkpoint_ad.errors import BudgetError, PolicyError
from chain_search import exhaustive_cost, random_budgets, random_chain, stored_bytes_peak

EFFORT = 20.0  # CP-SAT's deterministic time; the cases below need well under 1
LIMIT = 120.0  # seconds: never reached on these cases, the effort stops first


def check_certificate(costs: ChainCosts, budget: int, tapes: bool, slots: bool = False) -> None:
    sizes = ((1,) * (costs.n + 1), (1,) * costs.n) if slots else (costs.state_bytes,
                                                                  costs.tape_bytes)
    expected = exhaustive_cost(costs, budget, *sizes, tapes)
    given = {"slots": budget} if slots else {"store_budget_bytes": budget}
    found = certify_chain(costs, tapes=tapes, time_limit=LIMIT, effort=EFFORT, **given)
    assert found.lower_bound <= expected <= found.cost <= found.dp_cost
    assert found.status == "optimal" and found.cost == expected == found.lower_bound
    assert found.dp_gap == pytest.approx(found.dp_cost / expected - 1)
    counts = check_plan(found.plan)
    assert forward_cost(found.plan, costs) == found.cost
    if slots:
        assert counts.peak_stored <= budget
    else:
        assert stored_bytes_peak(found.plan, costs) <= budget


@pytest.mark.parametrize("seed", range(6))
def test_proven_optimum_is_the_exhaustive_one(seed: int) -> None:
    rng = random.Random(seed)
    costs = random_chain(rng, 4 + seed % 3)
    for budget in random_budgets(rng, costs, 2):
        for tapes in (True, False):
            check_certificate(costs, budget, tapes)


@pytest.mark.parametrize("seed", range(2))
def test_slots(seed: int) -> None:
    costs = random_chain(random.Random(200 + seed), 6)
    for slots in (1, 2, 3):
        check_certificate(costs, slots, tapes=True, slots=True)


def test_fractional_costs() -> None:
    costs = ChainCosts(5, (1.5, 0.25, 2.0, 1.0, 3.75), (1, 2, 1, 3, 1, 2), (2, 3, 2, 1, 2))
    for budget in (1, 3, 4):
        check_certificate(costs, budget, tapes=True)


def test_finds_the_schedule_the_recursion_misses() -> None:
    """The 6-stage chain where freeing a live checkpoint saves 2 (test_optimal.py): the DP's
    63 is certified 63/61 - 1 from the optimum."""
    costs = ChainCosts(6, (2, 6, 3, 6, 6, 4), (1, 2, 3, 4, 1, 4, 1), (2, 1, 4, 2, 5, 2))
    found = certify_chain(costs, 4, tapes=False, time_limit=LIMIT, effort=EFFORT)
    assert (found.dp_cost, found.cost, found.lower_bound, found.status) == (63, 61, 61,
                                                                             "optimal")
    assert found.dp_gap == pytest.approx(2 / 61)
    assert found.plan.policy == "certify" and forward_cost(found.plan, costs) == 61
    assert stored_bytes_peak(found.plan, costs) <= 4


def test_store_all_budget_needs_no_solver() -> None:
    costs = random_chain(random.Random(7), 5)
    found = certify_chain(costs, sum(costs.state_bytes) + sum(costs.tape_bytes))
    assert found.status == "optimal" and found.cost == found.lower_bound == sum(costs.compute)
    assert found.plan is found.dp_plan


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"store_budget_bytes": 0}, BudgetError, "is below the minimum"),
    ({"store_budget_bytes": 4, "slots": 2}, PolicyError, "needs exactly one budget"),
    ({"store_budget_bytes": 4, "time_limit": 0}, PolicyError, "time_limit must be"),
    ({"store_budget_bytes": 4, "effort": -1}, PolicyError, "effort must be"),
    ({"store_budget_bytes": 4, "workers": 0}, PolicyError, "workers"),
    ({"store_budget_bytes": 4, "seed": 1.5}, PolicyError, "seed"),
])
def test_bad_input(kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message) as caught:
        certify_chain(ChainCosts.unit(4), **kwargs)
    assert "\n" not in str(caught.value)


def test_tapes_keeping_their_input_are_refused() -> None:
    costs = ChainCosts(3, (1, 1, 1), (1, 1, 1, 1), (2, 2, 2), (1, 1, 1))
    with pytest.raises(PolicyError, match="tape_input_bytes") as caught:
        certify_chain(costs, 3)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("seed", range(4))
def test_the_model_holds_the_dp_plan_at_its_cost(seed: int) -> None:
    """optimal's plan, as the hint, is a solution of the model over exactly its events: the
    model counts its stored bytes as the replay does; decoded, it replays to the same cost."""
    from ortools.sat.python import cp_model
    rng = random.Random(300 + seed)
    costs = random_chain(rng, rng.randint(1, 10))
    for budget in random_budgets(rng, costs, 3):
        for tapes in (True, False):
            plan = plan_optimal(costs, store_budget_bytes=budget, tapes=tapes)
            model = ChainModel(costs, costs.state_bytes, costs.tape_bytes if tapes else None,
                               budget, len(single_events(plan)))
            assert model.hint(plan)
            solver = cp_model.CpSolver()
            solver.parameters.fix_variables_to_their_hinted_value = True
            solver.parameters.num_workers = 1
            assert solver.status_name(solver.Solve(model.model)) == "OPTIMAL"
            assert solver.objective_value == forward_cost(plan, costs)
            decoded = model.decode(solver).build("decoded")
            check_plan(decoded)
            assert forward_cost(decoded, costs) == forward_cost(plan, costs)
            assert stored_bytes_peak(decoded, costs) <= stored_bytes_peak(plan, costs)
