"""One DP table answers many budgets: the same plan cost as each budget solved alone.

OptimalTable fills the DP once over free memory levels that do not depend on the budget; each
budget is then read from it. A budget solved alone on the same levels must give the same cost,
and the plan rebuilt from either must cost that and fit its budget. The policy
(`make_plan("optimal", ...)`) answers every byte budget of a chain from one table over
`resolution` geometric levels and keeps it, so a sweep solves once, and a small budget plans
about as finely as solved alone in units fitted to it.
"""
from __future__ import annotations

import random

import pytest

from checkpoint_ad.plans import limits
from checkpoint_ad.chains.costs import ChainCosts
from checkpoint_ad.chains.plans import check_plan
from checkpoint_ad.chains.replay import forward_cost
from checkpoint_ad.chains.policies import make_plan, optimal, optimal_table
from checkpoint_ad.chains.policies.optimal_table import (OptimalTable, clear_cache,
                                                         default_resolution)
from checkpoint_ad.chains.policies.optimal_dp import everything_bytes
from checkpoint_ad.chains.policies.optimal_dp import Grid
from checkpoint_ad.errors import BudgetError, PolicyError
from helpers import stored_after_each_step
from chain_search import exhaustive_cost, random_chain, stored_bytes_peak


def shared_bytes_peak(plan, costs: ChainCosts) -> int:
    """The most bytes of checkpoints plus held tapes, x_0 included, a tape that keeps its input
    x_{t-1} sharing it while x_{t-1} is stored too (a checkpoint, or the output of tape t-1)."""
    peak = costs.state_bytes[0]
    for checkpoints, held in stored_after_each_step(plan):
        tapes = sum(costs.tape_bytes[t - 1]
                    - (costs.tape_input_bytes[t - 1] if t - 1 in checkpoints | held else 0)
                    for t in held)
        peak = max(peak, sum(costs.state_bytes[j] for j in checkpoints) + tapes)
    return peak


def heterogeneous_chain(rng: random.Random, n: int) -> ChainCosts:
    """Whole-number costs 1..50, states of 100..999 bytes, tapes of the state plus up to twice
    as much, some keeping their input."""
    states = tuple(rng.randint(100, 999) for _ in range(n + 1))
    tapes = tuple(a + rng.randint(0, 2 * a) for a in states[1:])
    inputs = tuple(rng.choice((0, a)) for a in states[:-1])
    return ChainCosts(n, tuple(rng.randint(1, 50) for _ in range(n)), states,
                      tuple(b + c for b, c in zip(tapes, inputs)), inputs)


def sweep(costs: ChainCosts, tapes: bool, count: int = 40) -> list[int]:
    """``count`` budgets from x_0 alone to a little past everything."""
    least = costs.state_bytes[0]
    most = least + everything_bytes(costs, tapes) + 10
    return sorted({least, most - 11, most, *(least + (most - least) * k // count
                                             for k in range(count))})


def counting_solves(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the DP fills from now on."""
    calls: list[int] = []
    original = optimal_table.solve

    def counted(problem):
        calls.append(problem.free)
        return original(problem)

    monkeypatch.setattr(optimal_table, "solve", counted)
    return calls


@pytest.mark.parametrize("seed", range(8))
def test_one_table_equals_each_budget_solved_alone(seed: int) -> None:
    rng = random.Random(seed)
    costs = heterogeneous_chain(rng, rng.randint(2, 25))
    for tapes, uniform in ((True, False), (False, False), (True, True), (False, True)):
        scale = ({"unit_bytes": rng.choice((7, 100, 900))} if uniform
                 else {"resolution": rng.choice((3, 10, 40))})
        table = OptimalTable.solve(costs, tapes=tapes, **scale)
        for budget in sweep(costs, tapes):
            alone = OptimalTable.solve(costs, budget, tapes=tapes, **scale)
            assert alone.width <= table.width
            expected = alone.cost(budget)
            assert table.cost(budget) == expected, (seed, tapes, budget)
            for plan in (table.plan(budget), alone.plan(budget)):
                check_plan(plan)
                assert forward_cost(plan, costs) == expected
                assert shared_bytes_peak(plan, costs) <= budget


def test_a_smaller_maximum_answers_its_budgets_as_the_whole_table() -> None:
    rng = random.Random(40)
    costs = heterogeneous_chain(rng, 30)
    whole = OptimalTable.solve(costs, resolution=25)
    budgets = sweep(costs, True)
    part = OptimalTable.solve(costs, budgets[len(budgets) // 2], resolution=25)
    assert part.width < whole.width
    for budget in budgets[:len(budgets) // 2 + 1]:
        assert part.cost(budget) == whole.cost(budget)
    with pytest.raises(PolicyError, match="beyond the .* this table was solved for"):
        part.cost(budgets[-3])


@pytest.mark.parametrize("seed", range(6))
def test_the_table_matches_exhaustive_search_at_every_budget(seed: int) -> None:
    rng = random.Random(300 + seed)
    costs = random_chain(rng, rng.randint(1, 5))
    least, total = costs.state_bytes[0], sum(costs.state_bytes) + sum(costs.tape_bytes)
    for tapes in (True, False):
        table = OptimalTable.solve(costs, total, tapes=tapes)
        everything = everything_bytes(costs, tapes)  # sizes of a few bytes: every byte a level
        assert table.grid.levels == tuple(float(level) for level in range(everything + 1))
        for budget in range(least, total + 1):
            expected = exhaustive_cost(costs, budget, costs.state_bytes, costs.tape_bytes, tapes)
            assert table.cost(budget) == expected, (seed, tapes, budget)
            assert forward_cost(table.plan(budget), costs) == expected


@pytest.mark.parametrize("seed", range(4))
def test_the_slots_table_equals_each_slot_count_alone(seed: int) -> None:
    rng = random.Random(500 + seed)
    costs = heterogeneous_chain(rng, rng.randint(2, 30))
    for tapes in (True, False):
        table = OptimalTable.solve_slots(costs, costs.n + 2, tapes=tapes)
        for slots in range(1, costs.n + 3):
            expected = OptimalTable.solve_slots(costs, slots, tapes=tapes).cost(slots)
            plan = table.plan(slots)
            assert table.cost(slots) == expected == forward_cost(plan, costs)
            assert check_plan(plan).peak_stored <= slots


def test_a_budget_sweep_through_the_policy_solves_once(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(9)
    costs = heterogeneous_chain(rng, 60)
    clear_cache()
    calls = counting_solves(monkeypatch)
    budgets = sweep(costs, True, 15)[:-2]  # the last two keep everything: no table
    plans = [make_plan("optimal", costs, store_budget_bytes=budget) for budget in budgets]
    assert len(calls) == 1
    again = [make_plan("optimal", costs, store_budget_bytes=budget) for budget in budgets]
    assert [list(plan) for plan in again] == [list(plan) for plan in plans]
    assert len(calls) == 1  # the second sweep reads the kept table
    units = default_resolution(costs.n)
    for budget, plan in zip(budgets, plans):
        alone = OptimalTable.solve(costs, budget, resolution=units)
        assert forward_cost(plan, costs) == alone.cost(budget)
        assert shared_bytes_peak(plan, costs) <= budget
        assert dict(plan.params)["resolution"] == units
    clear_cache()


def test_geometric_levels_keep_a_constant_ratio_up_to_everything() -> None:
    costs = heterogeneous_chain(random.Random(12), 50)
    everything = everything_bytes(costs, True)
    levels = Grid.geometric(costs, 40, True).levels
    assert levels[0] == 0 and levels[-1] == everything and len(levels) == 41
    gaps = [b - a for a, b in zip(levels, levels[1:])]
    assert all(gap > 0 for gap in gaps)
    ratios = [(b / a) ** 0.1 for a, b in zip(gaps, gaps[10:])]  # whole bytes: over 10 gaps
    assert max(ratios) / min(ratios) < 1.01
    assert 1.05 < ratios[0] < 1.2
    even = Grid.geometric(costs, 2 * everything, True).levels  # more gaps than bytes: even
    assert even == tuple(float(level) for level in range(everything + 1))


@pytest.mark.parametrize("seed", range(4))
def test_a_small_budget_plans_about_as_finely_as_solved_alone(seed: int) -> None:
    """A budget of 1-8% of everything read from one table of 100 even levels gets 1-8 of them
    and recomputes up to 8x more than the same budget solved alone in 50 units of its own free
    bytes; 100 geometric levels give every budget the same relative resolution: within 15% of
    that solve (measured: at most 11%)."""
    costs = heterogeneous_chain(random.Random(600 + seed), 60)
    least, everything = costs.state_bytes[0], everything_bytes(costs, True)
    even = OptimalTable.solve(costs, unit_bytes=-(-everything // 100))
    coarse = []
    for fraction in (0.01, 0.02, 0.03, 0.05, 0.08):
        budget = least + int(fraction * everything)
        fine = OptimalTable.solve(costs, budget, unit_bytes=-(-(budget - least) // 50))
        plan = make_plan("optimal", costs, store_budget_bytes=budget, resolution=100)
        assert forward_cost(plan, costs) <= 1.15 * fine.cost(budget), (fraction, fine)
        assert shared_bytes_peak(plan, costs) <= budget
        coarse.append(even.cost(budget) / fine.cost(budget))
    assert max(coarse) > 2  # what geometric levels remove: even ones are too coarse
    clear_cache()


def test_an_ascending_slots_sweep_solves_a_few_times(monkeypatch: pytest.MonkeyPatch) -> None:
    costs = heterogeneous_chain(random.Random(10), 80)
    clear_cache()
    calls = counting_solves(monkeypatch)
    plans = {slots: make_plan("optimal", costs, slots=slots) for slots in range(1, 60)}
    assert calls == [0, 1, 2, 4, 8, 16, 32, 64]  # the width doubles
    clear_cache()
    for slots in (2, 9, 33, 59):
        assert forward_cost(plans[slots], costs) == optimal.optimal_cost(costs, slots=slots)
    assert len(calls) == 8 + 4  # each alone: a fresh solve (the cache was cleared each time)
    clear_cache()


def test_memory_for_everything_needs_no_table(monkeypatch: pytest.MonkeyPatch) -> None:
    costs = heterogeneous_chain(random.Random(11), 40)
    clear_cache()
    calls = counting_solves(monkeypatch)
    for tapes, cost in ((True, sum(costs.compute)),
                        (False, sum(costs.compute) + sum(costs.compute[:-1]))):
        budget = costs.state_bytes[0] + everything_bytes(costs, tapes)
        plan = make_plan("optimal", costs, store_budget_bytes=budget, tapes=tapes)
        assert forward_cost(plan, costs) == cost
        assert stored_bytes_peak(plan, costs) <= budget
        assert check_plan(make_plan("optimal", costs, slots=costs.n, tapes=tapes)).forward_evals \
            == (costs.n if tapes else 2 * costs.n - 1)
    assert calls == []


def test_the_table_refuses_what_exceeds_the_planner_limits() -> None:
    costs = ChainCosts.unit(400)
    with limits.limited(memory_bytes=50 * 2**20):
        with pytest.raises(PolicyError) as refused:
            OptimalTable.solve_slots(costs, 100)
        message = str(refused.value)
        assert "n=400 with slots=100 needs about" in message
        assert "more than the planner memory limit of 52,428,800 bytes (as set)" in message
        largest = int(message.rsplit("the largest n that fits is ", 1)[1].replace(",", ""))
        assert 50 < largest < 400
        assert optimal.table_footprint(largest, 99, True).bytes <= 50 * 2**20
        OptimalTable.solve_slots(ChainCosts.unit(largest), 100)  # fits
    with limits.limited(operations=10**6):
        with pytest.raises(PolicyError, match=r"table operations, more than the limit of "
                                              r"1,000,000 \(as set\)"):
            make_plan("optimal", costs, slots=10)


def test_table_budgets_are_checked() -> None:
    costs = ChainCosts(4, state_bytes=(700, 10, 10, 10, 10), tape_bytes=(20, 20, 20, 20))
    table = OptimalTable.solve(costs)
    assert table.min_budget == 700 and OptimalTable.solve_slots(costs, 3).min_budget == 1
    with pytest.raises(BudgetError, match="minimum of 700 bytes"):
        table.cost(699)
    with pytest.raises(PolicyError, match="resolution must be a positive integer"):
        OptimalTable.solve(costs, resolution=0)
    with pytest.raises(PolicyError, match="unit_bytes must be a positive integer"):
        OptimalTable.solve(costs, unit_bytes=-1)
    with pytest.raises(PolicyError, match="tapes must be True or False"):
        OptimalTable.solve_slots(costs, 3, tapes="yes")
    with pytest.raises(PolicyError, match=r"store_budget_bytes=745 is beyond the 20 free bytes this "
                                          r"table was solved for; solve it with a larger maximum"):
        OptimalTable.solve(costs, 720).cost(745)


def test_even_levels_keep_everything_and_refuse_budgets_beyond_their_table() -> None:
    """Everything (15 bytes here) is no multiple of the unit (4): a budget that holds it still
    gets the plan that keeps everything, and a table solved up to a smaller budget refuses a
    larger one instead of answering it with its top level."""
    costs = ChainCosts(4, state_bytes=(5, 5, 5, 5, 5), tape_bytes=(5, 5, 5, 5))
    assert everything_bytes(costs, True) == 15
    table = OptimalTable.solve(costs, unit_bytes=4)
    for budget in (5 + 15, 5 + 115):
        assert table.level(budget) is None and table.cost(budget) == sum(costs.compute)
    part = OptimalTable.solve(costs, 5 + 6, unit_bytes=4)
    with pytest.raises(PolicyError, match="beyond the 4 free bytes this table was solved for"):
        part.cost(5 + 12)


def test_many_geometric_levels_do_not_overflow() -> None:
    costs = heterogeneous_chain(random.Random(13), 40)
    everything = everything_bytes(costs, True)
    levels = Grid.geometric(costs, 5000, True).levels
    assert levels[-1] == everything and len(levels) > 2000
    budget = costs.state_bytes[0] + everything // 3
    plan = make_plan("optimal", costs, store_budget_bytes=budget, resolution=1500)
    assert shared_bytes_peak(plan, costs) <= budget
    clear_cache()


def test_a_slots_sweep_without_tapes_solves_once(monkeypatch: pytest.MonkeyPatch) -> None:
    costs = heterogeneous_chain(random.Random(14), 10)
    clear_cache()
    calls = counting_solves(monkeypatch)
    for _ in range(3):
        optimal.table_for(costs, slots=costs.n + 5, tapes=False)
    assert len(calls) == 1
    clear_cache()
