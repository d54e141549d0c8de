"""Edge cases found by review: each once gave a wrong number, a raw exception or a byte
prediction that disagreed with the Meter."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import checkpoint_ad as ca
from checkpoint_ad.chains.chain import Chain, Stage
from checkpoint_ad.chains.plans import Plan, check_plan

POLICIES = [("store_all", {}), ("recompute_all", {}), ("sqrt_n", {}), ("revolve", {"slots": 2}),
            ("optimal", {"slots": 2})]


def test_integer_inputs_and_params_are_refused_not_truncated() -> None:
    chain = Chain.repeat(lambda x, p: ca.tanh(x * 0.3), 2)
    with pytest.raises(ca.OpError, match="integer"):
        ca.backprop(chain, np.array([1, 2, 3]))
    scaled = Chain([Stage(lambda x, p: ca.tanh(x * p), np.array([1, 2, 3]))])
    with pytest.raises(ca.OpError, match="integer"):
        ca.backprop(scaled, np.ones(3))


def test_a_stage_capturing_an_outer_traced_value_is_named() -> None:
    w0 = np.array([2.0, 3.0, 4.0])
    with pytest.raises(ca.StageError, match="params"):
        ca.grad(lambda w: ca.sum(ca.sequential([lambda x, p: x * w] * 2, np.ones(3))))(w0)


@pytest.mark.parametrize("policy, params", POLICIES)
@pytest.mark.parametrize("case", ["view input", "0-d state", "concatenate slice", "add",
                                  "constant", "returns its param", "scalar param"])
def test_predicted_bytes_equal_the_meter_on_odd_stages(case: str, policy: str, params: dict) -> None:
    constant, weights = np.linspace(0, 1, 50), np.linspace(1, 2, 50)
    x0 = np.linspace(-1, 1, 50)
    stages = {
        "view input": [lambda x, p: ca.tanh(x)] * 4,
        "0-d state": [lambda x, p: ca.sin(x)] * 4,
        "concatenate slice": [Stage(lambda x, p: ca.concatenate([x, p])[:50], weights)] * 3,
        "add": [lambda x, p: x + ca.sum(ca.sin(x)), lambda x, p: ca.tanh(x)] * 2,
        "constant": [lambda x, p: x * 0 + constant, lambda x, p: constant] * 2,
        "returns its param": [Stage(lambda x, p: p, weights), lambda x, p: ca.sin(x)] * 2,
        "scalar param": [Stage(lambda x, p: ca.sin(x * p), 2.0)] * 3,
    }[case]
    if case == "view input":
        x0 = np.linspace(-1, 1, 500)[::10]
    if case == "0-d state":
        x0 = np.array(0.5)
    result = ca.backprop(Chain(stages), x0, policy=policy, **params)
    reference = ca.backprop(Chain(stages), x0)
    assert result.stats.peak_bytes == result.stats.predicted_peak_bytes
    assert result.grad_input.shape == np.shape(x0)
    assert np.array_equal(result.grad_input, reference.grad_input)


def test_a_prepared_run_runs_once() -> None:
    from checkpoint_ad.chains.backprop import prepare_backprop
    prepared = prepare_backprop(Chain.repeat(lambda x, p: ca.sin(x), 3), np.ones(2))
    prepared.run()
    with pytest.raises(ca.StageError, match="once"):
        prepared.run()


def test_nested_sequential_with_dropout_is_replayed_exactly() -> None:
    """The inner run's seed comes from the outer stage's stream, so recomputing the outer
    stage replays the inner dropout masks bit for bit (verify=True checks every state)."""
    inner = Chain.repeat(lambda h, p: ca.dropout(ca.tanh(h), 0.5), 3)
    chain = Chain.repeat(lambda x, p: ca.sequential(inner, x * p, "recompute_all"), 3,
                         np.full(8, 1.5))
    x0 = np.linspace(0.1, 1, 8)
    result = ca.backprop(chain, x0, policy="recompute_all", seed=5, verify=True)
    reference = ca.backprop(chain, x0, seed=5)
    assert result.stats.forward_evals == 6
    assert np.array_equal(result.grad_input, reference.grad_input)
    assert np.array_equal(result.grad_params[0], reference.grad_params[0])


def test_tracer_truth_iteration_and_length_follow_numpy() -> None:
    def f(w):
        assert not w[0:1]  # a size-1 traced 0.0 is falsy, like numpy's
        first, second = w  # iteration yields traced rows
        return ca.sum(first * 3.0 + second)
    assert np.array_equal(ca.grad(f)(np.array([0.0, 5.0])), [3.0, 1.0])
    with pytest.raises(ca.OpError, match="0-d"):
        ca.grad(lambda w: ca.sum(w) * len(w))(np.array(1.0))


def test_power_with_a_zero_exponent_at_zero_has_a_zero_gradient_and_no_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.array_equal(ca.grad(lambda x: ca.sum(x ** 0.0))(np.array([0.0, 1.0])), [0, 0])


def test_clip_bounds() -> None:
    low = np.array([-0.5, 0.0, 0.5])
    ca.check_grads(lambda x: ca.sum(ca.clip(x, low, 2.0) * np.arange(3.0)), np.array([0.1, 0.3, 1.0]))
    with pytest.raises(ca.ShapeError, match="a_min"):
        ca.clip(np.ones(3), np.zeros((2, 3)))


def test_out_of_range_axes_are_refused() -> None:
    with pytest.raises(ca.ShapeError, match="axis 5"):
        ca.transpose(np.ones((2, 3)), (0, 5))
    with pytest.raises(ca.ShapeError, match="axis 5"):
        ca.expand_dims(np.ones((2, 3)), 5)


def test_graph_counts_an_array_saved_twice_once() -> None:
    graph = ca.trace(lambda x: ca.sum(x * x), np.ones(1000))
    assert graph.variables[1].op == "multiply" and graph.variables[1].saved_bytes == 8000


def test_malformed_chains_and_plans_get_our_errors() -> None:
    with pytest.raises(ca.StageError, match="stage 1: expected a function"):
        Chain([1, 2])
    with pytest.raises(ca.PlanError, match="unknown action 'jump'"):
        Plan.from_steps(2, [("jump", 1)])
    with pytest.raises(ca.PlanError, match="at least 1 slot"):
        check_plan(Plan.from_steps(1, [("turn", 1)], slots=0))
    with pytest.raises(ca.OpError, match="stack or concatenate"):
        ca.grad(lambda w: ca.sum(ca.multiply([w, w], 2.0)))(np.ones(2))


def test_parameter_bytes_count_a_shared_array_once() -> None:
    weights = np.ones(1000)
    chain = Chain([Stage(lambda x, p: x * p[0], (weights,)),
                   Stage(lambda x, p: x * p["w"], {"w": weights})])
    assert ca.backprop(chain, np.ones(1000)).stats.parameter_bytes == 8000


@pytest.mark.parametrize("fields, message", [
    ({"n": 0}, r"ChainCosts.n \(the number of stages\) must be a positive integer, got 0"),
    ({"n": True}, r"ChainCosts.n .* got True"),
    ({"n": 3, "compute": (1.0, float("nan"), 2.0)}, r"ChainCosts.compute\[1\] .* >= 0, got nan"),
    ({"n": 3, "compute": (1.0, float("inf"), 2.0)}, r"ChainCosts.compute\[1\] .* got inf"),
    ({"n": 3, "compute": (1, 2, -3)}, r"ChainCosts.compute\[2\] \(the cost of stage 3\) must be a "
                                      r"finite number >= 0, got -3"),
    ({"n": 2, "state_bytes": (8, 8.5, 8)}, r"ChainCosts.state_bytes\[1\] \(bytes\) must be an "
                                           r"integer >= 0, got 8.5"),
    ({"n": 2, "tape_bytes": (8, -1)}, r"ChainCosts.tape_bytes\[1\] .* got -1"),
    ({"n": 2, "tape_input_bytes": (0, True)}, r"ChainCosts.tape_input_bytes\[1\] .* got True"),
])
def test_chain_costs_are_checked_at_construction(fields: dict, message: str) -> None:
    with pytest.raises(ca.PlanError, match=f"^{message}"):
        ca.ChainCosts(**fields)


def test_chain_costs_keep_valid_values_as_numbers() -> None:
    costs = ca.ChainCosts(2, compute=(np.float32(2.0), 0), state_bytes=(np.int64(8), 8, 0))
    assert costs.compute == (2.0, 0.0) and costs.state_bytes == (8, 8, 0)
    assert all(type(value) is int for value in costs.state_bytes)
