"""The uniform-chain policies against the closed forms of docs/cost_model.md, exactly.

Plans are checked by the pure checker (``plan.forward_evals`` / ``plan.peak_stored`` run
``check_plan``); no array is ever computed. The closed forms are written here independently of
the policies' own code.
"""
from __future__ import annotations

import math
from functools import cache

import pytest

from checkpoint_ad.errors import PlanError, PolicyError, UnknownNameError
from checkpoint_ad.chains.costs import ChainCosts
from checkpoint_ad.chains.plans import Action, check_plan
from checkpoint_ad.chains.policies import get_policy, make_plan, names
from closed_forms import beta, griewank_advances, revolve_peak

SMALL_CHAINS = range(1, 61)


@cache
def optimal_advances(n: int, slots: int) -> int:
    """opt(n, s) = min over 0<k<n of [k + opt(n−k, s−1) + opt(k, s)] (docs/cost_model.md)."""
    if n == 1:
        return 0
    if slots == 1:
        return n * (n - 1) // 2
    return min(k + optimal_advances(n - k, slots - 1) + optimal_advances(k, slots)
               for k in range(1, n))


def sqrt_n_peak(n: int, segments: int) -> int:
    return segments + n // segments - 1


def default_segments(n: int) -> int:
    return math.ceil(math.sqrt(n))  # exact for these small n


# --- the closed forms themselves -------------------------------------------------------------

def test_griewank_advances_match_cost_model_examples() -> None:
    assert griewank_advances(100, 5) == 316
    assert griewank_advances(100, 10) == 222
    assert griewank_advances(1000, 10) == 3636


def test_griewank_advances_match_the_optimal_split_recursion() -> None:
    for n in range(1, 41):
        for slots in range(1, 7):
            assert griewank_advances(n, slots) == optimal_advances(n, slots), (n, slots)


# --- recompute_all ---------------------------------------------------------------------------

def test_recompute_all_counts() -> None:
    for n in SMALL_CHAINS:
        plan = make_plan("recompute_all", n)
        assert (plan.forward_evals, plan.peak_stored) == (n * (n + 1) // 2, 1), n
        assert plan.slots == 1


def test_recompute_all_restores_only_x0_and_advances_in_one_step_per_turn() -> None:
    plan = make_plan("recompute_all", 6)
    assert {step.stage for step in plan if step.action is Action.RESTORE} == {0}
    assert sum(step.action is Action.ADVANCE for step in plan) == 5
    assert sum(step.action is Action.TURN for step in plan) == 6


# --- sqrt_n ----------------------------------------------------------------------------------

@pytest.mark.parametrize("segments", [1, 2, 3, 5, 7, 10, 60, 1000])
def test_sqrt_n_counts(segments: int) -> None:
    for n in SMALL_CHAINS:
        plan = make_plan("sqrt_n", n, segments=segments)
        used = min(segments, n)
        assert plan.forward_evals == 2 * n, (n, segments)
        assert plan.peak_stored == sqrt_n_peak(n, used), (n, segments)
        assert dict(plan.params) == {"segments": used}


def test_sqrt_n_default_is_ceil_sqrt_n() -> None:
    for n in SMALL_CHAINS:
        plan = make_plan("sqrt_n", n)
        segments = default_segments(n)
        assert dict(plan.params) == {"segments": segments}, n
        assert (plan.forward_evals, plan.peak_stored) == (2 * n, sqrt_n_peak(n, segments)), n


def test_sqrt_n_cost_model_example() -> None:
    plan = make_plan("sqrt_n", 100, segments=10)
    assert (plan.forward_evals, plan.peak_stored) == (200, 19)


@pytest.mark.parametrize(("n", "segments"), [(10, 3), (17, 4), (60, 7), (100, 10), (7, 7)])
def test_sqrt_n_segments_are_contiguous_balanced_and_longer_first(n: int, segments: int) -> None:
    plan = make_plan("sqrt_n", n, segments=segments)
    starts = [0] + [step.stage for step in plan if step.action is Action.SAVE]
    lengths = [stop - start for start, stop in zip(starts, starts[1:] + [n])]
    assert len(lengths) == segments and sum(lengths) == n
    assert lengths == sorted(lengths, reverse=True)
    assert max(lengths) - min(lengths) <= 1


def test_sqrt_n_promises_its_exact_peak() -> None:
    plan = make_plan("sqrt_n", 50, segments=6)
    assert plan.slots == plan.peak_stored == sqrt_n_peak(50, 6)


# --- revolve ---------------------------------------------------------------------------------

@pytest.mark.parametrize("slots", [1, 2, 3, 4, 5, 10, 59, 60, 100])
def test_revolve_counts_small_chains(slots: int) -> None:
    for n in SMALL_CHAINS:
        plan = make_plan("revolve", n, slots=slots)
        assert plan.forward_evals == griewank_advances(n, slots) + n, (n, slots)
        assert plan.peak_stored == revolve_peak(n, slots), (n, slots)


def _sampled_chains(slots: int, longest: int = 1000) -> list[int]:
    """Every 37th n, plus each n where the repetition number changes (and its neighbours).

    With one slot the repetition number changes at every n, so the sample alone is kept.
    """
    chosen = set(range(61, longest + 1, 37)) | {longest}
    repetitions = 0
    while slots > 1 and beta(slots, repetitions) <= longest:
        edge = beta(slots, repetitions)
        chosen |= {edge - 1, edge, edge + 1}
        repetitions += 1
    return sorted(n for n in chosen if 1 <= n <= longest)


@pytest.mark.parametrize("slots", [1, 2, 3, 5, 10, 50])
def test_revolve_counts_up_to_a_thousand_stages(slots: int) -> None:
    for n in _sampled_chains(slots):
        plan = make_plan("revolve", n, slots=slots)
        assert plan.forward_evals == griewank_advances(n, slots) + n, (n, slots)
        assert plan.peak_stored == revolve_peak(n, slots), (n, slots)


@pytest.mark.parametrize(("n", "slots", "total"), [(100, 5, 416), (100, 10, 322),
                                                   (1000, 10, 4636)])
def test_revolve_cost_model_examples(n: int, slots: int, total: int) -> None:
    assert make_plan("revolve", n, slots=slots).forward_evals == total


def test_revolve_with_enough_slots_advances_each_stage_once() -> None:
    for n in range(2, 61):
        for slots in (n - 1, n, 2 * n):
            plan = make_plan("revolve", n, slots=slots)
            assert (plan.forward_evals, plan.peak_stored) == (2 * n - 1, n - 1), (n, slots)


def test_revolve_with_one_slot_is_recompute_all() -> None:
    for n in SMALL_CHAINS:
        plan = make_plan("revolve", n, slots=1)
        assert plan.forward_evals == make_plan("recompute_all", n).forward_evals, n
        assert plan.peak_stored == 1


def test_revolve_default_slots_is_ceil_sqrt_n() -> None:
    for n in (1, 2, 10, 17, 60):
        assert dict(make_plan("revolve", n).params) == {"slots": default_segments(n)}


def test_revolve_promises_its_slots() -> None:
    plan = make_plan("revolve", 40, slots=4)
    assert plan.slots == 4
    assert check_plan(plan, slots=4).peak_stored == 4
    with pytest.raises(PlanError, match="more than the 3 slots"):
        check_plan(plan, slots=3)


def test_revolve_long_chain_plans_without_recursion_in_linear_steps() -> None:
    n, slots = 100_000, 100
    plan = make_plan("revolve", n, slots=slots)
    assert plan.forward_evals == griewank_advances(n, slots) + n
    assert plan.peak_stored == slots
    assert len(plan) <= 6 * n


# --- parameters and registry -----------------------------------------------------------------

@pytest.mark.parametrize(("policy", "parameter"), [("sqrt_n", "segments"), ("revolve", "slots")])
@pytest.mark.parametrize("value", [0, -1, 2.5, True])
def test_bad_parameter_values_raise(policy: str, parameter: str, value: object) -> None:
    with pytest.raises(PolicyError, match=f"{parameter} must be a positive integer"):
        make_plan(policy, 10, **{parameter: value})


@pytest.mark.parametrize(("policy", "params", "message"), [
    ("sqrt_n", {"segments": True}, "segments must be a positive integer, got True"),
    ("revolve", {"slots": 1.0}, "slots must be a positive integer, got 1.0"),
    ("optimal", {"slots": 3, "resolution": 5}, "resolution applies to budget_bytes only"),
    ("optimal", {"slots": 3, "resolution": -1}, "resolution applies to budget_bytes only"),
    ("optimal", {"budget_bytes": 100, "resolution": -1}, "resolution must be a positive integer"),
    ("optimal", {"slots": 2, "budget_bytes": 100}, "needs exactly one budget"),
])
def test_parameters_are_checked_without_costs(policy: str, params: dict, message: str) -> None:
    """The same check refuses them before any costs are known (as sequential and backprop do)
    and when planning, so the API and the CLI behave the same."""
    with pytest.raises(PolicyError, match=message):
        get_policy(policy).check_params(**params)
    with pytest.raises(PolicyError, match=message):
        make_plan(policy, 10, **params)


@pytest.mark.parametrize("policy", ["recompute_all", "sqrt_n", "revolve"])
def test_unknown_parameter_raises(policy: str) -> None:
    with pytest.raises(PolicyError, match="no parameter budget"):
        make_plan(policy, 10, budget=3)


def test_unknown_policy_lists_the_known_ones() -> None:
    with pytest.raises(UnknownNameError) as caught:
        get_policy("checkmate")
    for name in ("store_all", "recompute_all", "sqrt_n", "revolve"):
        assert name in str(caught.value)


def test_registry_order() -> None:
    registered = [name for name in names()
                  if name in ("store_all", "recompute_all", "sqrt_n", "revolve")]
    assert registered == ["store_all", "recompute_all", "sqrt_n", "revolve"]


def test_policies_document_their_parameters() -> None:
    documented = {name: [p.name for p in get_policy(name).parameters]
                  for name in ("recompute_all", "sqrt_n", "revolve")}
    assert documented == {"recompute_all": [], "sqrt_n": ["segments"], "revolve": ["slots"]}


def test_policies_accept_chain_costs() -> None:
    costs = ChainCosts(12, compute=tuple(float(t) for t in range(1, 13)))
    assert make_plan("revolve", costs, slots=3).forward_evals == griewank_advances(12, 3) + 12
