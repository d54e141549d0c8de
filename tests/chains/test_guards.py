"""The library's guards: a stage that changes between evaluations, non-finite values, budgets."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import checkpoint_ad as ca
from checkpoint_ad.chains.chain import Chain, Stage


def counting_stage(change):
    """A stage whose n-th evaluation (0-based, profiling sweep included) is altered by ``change``."""
    calls = itertools.count()

    def stage(x, params):
        return change(next(calls), ca.sin(x))
    return stage


def test_a_stage_whose_shape_changes_on_recomputation_is_named() -> None:
    stage = counting_stage(lambda k, y: y if k < 2 else ca.concatenate([y, y]))
    chain = Chain([Stage(lambda x, p: ca.sin(x)), Stage(stage, name="shifty"), Stage(lambda x, p: x * 2)])
    with pytest.raises(ca.StageError, match=r"stage 2 \(shifty\).*shape"):
        ca.backprop(chain, np.ones(3), policy="recompute_all")


def test_verify_catches_recomputed_values_that_differ() -> None:
    stage = counting_stage(lambda k, y: y + 1e-12 * k)
    chain = Chain([Stage(stage, name="drifting"), Stage(lambda x, p: ca.sin(x))])
    ca.backprop(chain, np.ones(3), policy="recompute_all")  # silently different without verify
    with pytest.raises(ca.StageError, match=r"stage 1 \(drifting\) recomputed values.*"
                                            r"deterministic.*must not write into .* in place"):
        ca.backprop(chain, np.ones(3), policy="recompute_all", verify=True)


def test_verify_passes_for_deterministic_and_dropout_chains() -> None:
    chain = Chain.repeat(lambda x, p: ca.dropout(ca.tanh(x), 0.3), 12)
    for policy, params in [("recompute_all", {}), ("revolve", {"slots": 3}), ("sqrt_n", {})]:
        result = ca.backprop(chain, np.ones(7), policy=policy, verify=True, **params)
        assert result.stats.forward_evals == result.plan.forward_evals


def test_check_finite_names_the_first_bad_stage() -> None:
    chain = Chain([Stage(lambda x, p: ca.sin(x)), Stage(lambda x, p: ca.log(x - 5), name="bad log"),
                   Stage(lambda x, p: ca.log(x))])
    with np.errstate(invalid="ignore"):
        with pytest.raises(ca.NonFiniteError, match=r"stage 2 \(bad log\)"):
            ca.backprop(chain, np.ones(3), check_finite=True)


def test_max_memory_refuses_before_running() -> None:
    calls = itertools.count()
    chain = Chain.repeat(lambda x, p: (next(calls), ca.sin(x))[1], 20)
    fine = ca.backprop(chain, np.ones(100), policy="store_all")
    evaluations_so_far = next(calls)
    with pytest.raises(ca.BudgetError, match=str(fine.stats.predicted_peak_bytes)):
        ca.backprop(chain, np.ones(100), policy="store_all", max_memory=fine.stats.peak_bytes - 1)
    # only the profiling sweep ran, which measures one stage of this homogeneous chain
    assert next(calls) == evaluations_so_far + 1 + 1


def test_a_stage_that_returns_no_array_is_named() -> None:
    chain = Chain([Stage(lambda x, p: "oops", name="wordy")])
    with pytest.raises(ca.StageError, match=r"stage 1 \(wordy\) returned str"):
        ca.backprop(chain, np.ones(2))


def test_backprop_on_a_tracer_points_to_sequential() -> None:
    chain = Chain.repeat(lambda x, p: ca.sin(x), 2)
    with pytest.raises(ca.StageError, match="sequential"):
        ca.grad(lambda x: ca.backprop(chain, x).value)(np.ones(2))


def _bump_input(x, params):
    if isinstance(x, np.ndarray):  # plain evaluations get arrays, taped ones tracers
        x += 1.0
    return ca.sin(x)


def _bump_params(x, params):
    if isinstance(params, np.ndarray):
        params *= 2.0
    return ca.sin(x) * params


@pytest.mark.parametrize("policy, params", [("recompute_all", {}), ("revolve", {"slots": 2}),
                                            ("sqrt_n", {}), ("optimal", {"slots": 2})])
@pytest.mark.parametrize("stage, what", [(_bump_input, "x"), (_bump_params, "params")])
def test_a_stage_writing_into_its_input_in_place_is_named(policy, params, stage, what) -> None:
    weights = np.full(3, 0.5)
    chain = Chain([Stage(lambda x, p: ca.cos(x))] + [Stage(stage, weights, name="bumper")] * 4)
    with pytest.raises(ca.StageError, match=r"stage 2 \(bumper\) wrote into its input or params "
                                            r"in place.*read-only"):
        ca.backprop(chain, np.ones(3), policy=policy, **params)
    assert np.array_equal(weights, np.full(3, 0.5))  # the caller's params are untouched


def test_stored_states_are_read_only_and_not_copied() -> None:
    """The executor's states (x_0 included) are read-only; that costs no copy: the Meter's
    bytes still equal the prediction, and the loss cannot write into x_n either."""
    chain = Chain.repeat(lambda x, p: ca.tanh(x), 9)
    x0 = np.linspace(0.1, 1.0, 40)
    result = ca.backprop(chain, x0, policy="revolve", slots=3)
    assert result.stats.peak_bytes == result.stats.predicted_peak_bytes
    assert x0.flags.writeable  # the caller's x0 is not made read-only
    seen = []

    def loss(x):
        seen.append(x.value.flags.writeable)
        return ca.sum(x)
    ca.backprop(chain, x0, loss, policy="revolve", slots=3)
    assert seen == [False]


def test_sequential_outside_grad_hands_stages_a_read_only_view() -> None:
    x = np.ones(3)
    with pytest.raises(ca.StageError, match=r"stage 1 \(_bump_input\) wrote into its input"):
        ca.sequential([_bump_input] * 2, x, seed=0)
    assert np.array_equal(x, np.ones(3))


SINES = Chain.repeat(lambda x, p: ca.sin(x), 8)


@pytest.mark.parametrize("option, value, message", [
    ("max_memory", "1MB", r"backprop: max_memory \(bytes\) must be a finite number > 0, got '1MB'"),
    ("max_memory", float("nan"), r"backprop: max_memory \(bytes\) must be a finite number > 0, got nan"),
    ("max_memory", 0, r"backprop: max_memory \(bytes\) must be a finite number > 0, got 0"),
    ("max_memory", -5, r"backprop: max_memory \(bytes\) must be a finite number > 0, got -5"),
    ("seed", -1, r"backprop: seed must be an integer >= 0, got -1"),
    ("seed", 1.5, r"backprop: seed must be an integer >= 0, got 1.5"),
    ("seed", True, r"backprop: seed must be an integer >= 0, got True"),
    ("costs", "fast", r"costs must be 'unit', 'measure' or a list of 8 per-stage costs"),
    ("costs", [1.0] * 7, r"costs must be 'unit', 'measure' or a list of 8 per-stage costs"),
    ("costs", 5, r"costs must be 'unit', 'measure' or a list of 8 per-stage costs"),
    ("costs", [1, -1, 1, 1, 1, 1, 1, 1], r"costs\[1\] \(the cost of stage 2\) must be a finite "
                                         r"number >= 0, got -1"),
    ("costs", [1, 1, float("nan"), 1, 1, 1, 1, 1], r"costs\[2\] .* got nan"),
])
def test_bad_backprop_arguments_are_named_before_anything_runs(option, value, message) -> None:
    calls = itertools.count()
    chain = Chain.repeat(lambda x, p: (next(calls), ca.sin(x))[1], 8)
    with pytest.raises(ca.ArgumentError, match=f"^{message}"):
        ca.backprop(chain, np.ones(3), policy="optimal", slots=3, **{option: value})
    # costs are checked after the profiling sweep (which measures one stage), the rest before
    assert next(calls) == (1 if option == "costs" else 0)


def test_negative_costs_no_longer_mislead_optimal() -> None:
    """With a negative cost, optimal used to plan 15 evaluations where 8 suffice."""
    with pytest.raises(ca.PlanError, match=r"ChainCosts.compute\[3\] \(the cost of stage 4\)"):
        ca.plan("optimal", costs=ca.ChainCosts(8, compute=(1.0,) * 3 + (-1.0,) + (1.0,) * 4),
                slots=8)
    assert ca.plan("optimal", costs=ca.ChainCosts(8), slots=8).forward_evals == 8


@pytest.mark.parametrize("policy, params, error, message", [
    ("rewind", {}, ca.UnknownNameError, "unknown policy 'rewind'; known policies: store_all"),
    ("revolve", {"slots": 0}, ca.PolicyError, "policy 'revolve': slots must be a positive integer"),
    ("revolve", {"slot": 2}, ca.PolicyError, "policy 'revolve' has no parameter slot"),
    ("optimal", {"slots": 2, "resolution": 4}, ca.PolicyError, "resolution applies to "
                                                               "budget_bytes only"),
])
def test_policies_are_checked_at_the_call_not_only_when_differentiating(policy, params, error,
                                                                        message) -> None:
    calls = itertools.count()
    stages = [lambda x, p: (next(calls), ca.sin(x))[1]] * 3
    with pytest.raises(error, match=message):
        ca.sequential(stages, np.ones(2), policy, seed=0, **params)  # not differentiated
    with pytest.raises(error, match=message):
        ca.backprop(stages, np.ones(2), policy=policy, **params)
    assert next(calls) == 0  # refused before any stage ran


@pytest.mark.parametrize("call", [
    lambda: ca.sequential(SINES, np.ones(2), seed=-1),
    lambda: ca.sequential(SINES, np.ones(2), seed=True),
    lambda: ca.profile_chain(SINES, np.ones(2), seed=2.0),
    lambda: ca.seed_random(-3),
])
def test_seeds_are_whole_numbers_everywhere(call) -> None:
    with pytest.raises(ca.ArgumentError, match=r"seed must be an integer >= 0, got "):
        call()


@pytest.mark.parametrize("rate", [False, True, float("nan"), 1.0, -0.1, "0.5"])
def test_dropout_rates_outside_zero_to_one_are_refused(rate) -> None:
    with pytest.raises(ca.OpError, match=r"^dropout: rate must be a number in \[0, 1\), got "):
        ca.dropout(np.ones(3), rate)
