"""Every op and composite that takes an axis, against numpy's (or scipy's) value semantics.

Each function is called with ``axis=None``, every valid axis (negative and positive), one
out-of-range axis on either side, tuples (distinct, repeated, empty) and values of the wrong
type. Where numpy accepts the axis, the value (traced and untraced) must equal numpy's and the
gradient must pass a float64 gradcheck; where numpy refuses it, the package must refuse it too,
with its own error: ``ShapeError`` where numpy raises ``ValueError`` (an axis out of bounds or
repeated), ``OpError`` where numpy raises ``TypeError`` (not an integer), the message starting
with the function's name. The only accepted difference is listed in ``test_zero_dimensional``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import scipy.special

import checkpoint_ad as ca
from checkpoint_ad.engine.ops import Tracer, value_of


@dataclass(frozen=True)
class AxisFunction:
    name: str                       # the name the package's errors start with
    label: str
    fn: Callable[[Any, Any], Any]   # (x, axis) -> value, with checkpoint_ad
    reference: Callable[[np.ndarray, Any], np.ndarray]
    extra_dimensions: int = 0       # 1 when the axis names an axis of a result one larger
    distinct: bool = False          # inputs without ties (max has a kink at a tie)
    method: bool = False            # a Tracer method: only traced values have it


def _pair(join: Callable) -> Callable:
    """``join([x, 2x + 1], axis)``: two different traced inputs from one argument."""
    return lambda x, axis: join([x, x * 2.0 + 1.0], axis=axis)


FUNCTIONS = [
    AxisFunction("sum", "sum", lambda x, a: ca.sum(x, axis=a), lambda x, a: np.sum(x, axis=a)),
    AxisFunction("sum", "sum-keepdims", lambda x, a: ca.sum(x, axis=a, keepdims=True),
                 lambda x, a: np.sum(x, axis=a, keepdims=True)),
    AxisFunction("sum", "sum-method", lambda x, a: x.sum(axis=a), lambda x, a: x.sum(axis=a),
                 method=True),
    AxisFunction("max", "max", lambda x, a: ca.max(x, axis=a), lambda x, a: np.max(x, axis=a),
                 distinct=True),
    AxisFunction("max", "max-method", lambda x, a: x.max(axis=a), lambda x, a: x.max(axis=a),
                 distinct=True, method=True),
    AxisFunction("mean", "mean", lambda x, a: ca.mean(x, axis=a), lambda x, a: np.mean(x, axis=a)),
    AxisFunction("mean", "mean-method", lambda x, a: x.mean(axis=a), lambda x, a: x.mean(axis=a),
                 method=True),
    AxisFunction("logsumexp", "logsumexp", lambda x, a: ca.logsumexp(x, axis=a),
                 lambda x, a: scipy.special.logsumexp(x, axis=a)),
    AxisFunction("logsumexp", "logsumexp-keepdims",
                 lambda x, a: ca.logsumexp(x, axis=a, keepdims=True),
                 lambda x, a: scipy.special.logsumexp(x, axis=a, keepdims=True)),
    AxisFunction("softmax", "softmax", lambda x, a: ca.softmax(x, axis=a),
                 lambda x, a: scipy.special.softmax(x, axis=a)),
    AxisFunction("log_softmax", "log_softmax", lambda x, a: ca.log_softmax(x, axis=a),
                 lambda x, a: scipy.special.log_softmax(x, axis=a)),
    AxisFunction("concatenate", "concatenate", _pair(ca.concatenate), _pair(np.concatenate)),
    AxisFunction("stack", "stack", _pair(ca.stack), _pair(np.stack), extra_dimensions=1),
    AxisFunction("expand_dims", "expand_dims", lambda x, a: ca.expand_dims(x, a),
                 lambda x, a: np.expand_dims(x, a), extra_dimensions=1),
]

# axes of every kind but the plain integers, which depend on the dimension
OTHER_AXES = [None, (), (0,), (-1, 0), (0, 0), (1, -1), 1.0, True, np.True_, "0", [0],
              np.int64(-1), np.array(0)]


def axes_to_try(ndim: int) -> list:
    """Every valid integer axis, one out of range on either side, and OTHER_AXES."""
    return list(range(-ndim - 1, ndim + 1)) + OTHER_AXES


def sample(shape: tuple, distinct: bool) -> np.ndarray:
    rng = np.random.default_rng(5)
    if distinct:
        return rng.permutation(int(np.prod(shape))).reshape(shape) * 0.1 + 0.01
    return rng.standard_normal(shape)


def numpy_outcome(reference: Callable, x: np.ndarray, axis: Any) -> Any:
    """numpy's value, or the package error that must stand for numpy's refusal.

    A bool is never an axis here (OpError): numpy refuses it in reductions but reads True as
    axis 1 in stack and expand_dims, and as an out-of-bounds 1 in mean of a 1-D array.
    """
    if any(isinstance(a, (bool, np.bool_)) for a in (axis if isinstance(axis, tuple) else (axis,))):
        return ca.OpError
    try:
        return reference(x, axis)
    except TypeError:
        return ca.OpError
    except ValueError:  # AxisError is a ValueError
        return ca.ShapeError


CASES = [pytest.param(f, shape, axis, id=f"{f.label}-{shape}-axis={axis!r}")
         for f in FUNCTIONS for shape in [(2, 3, 4), (5,)]
         for axis in axes_to_try(len(shape) + f.extra_dimensions)]


@pytest.mark.parametrize("f, shape, axis", CASES)
def test_value_and_gradient_match_numpy_or_our_error(f: AxisFunction, shape: tuple,
                                                     axis: Any) -> None:
    x = sample(shape, f.distinct)
    expected = numpy_outcome(f.reference, x, axis)
    if isinstance(expected, type):
        if not f.method:
            with pytest.raises(expected, match=rf"^{f.name}: "):
                f.fn(x, axis)
        with pytest.raises(expected, match=rf"^{f.name}: "):
            ca.grad(lambda v: ca.sum(f.fn(v, axis)))(x)
        return
    if not f.method:
        plain = f.fn(x, axis)
        assert not isinstance(plain, Tracer)
        assert np.shape(plain) == np.shape(expected)
        np.testing.assert_allclose(plain, expected, rtol=1e-12, atol=1e-12)
    weights = np.cos(np.arange(np.size(expected))).reshape(np.shape(expected))
    traced = {}

    def projected(v):
        out = f.fn(v, axis)
        traced["value"] = value_of(out)
        return ca.sum(out * weights)

    value = ca.value_and_grad(projected)(x)[0]
    assert np.shape(traced["value"]) == np.shape(expected)
    np.testing.assert_allclose(traced["value"], expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(value, np.sum(expected * weights), rtol=1e-10, atol=1e-12)
    ca.check_grads(projected, x)


TRANSPOSE_AXES = [None, (0, 1, 2), (2, 0, 1), (-1, 0, 1), (-3, -1, -2), [1, 2, 0],
                  (0, 1, 3), (0, -4, 1), (0, 1), (0, 1, 2, 0), (0, 0, 1), (1, -2, 0),
                  (0, 1.0, 2), (0, True, 2), 0, "012"]


@pytest.mark.parametrize("method", [False, True], ids=["function", "method"])
@pytest.mark.parametrize("axes", TRANSPOSE_AXES, ids=repr)
def test_transpose_axes_match_numpy_or_our_error(axes: Any, method: bool) -> None:
    x = sample((2, 3, 4), distinct=False)
    expected = numpy_outcome(np.transpose, x, axes)
    if method:
        fn = (lambda v: v.transpose()) if axes is None else (lambda v: v.transpose(axes))
    else:
        fn = lambda v: ca.transpose(v, axes)  # noqa: E731
    if isinstance(expected, type):
        with pytest.raises(expected, match=r"^transpose: "):
            ca.grad(lambda v: ca.sum(fn(v)))(x)
        return
    np.testing.assert_array_equal(ca.transpose(x, axes), expected)
    weights = np.cos(np.arange(x.size)).reshape(expected.shape)
    traced = {}

    def projected(v):
        out = fn(v)
        traced["value"] = value_of(out)
        return ca.sum(out * weights)

    gradient = ca.grad(projected)(x)
    np.testing.assert_array_equal(traced["value"], expected)
    permutation = (2, 1, 0) if axes is None else [a % 3 for a in axes]
    np.testing.assert_array_equal(gradient, np.transpose(weights, np.argsort(permutation)))
    ca.check_grads(projected, x)


def test_zero_dimensional() -> None:
    """On a 0-d array the reductions take axis None, 0 and -1, as numpy does, and refuse 1;
    they also take (0,) and (-1,), which numpy refuses (the only accepted difference)."""
    x = np.float64(0.7)
    for name in ("sum", "max", "mean", "logsumexp"):
        function = getattr(ca, name)
        for axis in (None, 0, -1, (0,), (-1,)):
            assert function(x, axis=axis) == pytest.approx(0.7), (name, axis)
            assert ca.grad(lambda v: function(v, axis=axis))(x) == pytest.approx(1.0)
        with pytest.raises(ca.ShapeError, match=rf"^{name}: axis 1 is out of bounds"):
            function(x, axis=1)
    for name in ("softmax", "log_softmax"):
        assert getattr(ca, name)(x) == getattr(scipy.special, name)(x)
    np.testing.assert_array_equal(ca.concatenate([x, np.arange(2.0)], axis=None), [0.7, 0, 1])
    with pytest.raises(ca.ShapeError, match="^concatenate: zero-dimensional"):
        ca.concatenate([x, x])
    np.testing.assert_array_equal(ca.stack([x, x], axis=-1), np.stack([x, x], axis=-1))
    assert ca.expand_dims(x, (0, -1)).shape == (1, 1)


def test_concatenate_axis_none_flattens_like_numpy() -> None:
    """The reported case: axis=None used to join along axis 0 (value 90, all-ones gradients)."""
    a = np.arange(6.0).reshape(2, 3)
    b = 10 + a
    value, (ga, gb) = ca.value_and_grad(
        lambda a, b: ca.sum(ca.concatenate([a, b], axis=None)[:4]), argnums=(0, 1))(a, b)
    assert value == np.sum(np.concatenate([a, b], axis=None)[:4]) == 6.0
    np.testing.assert_array_equal(ga, [[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    np.testing.assert_array_equal(gb, np.zeros((2, 3)))


def test_messages_name_the_function_the_caller_used() -> None:
    x = np.ones((2, 3))
    cases = [(lambda: ca.softmax(x, axis=2), ca.ShapeError,
              "softmax: axis 2 is out of bounds for an array of dimension 2"),
             (lambda: ca.mean(x, axis=(0, -2)), ca.ShapeError,
              "mean: axis 0 appears twice in (0, -2) (dimension 2)"),
             (lambda: ca.stack([x, x], axis=3), ca.ShapeError,
              "stack: axis 3 is out of bounds for a result of dimension 3"),
             (lambda: ca.stack([x, x], axis=None), ca.OpError,
              "stack: axis must be an integer, got NoneType None"),
             (lambda: ca.concatenate([x, x], axis=(0, 1)), ca.OpError,
              "concatenate: axis must be an integer, got tuple (0, 1)"),
             (lambda: ca.sum(x, axis=1.0), ca.OpError,
              "sum: axis must be an integer or a tuple of integers, got float 1.0"),
             (lambda: ca.sum(x, axis=True), ca.OpError,
              "sum: axis must be an integer or a tuple of integers, got bool True")]
    for call, error, message in cases:
        with pytest.raises(error) as info:
            call()
        assert str(info.value) == message
