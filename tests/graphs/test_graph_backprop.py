"""backprop_graph end to end: every graph policy gives value_and_grad's gradients bit for bit,
the predicted peak equals the Meter's, peaks stay within budgets, randomness is replayed."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import checkpoint_ad as ca
from checkpoint_ad.engine import rng
from checkpoint_ad.graphs.policies.optimal import minimum_budget

UNARY = [ca.sin, ca.tanh, ca.sigmoid, ca.relu, ca.exp, ca.cos, ca.square]
BINARY = [ca.add, ca.multiply, ca.subtract, ca.maximum]


def random_function(program: list[tuple[int, int, int, int]]):
    """A DAG function of x: each instruction (kind, a, b, op) applies a unary op to value a,
    or a binary op to values a and b (indices modulo the values so far); the loss sums the
    last value and the squared first one, so shared subexpressions abound."""
    def f(x):
        values = [x]
        for kind, a, b, op in program:
            left, right = values[a % len(values)], values[b % len(values)]
            if kind == 0:
                values.append(UNARY[op % len(UNARY)](left))
            elif kind == 1:
                values.append(BINARY[op % len(BINARY)](left, right))
            else:
                values.append(ca.transpose(ca.reshape(left, (3, 2))).reshape((2, 3)) * 0.5)
        return ca.sum(values[-1]) + ca.sum(values[1] * values[1])
    return f


def assert_exact(result: ca.GraphResult, value: float, gradient: np.ndarray) -> None:
    assert result.value == value
    assert np.array_equal(result.grads, gradient)
    assert result.stats.peak_bytes == result.stats.predicted_peak_bytes == result.plan.peak_bytes
    assert result.stats.forward_evals == result.plan.forward_evals


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 50), st.integers(0, 50),
                          st.integers(0, 50)), min_size=1, max_size=9),
       st.floats(0, 1), st.sampled_from(["store_all", "recompute_all", "save_ops", "optimal"]))
def test_random_graphs_under_every_policy(program, fraction, policy) -> None:
    x = np.linspace(-1.0, 1.5, 6).reshape(2, 3)
    f = random_function(program)
    value, gradient = ca.value_and_grad(f)(x)
    params = {}
    if policy == "save_ops":
        params = {"ops": ("tanh", "multiply")}
    if policy == "optimal":
        costs = ca.backprop_graph(f, x).program.costs
        least, most = minimum_budget(costs), ca.plan_graph("store_all", costs).peak_bytes
        params = {"budget_bytes": int(least + fraction * (most - least)),
                  "time_limit": 600.0}  # exact search, however loaded the machine
    result = ca.backprop_graph(f, x, policy=policy, **params)
    assert_exact(result, value, gradient)
    if policy == "optimal":
        assert result.stats.peak_bytes <= params["budget_bytes"]


def residual_mlp(x, weights):
    h = x
    for w in weights:
        h = h + ca.tanh(h @ w)
    return ca.sum(h * h)


@pytest.mark.parametrize("policy, params", [("store_all", {}), ("recompute_all", {}),
                                            ("save_ops", {"ops": ("matmul",)}),
                                            ("optimal", {"budget_bytes": 2500})])
def test_residual_mlp_gradients_of_every_argument(policy, params) -> None:
    generator = np.random.default_rng(1)
    x = generator.normal(size=(4, 8))
    weights = [generator.normal(size=(8, 8)) * 0.3 for _ in range(3)]
    value, grads = ca.value_and_grad(residual_mlp, argnums=(0, 1))(x, weights)
    result = ca.backprop_graph(residual_mlp, x, weights, argnums=(0, 1), policy=policy, **params)
    assert result.value == value
    assert np.array_equal(result.grads[0], grads[0])
    assert all(np.array_equal(a, b) for a, b in zip(result.grads[1], grads[1]))
    assert result.stats.peak_bytes == result.stats.predicted_peak_bytes
    assert result.stats.input_bytes == x.nbytes + sum(w.nbytes for w in weights)
    assert result.stats.gradient_bytes == result.stats.input_bytes
    assert set(result.stats.peak_bytes_by_kind) == {"value", "cotangent"}
    assert sum(result.stats.peak_bytes_by_kind.values()) == result.stats.peak_bytes


def test_views_are_counted_exactly() -> None:
    def f(x):
        y = ca.sin(x)
        return ca.sum(ca.transpose(y)[1:] * ca.reshape(y, (4, 3))[:2, 1:].T[:, :1].T[0][:, None])
    x = np.arange(12.0).reshape(4, 3)
    value, gradient = ca.value_and_grad(f)(x)
    costs = ca.backprop_graph(f, x).program.costs
    for policy, params in (("store_all", {}), ("recompute_all", {}),
                           ("optimal", {"budget_bytes": minimum_budget(costs)})):
        assert_exact(ca.backprop_graph(f, x, policy=policy, **params), value, gradient)


def test_dropout_is_replayed_under_every_policy() -> None:
    def f(x):
        h = rng.dropout(ca.tanh(x), 0.5)
        return ca.sum(ca.sin(h) * h)
    x = np.linspace(0, 1, 50)
    results = [ca.backprop_graph(f, x, policy=p, seed=7, verify=True)
               for p in ("store_all", "recompute_all")]
    token = rng.enter_stage(7, 0)
    try:
        value, gradient = ca.value_and_grad(f)(x)
    finally:
        rng.leave_stage(token)
    for result in results:
        assert result.value == value and np.array_equal(result.grads, gradient)
    assert results[1].stats.forward_evals > results[0].stats.forward_evals
    assert results[0].stats.constant_bytes >= x.nbytes  # the mask is held by the graph


def test_max_memory_refuses_before_running() -> None:
    with pytest.raises(ca.BudgetError, match="more than max_memory=10"):
        ca.backprop_graph(lambda x: ca.sum(ca.sin(x)), np.ones(10), max_memory=10)


@pytest.mark.parametrize("call, error, message", [
    (lambda: ca.backprop_graph("f", np.ones(2)), ca.ArgumentError, "must be a function"),
    (lambda: ca.backprop_graph(lambda x: x * 2.0, np.ones(2)), ca.NonScalarOutputError,
     "must be a scalar"),
    (lambda: ca.backprop_graph(lambda x: 3.0, np.ones(2)), ca.OpError, "does not depend"),
    (lambda: ca.backprop_graph(lambda x: ca.sum(x), np.ones(2), policy="nope"),
     ca.UnknownNameError, "known graph policies"),
    (lambda: ca.backprop_graph(lambda x: ca.sum(ca.sin(x)), np.ones(2), policy="optimal",
                               budget_bytes="1MB"), ca.PolicyError, "budget_bytes"),
    (lambda: ca.backprop_graph(lambda x: ca.sum(ca.sin(x)), np.ones(2), policy="store_all",
                               slots=3), ca.PolicyError, "has no parameter slots"),
])
def test_bad_input_gets_the_package_error(call, error, message) -> None:
    with pytest.raises(error, match=message):
        call()
