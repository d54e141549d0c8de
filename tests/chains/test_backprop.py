"""Checkpointed back-propagation: every policy gives store_all's gradients bit for bit, the
counts of docs/cost_model.md, and bytes that the symbolic prediction matches exactly."""
from __future__ import annotations

import numpy as np
import pytest

import checkpoint_ad as ca
from checkpoint_ad.chains.backprop import backprop, plan
from checkpoint_ad.chains.chain import Chain, Stage
from checkpoint_ad.engine.rng import dropout
from checkpoint_ad.engine.trees import flatten
from closed_forms import expected_counts, revolve_evals
from helpers import stored_bytes_peak


CASES = [("store_all", {}), ("recompute_all", {}), ("sqrt_n", {"segments": 1}),
         ("sqrt_n", {"segments": 3}), ("revolve", {"slots": 1}), ("revolve", {"slots": 2}),
         ("revolve", {"slots": 4}), ("optimal", {"slots": 2}), ("optimal", {"slots": 3}),
         ("optimal", {"slots": 3, "tapes": False})]


def fig69_chain(n: int) -> Chain:
    return Chain.repeat(lambda x, p: ca.sin(x), n)


def mlp_chain(n: int, width: int = 6, seed: int = 0) -> Chain:
    rng = np.random.default_rng(seed)
    layers = [(rng.standard_normal((width, width)) / np.sqrt(width), rng.standard_normal(width))
              for _ in range(n)]
    return Chain([Stage(lambda x, p: ca.tanh(x @ p[0] + p[1]), layer) for layer in layers])


def run(chain: Chain, x0: np.ndarray, policy: str, params: dict, **options):
    return backprop(chain, x0, policy=policy, seed=7, **params, **options)


def assert_identical(result, reference) -> None:
    assert np.array_equal(result.value, reference.value)
    assert np.array_equal(result.grad_input, reference.grad_input)
    for got, want in zip(result.grad_params, reference.grad_params):
        for a, b in zip(flatten(got)[0], flatten(want)[0]):
            assert np.array_equal(a, b)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 21, 34, 60])
@pytest.mark.parametrize("policy, params", CASES, ids=lambda v: str(v))
def test_fig69_counts_bytes_and_gradients(n: int, policy: str, params: dict) -> None:
    chain, x0 = fig69_chain(n), np.linspace(-1.0, 1.0, 5)
    reference = run(chain, x0, "store_all", {})
    result = run(chain, x0, policy, params)
    assert_identical(result, reference)
    stats = result.stats
    assert (stats.forward_evals, stats.peak_stored) == (result.plan.forward_evals,
                                                        result.plan.peak_stored)
    if policy != "optimal":
        assert (stats.forward_evals, stats.peak_stored) == expected_counts(policy, n, params)
    assert stats.peak_bytes == stats.predicted_peak_bytes


@pytest.mark.parametrize("policy, params", CASES, ids=lambda v: str(v))
def test_mlp_chain_matches_store_all_and_the_formulas(policy: str, params: dict) -> None:
    n = 12
    chain, x0 = mlp_chain(n), np.random.default_rng(1).standard_normal((4, 6))
    reference = run(chain, x0, "store_all", {})
    result = run(chain, x0, policy, params)
    assert_identical(result, reference)
    if policy != "optimal":
        assert (result.stats.forward_evals, result.stats.peak_stored) == expected_counts(policy, n, params)
    assert result.stats.peak_bytes == result.stats.predicted_peak_bytes


def test_gradients_match_the_plain_engine_and_finite_differences() -> None:
    chain = mlp_chain(4, width=3)
    x0 = np.random.default_rng(2).standard_normal((2, 3))
    result = run(chain, x0, "revolve", {"slots": 2})

    def plain(x, *layers):
        for W, b in layers:
            x = ca.tanh(x @ W + b)
        return ca.sum(x)

    layers = [s.params for s in chain.stages]
    value, grads = ca.value_and_grad(plain, tuple(range(5)))(x0, *layers)
    assert np.allclose(value, result.value, rtol=1e-14)
    assert np.allclose(grads[0], result.grad_input, rtol=1e-12, atol=1e-14)
    for got, want in zip(result.grad_params, grads[1:]):
        assert np.allclose(got[0], want[0], rtol=1e-12, atol=1e-14)
    from checkpoint_ad.engine.gradcheck import numerical_gradient
    numeric = numerical_gradient(lambda x: run(chain, x, "sqrt_n", {}).value, [x0], 0, 1e-6)
    assert np.allclose(result.grad_input, numeric, rtol=1e-5, atol=1e-8)


def test_shared_parameters_sum_their_gradients() -> None:
    rng = np.random.default_rng(3)
    W = rng.standard_normal((3, 3)) / 2
    chain = Chain.repeat(lambda x, p: ca.tanh(x @ p), 5, W)
    x0 = rng.standard_normal(3)

    def plain(W):
        x = x0
        for _ in range(5):
            x = ca.tanh(x @ W)
        return ca.sum(x)

    result = run(chain, x0, "recompute_all", {})
    assert np.allclose(result.grad_params[0], ca.grad(plain)(W), rtol=1e-12)
    assert all(g is result.grad_params[0] for g in result.grad_params)


def test_custom_loss_and_float32_stays_float32() -> None:
    chain = fig69_chain(6)
    x0 = np.linspace(0, 1, 4, dtype=np.float32)
    result = backprop(chain, x0, loss=lambda x: ca.sum(x * x), policy="sqrt_n")
    assert result.grad_input.dtype == np.float32
    assert result.value.dtype == np.float32


def dropout_chain(n: int) -> Chain:
    rng = np.random.default_rng(4)
    layers = [(rng.standard_normal((5, 5)) / 2, rng.standard_normal(5)) for _ in range(n)]
    return Chain([Stage(lambda x, p: dropout(ca.tanh(x @ p[0] + p[1]), 0.5), layer)
                  for layer in layers])


@pytest.mark.parametrize("policy, params", CASES, ids=lambda v: str(v))
def test_dropout_is_replayed_exactly_under_every_policy(policy: str, params: dict) -> None:
    chain, x0 = dropout_chain(9), np.ones((3, 5))
    assert_identical(run(chain, x0, policy, params), run(chain, x0, "store_all", {}))


def test_dropout_streams_depend_on_the_seed() -> None:
    chain, x0 = dropout_chain(3), np.ones((3, 5))
    first = backprop(chain, x0, seed=1).grad_input
    assert np.array_equal(first, backprop(chain, x0, seed=1).grad_input)
    assert not np.array_equal(first, backprop(chain, x0, seed=2).grad_input)


@pytest.mark.parametrize("policy, params", CASES, ids=lambda v: str(v))
def test_sequential_inside_value_and_grad(policy: str, params: dict) -> None:
    from checkpoint_ad.chains.sequential import sequential
    rng = np.random.default_rng(5)
    W, x0 = rng.standard_normal((4, 4)) / 2, rng.standard_normal((2, 4))

    def model(x, W, checkpointed):
        x = x * 1.5
        if checkpointed:
            x = sequential(Chain.repeat(lambda h, p: ca.tanh(h @ p), 6, W), x, policy, **params)
        else:
            for _ in range(6):
                x = ca.tanh(x @ W)
        return ca.sum(x * x)

    value, grads = ca.value_and_grad(lambda x, W: model(x, W, True), (0, 1))(x0, W)
    want_value, want = ca.value_and_grad(lambda x, W: model(x, W, False), (0, 1))(x0, W)
    assert np.array_equal(value, want_value)
    assert np.allclose(grads[0], want[0], rtol=1e-13, atol=1e-15)
    assert np.allclose(grads[1], want[1], rtol=1e-13, atol=1e-15)


def test_ten_thousand_stages_under_revolve() -> None:
    result = backprop(fig69_chain(10_000), np.array([0.5]), policy="revolve", slots=20,
                      trace_memory=False)
    assert result.stats.forward_evals == revolve_evals(10_000, 20)
    assert result.stats.peak_stored == 20


def test_bytes_by_kind_add_up_and_parameters_are_apart() -> None:
    chain, x0 = mlp_chain(8, width=16), np.ones((32, 16))
    stats = run(chain, x0, "sqrt_n", {}).stats
    assert sum(stats.peak_bytes_by_kind.values()) == stats.peak_bytes
    assert stats.parameter_bytes == stats.parameter_gradient_bytes == 8 * (16 * 16 + 16) * 8
    state = 32 * 16 * 8
    # sqrt_n, n=8, k=3: the peak holds at least the stored states and one cotangent
    assert stats.peak_bytes >= (3 + 8 // 3 - 1) * state + state


def test_measured_peak_agrees_with_the_meter() -> None:
    """tracemalloc sees the meter's bytes plus the temporaries inside one stage's forward or
    VJP and Python objects, never less than the meter. Here a state and W are 32 KiB each; a
    dense tanh layer's forward makes x@W and x@W+b, its VJP g*(1-y*y) (one buffer), g@W.T and
    x.T@g, some alive together, so the excess stays below five states plus 64 KiB of Python
    objects."""
    n, batch, width = 16, 64, 64
    chain, x0 = mlp_chain(n, width=width), np.ones((batch, width))
    state = batch * width * 8
    for policy, params in CASES:
        stats = run(chain, x0, policy, params).stats
        assert stats.peak_bytes <= stats.measured_peak_bytes <= stats.peak_bytes + 5 * state + 65536, \
            (policy, params, stats)


def test_plan_function_and_its_printout() -> None:
    made = plan("revolve", n=20, slots=3)
    assert (made.forward_evals, made.peak_stored) == (revolve_evals(20, 3), 3)
    text = str(made)
    assert text.splitlines()[0].startswith("plan revolve(slots=3) for n=20")
    assert "turn 20" in text


@pytest.mark.parametrize("states", [3, 6, 10, 18])
def test_optimal_budget_bytes_hold_in_real_memory_and_sharing_helps(states: int) -> None:
    import dataclasses
    from checkpoint_ad.chains.chain import profile_chain
    from checkpoint_ad.chains.policies import make_plan
    chain, x0 = mlp_chain(40, width=8), np.ones((4, 8))
    profile = profile_chain(chain, x0)
    costs = profile.costs()
    budget = states * costs.state_bytes[0]
    shared = make_plan("optimal", costs, store_budget_bytes=budget)
    additive = make_plan("optimal", dataclasses.replace(costs, tape_input_bytes=(0,) * costs.n),
                         store_budget_bytes=budget)
    assert stored_bytes_peak(shared, profile) <= budget
    assert shared.forward_evals <= additive.forward_evals
    result = run(chain, x0, "optimal", {"store_budget_bytes": budget})
    assert result.stats.forward_evals == shared.forward_evals
    whole = ca.minimum_budget(costs) + budget  # budget_bytes: the Meter's whole peak
    result = run(chain, x0, "optimal", {"budget_bytes": whole})
    assert result.stats.peak_bytes <= whole < run(chain, x0, "store_all", {}).stats.peak_bytes


def test_a_reused_profile_gives_the_same_run_and_a_wrong_one_is_refused() -> None:
    chain, x0 = mlp_chain(6), np.ones((2, 6))
    profile = ca.profile_chain(chain, x0)
    fresh = run(chain, x0, "revolve", {"slots": 2})
    reused = run(chain, x0, "revolve", {"slots": 2}, profile=profile)
    assert_identical(reused, fresh)
    assert reused.stats.predicted_peak_bytes == fresh.stats.predicted_peak_bytes
    with pytest.raises(ca.StageError, match="6 stages"):
        run(mlp_chain(5), x0, "store_all", {}, profile=profile)
    with pytest.raises(ca.StageError, match="verify=True"):
        run(chain, x0, "store_all", {}, profile=profile, verify=True)


def test_the_profiling_sweep_measures_each_kind_of_stage_once() -> None:
    calls = {"f": 0, "g": 0}

    def f(x, p):
        calls["f"] += 1
        return ca.tanh(x @ p)

    def g(x, p):
        calls["g"] += 1
        return ca.sin(x)

    W = np.eye(3) / 2
    chain = Chain([Stage(f, W)] * 3 + [Stage(g)] + [Stage(f, W.copy())] * 2)
    profile = ca.profile_chain(chain, np.ones(3))
    # f measured once; two plain evaluations bring x up to g's input; g measured once
    assert calls == {"f": 3, "g": 1}
    assert profile.stages[4] == profile.stages[0]
    full = ca.profile_chain(chain, np.ones(3), verify=True)  # every state: every stage
    assert calls == {"f": 3 + 5, "g": 2}
    assert [s.state_bytes for s in full.stages] == [s.state_bytes for s in profile.stages]
