"""Offload on chains (docs/chain_offload.md): the actions and their checker, the executor moving
values (gradients bit-identical, predicted = measured device and host peaks), the block DP
against an exhaustive search, and the properties of optimal(bandwidth=...)."""
from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest

import checkpoint_ad as ca
from checkpoint_ad.chains.chain import Chain, Stage
from checkpoint_ad.chains.plans import Plan, check_plan
from checkpoint_ad.chains.policies.offload_dp import BlockProblem, solve_blocks
from checkpoint_ad.chains.executor import Executor
from checkpoint_ad.chains.replay import (SymbolicRunner, as_run, host_peak_bytes, peak_bytes,
                                         plan_time)
from checkpoint_ad.plans.memory import Meter
from checkpoint_ad.errors import BudgetError, PlanError, PolicyError
from offload_search import least_time, sequences, store_peak

MOVED = [("tape", 1), ("offload", 1), ("tape", 2), ("offload", 2), ("tape", 3), ("turn", 4),
         ("prefetch", 2), ("backward", 3), ("prefetch", 1), ("backward", 2), ("backward", 1)]


def random_costs(rng: random.Random, n: int) -> ca.ChainCosts:
    states = tuple(rng.randint(1, 4) for _ in range(n + 1))
    return ca.ChainCosts(n, tuple(float(rng.randint(1, 3)) for _ in range(n)), states,
                         tuple(states[t] + rng.randint(0, 6) for t in range(1, n + 1)))


def test_a_moved_plan_is_timed_step_by_step() -> None:
    plan = Plan.from_steps(4, MOVED)
    costs = ca.ChainCosts(4, state_bytes=(1,) * 5, tape_bytes=(4,) * 4)
    # at 4 bytes per unit every 4-byte tape moves in one unit, hidden behind each step:
    # store_all's time, 4 evaluations + 8 of backward steps; at 1, each transfer takes 4
    assert plan_time(plan, costs, 4) == 12 == plan_time(plan, costs, 100)
    assert plan_time(plan, costs, 1) == 1 + 4 + 4 + 3 + 4 + 4 + 2
    assert host_peak_bytes(plan, costs) == 8 and host_peak_bytes(Plan.from_steps(
        1, [("turn", 1)]), ca.ChainCosts(1)) == 0
    with pytest.raises(PlanError, match="no bandwidth"):
        plan_time(plan, costs)
    assert Plan.from_json(plan.to_json()).steps == plan.steps


@pytest.mark.parametrize("steps, message", [
    ([("offload", 0), ("wait", 0), ("turn", 1)], "x_0 stays on the device"),
    ([("prefetch", 1), ("turn", 1)], "no host copy of this stage"),
    ([("tape", 1), ("offload", 1), ("backward", 1)], "leaving for the host"),
    ([("tape", 1), ("offload", 1), ("wait", 1), ("prefetch", 1), ("backward", 1)],
     "still arriving"),
    ([("advance", 1), ("save", 1), ("offload", 1)], "ends with transfers in flight: \\[1\\]"),
    ([("wait", 1), ("turn", 1)], "nothing of this stage is transferred"),
    ([("tape", 1), ("offload", 1), ("free", 1), ("backward", 1)], "x_1 is leaving"),
    ([("advance", 1), ("save", 1), ("offload", 1), ("free", 1)], "leaving for the host"),
])
def test_the_checker_names_a_broken_transfer(steps, message) -> None:
    n = max(stage for _, stage in steps) + 1
    with pytest.raises(PlanError, match=message):
        check_plan(Plan.from_steps(n, steps))


@pytest.mark.parametrize("steps", [
    [("tape", 1), ("tape", 2), ("offload", 2), ("wait", 2), ("prefetch", 2), ("wait", 2),
     ("backward", 2), ("backward", 1)],
    [("tape", 1), ("tape", 2), ("offload", 2), ("backward", 2), ("backward", 1)],
])
def test_the_last_stage_never_leaves_the_device(steps) -> None:
    # the forward sweep returns x_n from stage n's tape (CheckpointedSequential, sequential)
    with pytest.raises(PlanError, match=r"^step 3 \(offload 2\): stage 2's tape stays on the "
                                        r"device: the forward sweep returns x_2 from it$"):
        check_plan(Plan.from_steps(2, steps))
    kept = [step for step in steps if step[0] not in ("offload", "prefetch", "wait")]
    assert check_plan(Plan.from_steps(2, kept)).forward_evals == 2  # without the transfers


def test_optimal_never_moves_the_last_stage_and_returns_x_n() -> None:
    rng = random.Random(11)
    for _ in range(10):
        n = rng.randint(1, 8)
        costs = dataclasses.replace(random_costs(rng, n), returns_output=True)
        full = peak_bytes(ca.plan("store_all", costs=costs), costs)
        for budget in range(full // 3, full + 1, max(1, full // 6)):
            for bandwidth in (0.5, 2, 1e9):
                try:
                    plan = as_run(ca.plan("optimal", costs=costs, budget_bytes=budget,
                                          bandwidth=bandwidth), costs)
                except BudgetError:
                    continue
                assert ("offload", n) not in [(s.action.value, s.stage) for s in plan]
                executor = Executor(plan, SymbolicRunner(costs), Meter(False))
                assert executor.forward(None) is not None  # x_n, returned by the forward


def numpy_chain(n: int, seed: int) -> tuple[Chain, np.ndarray]:
    rng = np.random.default_rng(seed)
    stages = []
    for t in range(n):
        width = 3 + t % 3
        weights = rng.standard_normal((3, 3)) / 3
        if t % 2:
            stages.append(Stage(lambda x, p: ca.tanh(x @ p[0] + p[1]),
                                (weights, rng.standard_normal(3))))
        else:
            stages.append(Stage(lambda x, p, w=width: x + 0.5 * ca.sin(x * w)))
    return Chain(stages), rng.standard_normal((4, 3))


@pytest.mark.parametrize("n, seed", [(5, 0), (8, 1)])
def test_offload_plans_run_exactly(n: int, seed: int) -> None:
    chain, x0 = numpy_chain(n, seed)
    costs = ca.profile_chain(chain, x0).costs([1, 2, 1, 3, 1, 2, 1, 1][:n])
    base = ca.backprop(chain, x0, policy="store_all", seed=7, trace_memory=False)
    full = peak_bytes(ca.plan("store_all", costs=costs), costs)
    ran = 0
    for fraction in (0.35, 0.5, 0.8):
        for bandwidth in (40, 400, 1e9):
            params = {"budget_bytes": int(full * fraction), "bandwidth": bandwidth,
                      "costs": costs.compute}
            try:
                result = ca.backprop(chain, x0, policy="optimal", seed=7, trace_memory=False,
                                     **params)
            except BudgetError:
                continue
            stats, plan = result.stats, result.plan
            ran += plan.action_counts().get("offload", 0) > 0
            assert np.array_equal(result.grad_input, base.grad_input)
            for mine, theirs in zip(result.grad_params, base.grad_params):
                assert all(np.array_equal(a, b) for a, b in zip(mine or (), theirs or ()))
            assert stats.peak_bytes == stats.predicted_peak_bytes <= params["budget_bytes"]
            assert stats.host_peak_bytes == stats.predicted_host_peak_bytes == \
                host_peak_bytes(plan, costs)
    assert ran >= 2  # the plans that ran did move values


def test_the_block_dp_equals_an_exhaustive_search() -> None:
    rng = random.Random(3)
    for _ in range(60):
        costs = random_costs(rng, rng.randint(1, 6))
        bandwidth = rng.choice([None, 0.5, 1, 2, 8])
        budget = rng.randint(1, 50)
        try:
            time, blocks = solve_blocks(BlockProblem(costs, bandwidth), budget)
        except BudgetError:
            time = None
        assert time == least_time(costs, bandwidth, store_budget=budget)
        if time is not None:
            plan = ca.Plan.from_json(_plan(costs, blocks).to_json())
            assert store_peak(plan, costs) <= budget and plan_time(plan, costs, bandwidth) == time


def _plan(costs, blocks):
    from checkpoint_ad.chains.policies.offload_dp import blocks_plan
    return blocks_plan(costs, blocks).build("optimal")


def test_the_search_counts_block_sequences() -> None:
    # n = 3: keep|move|segment choices; a move is never right before the last stage
    assert sum(1 for _ in sequences(3, False)) == 13
    # with moves: + move 1 then keep 2 (2 ways), move 1 then segment 2 (2 ways), moved segment 2
    assert sum(1 for _ in sequences(3, True)) == 19


def test_optimal_with_a_bandwidth_never_takes_longer() -> None:
    rng = random.Random(5)
    for _ in range(12):
        costs = random_costs(rng, rng.randint(2, 7))
        full = peak_bytes(ca.plan("store_all", costs=costs), costs)
        previous_row = None
        for budget in range(full // 3, full + 2, max(1, full // 8)):
            row = []
            for bandwidth in (None, 0, 0.25, 1, 4, 1e9):
                try:
                    plan = ca.plan("optimal", costs=costs, budget_bytes=budget,
                                   bandwidth=bandwidth)
                except BudgetError:
                    row.append(None)
                    continue
                if not bandwidth:
                    assert plan.steps == ca.plan("optimal", costs=costs,
                                                 budget_bytes=budget).steps
                assert peak_bytes(plan, costs) <= budget
                row.append(plan_time(plan, costs, bandwidth or None))
            assert row[0] == row[1]
            times = [time for time in row if time is not None]
            assert times == sorted(times, reverse=True) and (row[0] is None or row[-1] is not None)
            if previous_row is not None:
                for before, now in zip(previous_row, row):
                    assert before is None or (now is not None and now <= before)
            previous_row = row


def test_other_policies_refuse_a_bandwidth() -> None:
    costs = ca.ChainCosts(5)
    with pytest.raises(PolicyError, match="policies that do: optimal$"):
        ca.plan("revolve", costs=costs, slots=2, bandwidth=1)
    assert ca.plan("sqrt_n", costs=costs, bandwidth=0).steps == ca.plan("sqrt_n", costs=costs).steps
    with pytest.raises(PolicyError, match="bandwidth plans transfers under budget_bytes"):
        ca.plan("optimal", costs=costs, slots=3, bandwidth=1)
    with pytest.raises(PolicyError, match="up to 64 stages .* this chain has 65: plan it"):
        ca.plan("optimal", costs=ca.ChainCosts(65), budget_bytes=20, bandwidth=1)


GROUND_TRUTH = {  # budget: recompute only, then (least, optimal) at bandwidths 1, 2, 4
    12: (30, (30, 30), (30, 30), (30, 30)), 14: (29, (29, 29), (27, 29), (27, 29)),
    16: (28, (28, 28), (27, 27), (24.5, 24.5)), 18: (26, (26, 26), (25, 25), (24.5, 24.5)),
    20: (26, (26, 26), (24, 25), (24, 24.5)), 22: (25, (25, 25), (24, 24), (24, 24)),
    25: (24, (24, 24), (24, 24), (24, 24)),
}


def test_the_ground_truth_table_of_the_docs() -> None:
    costs = ca.ChainCosts(5, (1.0, 3.0, 1.0, 2.0, 1.0), (2, 1, 3, 1, 2, 1), (4, 6, 3, 5, 3))
    assert peak_bytes(ca.plan("store_all", costs=costs), costs) == 25
    for bandwidth_index, bandwidth in enumerate((1, 2, 4), 1):
        replayed = [(peak_bytes(plan, costs), plan_time(plan, costs, bandwidth))
                    for plan in (_plan(costs, blocks) for blocks in sequences(5, True))]
        for budget, row in GROUND_TRUTH.items():
            alone = plan_time(ca.plan("optimal", costs=costs, budget_bytes=budget), costs)
            least = min([alone] + [time for peak, time in replayed if peak <= budget])
            planned = ca.plan("optimal", costs=costs, budget_bytes=budget, bandwidth=bandwidth)
            assert (alone, (least, plan_time(planned, costs))) == (
                row[0], row[bandwidth_index]), (budget, bandwidth)
