"""value_and_grad, grad, trace and the tape: the Deep Learning book's section 6.5 examples,
deep chains, shared subexpressions, dtypes, argument structures, graphs and residuals."""
from __future__ import annotations

import numpy as np
import pytest

import checkpoint_ad as ad
from checkpoint_ad.engine.ops import OPS, Saves, Tape, Tracer


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


# --- section 6.5 examples ---------------------------------------------------------------------


def test_product_gradients_are_the_other_factor(rng):
    """Fig. 6.8a: z = x * y gives dz/dx = y and dz/dy = x."""
    x, y = 1.5, -0.25
    z, (gx, gy) = ad.value_and_grad(lambda a, b: a * b, (0, 1))(x, y)
    assert z == pytest.approx(x * y)
    assert gx == pytest.approx(y) and gy == pytest.approx(x)

    xs, ys = rng.standard_normal(4), rng.standard_normal(4)
    gx, gy = ad.grad(lambda a, b: ad.sum(a * b), (0, 1))(xs, ys)
    np.testing.assert_allclose(gx, ys, rtol=1e-14)
    np.testing.assert_allclose(gy, xs, rtol=1e-14)


def test_logistic_regression_matches_analytic_gradient(rng):
    """Fig. 6.8b: y_hat = sigma(x^T w + b); d y_hat / dw = sigma'(a) x, d/db = sigma'(a)."""
    x, w, b = rng.standard_normal(5), rng.standard_normal(5), 0.3

    def predict(weights, bias):
        return ad.sigmoid(ad.dot(x, weights) + bias)

    value, (gw, gb) = ad.value_and_grad(predict, (0, 1))(w, b)
    a = x @ w + b
    slope = sigmoid(a) * (1 - sigmoid(a))
    assert value == pytest.approx(sigmoid(a), rel=1e-12)
    np.testing.assert_allclose(gw, slope * x, rtol=1e-10)
    assert gb == pytest.approx(slope, rel=1e-10)
    assert isinstance(gb, np.ndarray) and gb.shape == () and gb.dtype == np.float64


def test_relu_layer_matches_analytic_mask(rng):
    """Fig. 6.8c: H = max{0, XW + b}; with loss sum(H * G) the gradients go through the mask."""
    X, W, b = rng.standard_normal((6, 4)), rng.standard_normal((4, 3)), rng.standard_normal(3)
    G = rng.standard_normal((6, 3))

    def loss(inputs, weights, bias):
        return ad.sum(ad.relu(inputs @ weights + bias) * G)

    value, (gX, gW, gb) = ad.value_and_grad(loss, (0, 1, 2))(X, W, b)
    pre = X @ W + b
    assert np.all(np.abs(pre) > 1e-9)  # no input sits on the kink
    masked = G * (pre > 0)
    assert value == pytest.approx(np.sum(np.maximum(pre, 0) * G), rel=1e-12)
    np.testing.assert_allclose(gW, X.T @ masked, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gb, masked.sum(axis=0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gX, masked @ W.T, rtol=1e-10, atol=1e-12)
    assert 0 < np.count_nonzero(pre > 0) < pre.size  # both sides of the mask are exercised


def test_linear_regression_with_weight_decay(rng):
    """Fig. 6.8d: J = mean((Xw - y)^2) + lambda * sum(w^2); w is used twice (shared)."""
    m, n, decay = 8, 3, 0.1
    X, y, w = rng.standard_normal((m, n)), rng.standard_normal(m), rng.standard_normal(n)

    def cost(weights):
        return ad.mean(ad.square(X @ weights - y)) + decay * ad.sum(weights * weights)

    value, g = ad.value_and_grad(cost)(w)
    residual = X @ w - y
    assert value == pytest.approx(np.mean(residual ** 2) + decay * np.sum(w ** 2), rel=1e-12)
    np.testing.assert_allclose(g, 2 * X.T @ residual / m + 2 * decay * w, rtol=1e-10)


@pytest.mark.parametrize("f, derivative", [
    (ad.sin, np.cos),
    (ad.tanh, lambda v: 1 - np.tanh(v) ** 2),
    (ad.exp, np.exp),
], ids=["sin", "tanh", "exp"])
def test_figure_6_9_chain_rule(f, derivative):
    """x = f(w), y = f(x), z = f(y): dz/dw = f'(y) f'(x) f'(w)."""
    w = 0.7
    z, g = ad.value_and_grad(lambda v: f(f(f(v))))(w)
    fn = {ad.sin: np.sin, ad.tanh: np.tanh, ad.exp: np.exp}[f]
    x = fn(w)
    y = fn(x)
    assert z == pytest.approx(fn(y), rel=1e-14)
    assert g == pytest.approx(derivative(y) * derivative(x) * derivative(w), rel=1e-12)


# --- depth, sharing -----------------------------------------------------------------------------


LENGTH = 10_000


def long_chain(x):
    for _ in range(LENGTH):
        x = ad.sin(x)
    return x


def test_chain_of_ten_thousand_ops_differentiates():
    value, g = ad.value_and_grad(long_chain)(1.0)
    expected_value, expected_grad = 1.0, 1.0
    for _ in range(LENGTH):
        expected_grad *= np.cos(expected_value)
        expected_value = np.sin(expected_value)
    assert value == pytest.approx(expected_value, rel=1e-12)
    assert g == pytest.approx(expected_grad, rel=1e-9)


def test_chain_of_ten_thousand_ops_traces():
    graph = ad.trace(long_chain, np.array([0.5, 1.0]))
    assert len(graph.variables) == LENGTH + 1
    assert graph.operations == LENGTH
    assert graph.output == LENGTH
    assert str(graph).count("sin(") == LENGTH
    assert ad.trace(long_chain, 1.0).to_dot().count("->") == LENGTH


def test_shared_subexpression_gradients_accumulate():
    """f(x) = x*x + x: x reaches the output along three paths, f'(x) = 2x + 1."""
    x = np.array([-1.5, 0.0, 2.0])
    np.testing.assert_allclose(ad.grad(lambda a: ad.sum(a * a + a))(x), 2 * x + 1)
    y = ad.sin(0.3)  # an intermediate used by two later ops
    g = ad.grad(lambda a: (lambda s: s * s + ad.exp(s))(ad.sin(a)))(0.3)
    assert g == pytest.approx((2 * y + np.exp(y)) * np.cos(0.3), rel=1e-12)


def test_same_tracer_in_both_operands_of_one_op():
    g = ad.grad(lambda a: ad.sum(ad.add(a, a) + ad.divide(a, a) + ad.maximum(a, a)))(
        np.array([1.0, 2.0]))
    np.testing.assert_allclose(g, [3.0, 3.0])  # 2 + 0 + (0.5 + 0.5)


# --- dtypes --------------------------------------------------------------------------------------


def mlp_loss(params, x):
    hidden = ad.tanh(x @ params["W1"] + params["b1"])
    return ad.mean(ad.square(ad.sigmoid(hidden @ params["W2"])))


def mlp_params(rng, dtype):
    return {"W1": rng.standard_normal((3, 4)).astype(dtype), "b1": np.zeros(4, dtype),
            "W2": rng.standard_normal((4, 2)).astype(dtype)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(rng, dtype):
    params, x = mlp_params(rng, dtype), rng.standard_normal((5, 3)).astype(dtype)
    value, g = ad.value_and_grad(mlp_loss)(params, x)
    assert value.dtype == dtype
    for name, array in params.items():
        assert g[name].dtype == dtype and g[name].shape == array.shape
    v, gx = ad.value_and_grad(lambda a: ad.sum(ad.sin(a) * 2.0 + ad.log_softmax(a)))(x)
    assert v.dtype == dtype and gx.dtype == dtype


def test_float32_gradient_agrees_with_float64(rng):
    params, x = mlp_params(rng, np.float64), rng.standard_normal((5, 3))
    g64 = ad.grad(mlp_loss)(params, x)
    g32 = ad.grad(mlp_loss)({k: v.astype(np.float32) for k, v in params.items()},
                            x.astype(np.float32))
    for name in params:
        np.testing.assert_allclose(g32[name], g64[name], rtol=1e-4, atol=1e-5)


def test_float32_input_mixed_with_float64_constant_gets_float32_gradient():
    x = np.ones(3, np.float32)
    value, g = ad.value_and_grad(lambda a: ad.sum(a * np.arange(3.0)))(x)
    assert value.dtype == np.float64  # numpy's promotion for the value
    assert g.dtype == np.float32  # the gradient has the argument's dtype
    np.testing.assert_array_equal(g, [0.0, 1.0, 2.0])


@pytest.mark.parametrize("scalar", [2.0, 2])
def test_python_number_argument_gets_float64_zero_d_gradient(scalar):
    value, g = ad.value_and_grad(lambda a: a * a * a)(scalar)
    assert isinstance(g, np.ndarray) and g.shape == () and g.dtype == np.float64
    assert g == pytest.approx(12.0)
    assert value == pytest.approx(8.0)


def test_integer_array_argument_is_rejected():
    with pytest.raises(ad.OpError, match="integer"):
        ad.grad(lambda a: ad.sum(a))(np.arange(3))


# --- arguments ---------------------------------------------------------------------------------


def test_argnums_int_and_tuple(rng):
    x, y, z = rng.standard_normal(3), rng.standard_normal(3), rng.standard_normal(3)

    def f(a, b, c):
        return ad.sum(a * b * ad.exp(c))

    gy = ad.grad(f, 1)(x, y, z)
    assert isinstance(gy, np.ndarray)
    np.testing.assert_allclose(gy, x * np.exp(z))
    both = ad.grad(f, (0, 2))(x, y, z)
    assert isinstance(both, tuple) and len(both) == 2
    np.testing.assert_allclose(both[0], y * np.exp(z))
    np.testing.assert_allclose(both[1], x * y * np.exp(z))
    single = ad.grad(f, (1,))(x, y, z)
    assert isinstance(single, tuple) and len(single) == 1
    np.testing.assert_allclose(ad.grad(f, -1)(x, y, z), both[1])
    value, _ = ad.value_and_grad(f, (0, 1, 2))(x, y, z)
    assert value == pytest.approx(np.sum(x * y * np.exp(z)))


def test_nested_arguments_get_gradients_of_the_same_structure():
    params = {"w": np.array([1.0, 2.0]), "pair": (np.array(3.0), [np.array([[0.5]]), 4.0]),
              "none": None}

    def f(p):
        first, (matrix, number) = p["pair"]
        return ad.sum(p["w"] * first) + ad.sum(matrix) * number + ad.sum(p["w"] * p["w"])

    g = ad.grad(f)(params)
    assert set(g) == {"w", "pair", "none"} and g["none"] is None
    assert isinstance(g["pair"], tuple) and isinstance(g["pair"][1], list)
    np.testing.assert_allclose(g["w"], 3.0 + 2 * params["w"])
    assert g["pair"][0] == pytest.approx(3.0)
    np.testing.assert_allclose(g["pair"][1][0], [[4.0]])
    assert g["pair"][1][0].shape == (1, 1)
    assert g["pair"][1][1] == pytest.approx(0.5)


def test_constant_argument_is_respected():
    x, c = np.array([1.0, 2.0]), np.array([3.0, -1.0])
    seen = []

    def f(a, constant):
        seen.append(type(constant))
        return ad.sum(a * constant * constant)

    np.testing.assert_allclose(ad.grad(f)(x, c), c * c)
    assert seen == [np.ndarray]  # not traced
    np.testing.assert_array_equal(c, [3.0, -1.0])  # not modified
    np.testing.assert_allclose(ad.grad(f, 1)(x, c), 2 * x * c)


def test_keyword_arguments_are_constants():
    g = ad.grad(lambda a, scale=1.0: ad.sum(a) * scale)(np.ones(2), scale=3.0)
    np.testing.assert_array_equal(g, [3.0, 3.0])


def test_argument_that_is_ignored_gets_zero_gradient():
    x, y = np.array([[1.0, 2.0]], np.float32), np.array([5.0])
    gx, gy = ad.grad(lambda a, b: ad.sum(b * 2.0), (0, 1))(x, y)
    np.testing.assert_array_equal(gx, np.zeros((1, 2)))
    assert gx.dtype == np.float32 and gx.shape == (1, 2)
    np.testing.assert_array_equal(gy, [2.0])
    value, g = ad.value_and_grad(lambda a: 3.5)(np.ones(3))
    assert value == 3.5
    np.testing.assert_array_equal(g, np.zeros(3))


def test_identity_function_has_unit_gradient():
    assert ad.grad(lambda a: a)(4.0) == 1.0
    np.testing.assert_array_equal(ad.grad(lambda a: a)(np.array([4.0])), [1.0])


def test_gradient_is_a_fresh_array_not_shared_with_the_engine():
    x = np.array([1.0, 2.0])
    g1, g2 = ad.grad(lambda a, b: ad.sum(a + b), (0, 1))(x, x)
    g1[0] = 100.0
    assert g2[0] == 1.0
    assert x[0] == 1.0


def test_repeated_calls_are_independent():
    f = ad.grad(lambda a: ad.sum(a * a))
    np.testing.assert_array_equal(f(np.array([1.0])), [2.0])
    np.testing.assert_array_equal(f(np.array([3.0])), [6.0])


def test_check_grads_passes_on_a_correct_composite(rng):
    ad.check_grads(lambda w, x: mlp_loss({"W1": w, "b1": np.zeros(4), "W2": np.ones((4, 2))}, x),
                   rng.standard_normal((3, 4)), rng.standard_normal((5, 3)))


# --- graph ---------------------------------------------------------------------------------------


def graph_example():
    return ad.trace(lambda x, w: ad.sum(ad.tanh(x @ w) * x[:, :1]),
                    np.ones((2, 3)), np.ones((3, 4)))


def test_trace_lists_variables_and_ops():
    graph = graph_example()
    text = str(graph)
    ops = ["matmul", "tanh", "getitem", "multiply", "sum"]
    assert [v.op for v in graph.variables] == [None, None] + ops
    assert text.splitlines()[0] == "graph: 2 inputs, 5 operations, output v6"
    assert len(text.splitlines()) == 1 + len(graph.variables)
    for op in ops:
        assert f"{op}(" in text
    assert "v2 = matmul(v0, v1)" in text
    assert text.count("= input") == 2
    assert graph.variables[2].shape == (2, 4) and graph.variables[2].dtype == "float64"
    # matmul keeps both inputs, tanh its output, sum nothing
    assert graph.variables[2].saved_bytes == 2 * 3 * 8 + 3 * 4 * 8
    assert graph.variables[3].saved_bytes == 2 * 4 * 8
    assert graph.variables[6].saved_bytes == 0


def test_trace_marks_constant_operands():
    graph = ad.trace(lambda x: x * 2.0 + np.ones(3), np.ones(3))
    assert graph.variables[1].inputs == (0, None)
    assert "multiply(v0, const)" in str(graph)


def test_to_dot_is_graphviz_text():
    graph = graph_example()
    dot = graph.to_dot()
    assert dot.startswith("digraph")
    assert dot.rstrip().endswith("}")
    edges = sum(i is not None for v in graph.variables for i in v.inputs)
    assert dot.count("->") == edges == 7  # matmul 2, tanh 1, getitem 1, multiply 2, sum 1
    assert 'v0 -> v2 [label="matmul:0"]' in dot and 'v1 -> v2 [label="matmul:1"]' in dot
    assert all(f"  v{v.index} [" in dot for v in graph.variables)


def test_node_count_is_inputs_plus_ops():
    graph = graph_example()
    inputs = sum(v.op is None for v in graph.variables)
    assert inputs == 2
    assert len(graph.variables) == inputs + graph.operations == 7
    assert [v.index for v in graph.variables] == list(range(7))
    # inputs of an op always come earlier: the order is topological
    assert all(i < v.index for v in graph.variables for i in v.inputs if i is not None)


def test_trace_of_nested_arguments_and_untraced_output():
    graph = ad.trace(lambda p: ad.sum(p["a"] * p["b"][0]), {"a": np.ones(2), "b": (np.ones(2),)})
    assert sum(v.op is None for v in graph.variables) == 2
    assert ad.trace(lambda x: 1.0, np.ones(2)).output is None


# --- tape, residuals --------------------------------------------------------------------------


def record(function, value):
    tape = Tape()
    x = tape.variable(value)
    return tape, x, function(x)


def test_residuals_and_cotangents_are_released_after_backward():
    tape, x, out = record(lambda v: ad.sum(ad.exp(ad.sin(v)) * v + ad.tanh(v) ** 2.0 @ v),
                          np.array([0.1, 0.2, 0.3]))
    assert len(tape.residual_arrays()) > 0
    assert any(node.residuals for node in tape.nodes)
    tape.backward(out.node, np.ones(()))
    assert all(node.residuals == () for node in tape.nodes)
    assert all(node.cot is None for node in tape.nodes)
    assert tape.residual_arrays() == []
    v = np.array([0.1, 0.2, 0.3])
    expected = ad.grad(lambda a: ad.sum(ad.exp(ad.sin(a)) * a + ad.tanh(a) ** 2.0 @ a))(v)
    np.testing.assert_allclose(x.node.cot, expected)


def test_unreached_nodes_release_their_residuals_too():
    tape, x, out = record(lambda v: ad.sum(v * 2.0), np.ones(2))
    side = ad.exp(x)  # computed but not part of the output
    assert side.node.residuals
    tape.backward(out.node, np.ones(()))
    assert side.node.residuals == ()
    assert all(node.residuals == () for node in tape.nodes)


def test_declared_residuals():
    value = np.array([0.5, 1.5])
    tape = Tape()
    x, y = tape.variable(value), tape.variable(np.array([2.0, 3.0]))

    s = ad.sin(x)
    assert OPS["sin"].saves is Saves.INPUTS
    assert len(s.node.residuals) == 1 and s.node.residuals[0] is x.value

    for function, name in [(ad.tanh, "tanh"), (ad.exp, "exp"), (ad.sqrt, "sqrt"),
                           (ad.sigmoid, "sigmoid"), (ad.relu, "relu")]:
        out = function(x)
        assert OPS[name].saves is Saves.OUTPUT
        assert len(out.node.residuals) == 1 and out.node.residuals[0] is out.value, name

    for function, name in [(ad.add, "add"), (ad.subtract, "subtract")]:
        out = function(x, y)
        assert OPS[name].saves is Saves.NOTHING and out.node.residuals == (), name
    assert ad.negative(x).node.residuals == ()
    assert ad.sum(x).node.residuals == ()
    assert ad.reshape(x, (2, 1)).node.residuals == ()

    product = ad.multiply(x, y)
    assert product.node.residuals[0] is x.value and product.node.residuals[1] is y.value
    power = ad.power(x, y)
    assert len(power.node.residuals) == 3 and power.node.residuals[2] is power.value
    biggest = ad.max(x)
    assert biggest.node.residuals[0] is x.value and biggest.node.residuals[1] is biggest.value

    condition = np.array([True, False])
    chosen = ad.where(condition, x, y)
    assert len(chosen.node.residuals) == 1
    np.testing.assert_array_equal(chosen.node.residuals[0], condition)

    # total: sin 16 + 5 outputs 80 + multiply 32 + power 48 + max 24 + where 2
    assert sum(r.nbytes for r in tape.residual_arrays()) == 16 + 80 + 32 + 48 + 24 + 2


def test_plain_arrays_record_nothing():
    tape = Tape()
    tape.variable(np.ones(2))
    result = ad.sin(np.ones(2)) + ad.exp(np.ones(2))
    assert not isinstance(result, Tracer)
    assert tape.nodes == []


def test_traced_values_from_another_trace_are_rejected():
    outer = Tape().variable(np.ones(2))
    with pytest.raises(ad.OpError, match="two different traces"):
        ad.grad(lambda a: ad.sum(a * outer))(np.ones(2))
