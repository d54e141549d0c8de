"""The chain DP's lower bound: its levels with every move rounded up (a relaxation of the
persistent schedules the recursion plans), below the exact optimum of that model and equal to it
where nothing rounds."""
from __future__ import annotations

import random

import pytest

from checkpoint_ad.chains.costs import ChainCosts
from checkpoint_ad.chains.policies.optimal_dp import everything_bytes
from checkpoint_ad.chains.policies.optimal_table import OptimalTable

UNIT = 64


def unit_sized_chain(n: int, seed: int) -> ChainCosts:
    rng = random.Random(seed)
    states = tuple(UNIT * rng.randint(1, 16) for _ in range(n + 1))
    tapes = tuple(states[t + 1] + UNIT * rng.randint(0, 8) for t in range(n))
    return ChainCosts(n, tuple(float(rng.randint(1, 9)) for _ in range(n)), states, tapes)


def store_budgets(costs: ChainCosts, count: int = 8) -> list[int]:
    """Budgets from x_0 plus the largest tape to everything, on whole units of free bytes."""
    low = costs.state_bytes[0] + max(costs.tape_bytes)
    high = costs.state_bytes[0] + everything_bytes(costs, True)
    found = [int(low * (high / low) ** (k / (count - 1))) for k in range(count)]
    return [b - (b - costs.state_bytes[0]) % UNIT for b in found]


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("tapes", [True, False])
def test_the_bound_is_below_the_exact_optimum_and_the_geometric_plans_above(
        seed: int, tapes: bool) -> None:
    costs = unit_sized_chain(random.Random(seed).randint(3, 24), seed)
    coarse = OptimalTable.solve(costs, resolution=12, tapes=tapes)  # coarse: moves round
    exact = OptimalTable.solve(costs, unit_bytes=UNIT, tapes=tapes)  # nothing rounds
    for budget in store_budgets(costs):
        bound, optimum, planned = coarse.lower_bound(budget), exact.cost(budget), coarse.cost(budget)
        assert bound <= optimum <= planned
        assert exact.lower_bound(budget) == optimum


def test_the_bound_is_not_trivial_where_levels_are_coarse() -> None:
    gaps = []
    for seed in range(6):
        costs = unit_sized_chain(20, seed)
        coarse = OptimalTable.solve(costs, resolution=12)
        gaps += [coarse.cost(b) - coarse.lower_bound(b) for b in store_budgets(costs)]
    assert any(gap > 0 for gap in gaps) and all(gap >= 0 for gap in gaps)


def test_slots_round_nothing_so_the_bound_is_the_cost() -> None:
    costs = unit_sized_chain(12, 1)
    table = OptimalTable.solve_slots(costs, 12)
    assert [table.lower_bound(s) for s in range(1, 13)] == [table.cost(s) for s in range(1, 13)]
