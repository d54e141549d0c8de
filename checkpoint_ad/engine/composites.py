"""Ops written only from primitives: they have no VJP of their own, so they cannot be wrong
in a way the primitives' gradchecks would miss, and what they keep for backward is exactly what
their primitives declare."""
from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

from .axes import axis_integers, normalize_axis, single_axis
from .backend import xp
from ..errors import OpError, ShapeError
from .ops import value_of
from .primitives import concatenate, exp, log, matmul, max, multiply, reshape, subtract, sum


def _shape(x: Any) -> tuple:
    return xp.shape(value_of(x))


def stop_gradient(x: Any) -> Any:
    """The value of ``x`` as a constant: no gradient flows through it."""
    return value_of(x)


def square(x: Any) -> Any:
    """x * x."""
    return multiply(x, x)


def mean(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Arithmetic mean over ``axis`` (None: all; axes as for :func:`sum`)."""
    shape = _shape(x)
    axes = normalize_axis("mean", axis, len(shape))
    count = 1
    for a in axes:
        count *= shape[a]
    return sum(x, axis=axes, keepdims=keepdims) / count


def dot(a: Any, b: Any) -> Any:
    """numpy.dot for operands of at most two dimensions (scalars multiply)."""
    ndims = (len(_shape(a)), len(_shape(b)))
    if 0 in ndims:
        return multiply(a, b)
    if builtins.max(ndims) > 2:
        raise ShapeError(f"dot: operands of shapes {_shape(a)} and {_shape(b)}; "
                         "use matmul for more than two dimensions")
    return matmul(a, b)


def expand_dims(x: Any, axis: int | Sequence[int]) -> Any:
    """numpy.expand_dims: insert a length-1 axis at each ``axis`` (an integer, a tuple or a
    list), an axis of the result, whose dimension is x's plus the number of axes inserted."""
    if axis is None:
        raise OpError("expand_dims: axis must be an integer or a tuple of integers, got None")
    axis = tuple(axis) if isinstance(axis, list) else axis
    shape = _shape(x)
    ndim = len(shape) + len(axis_integers("expand_dims", axis))
    inserted = normalize_axis("expand_dims", axis, ndim, subject="a result")
    rest = iter(shape)
    return reshape(x, tuple(1 if i in inserted else next(rest) for i in range(ndim)))


def stack(arrays: Sequence[Any], axis: int = 0) -> Any:
    """numpy.stack: join arrays of one shape along a new axis ``axis`` (an integer) of the
    result."""
    arrays = list(arrays)
    if not arrays:
        raise ShapeError("stack: needs at least one array")
    shapes = {_shape(a) for a in arrays}
    if len(shapes) > 1:
        raise ShapeError(f"stack: all arrays must have one shape, got {sorted(shapes)}")
    position = single_axis("stack", axis, len(shapes.pop()) + 1, subject="a result")
    return concatenate([expand_dims(a, position) for a in arrays], axis=position)


def logsumexp(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """log(sum(exp(x))) over ``axis`` (None: all; axes as for :func:`sum`), shifted by the
    (constant) maximum for stability."""
    axes = normalize_axis("logsumexp", axis, len(_shape(x)))
    shift = max(stop_gradient(x), axis=axes, keepdims=True)  # on the value: records no node
    shift = xp.where(xp.isfinite(shift), shift, 0)
    result = log(sum(exp(subtract(x, shift)), axis=axes, keepdims=True)) + shift
    if keepdims:
        return result
    return reshape(result, tuple(s for i, s in enumerate(_shape(x)) if i not in axes))


def log_softmax(x: Any, axis: Any = -1) -> Any:
    """x - logsumexp(x) over ``axis`` (default: the last; None: all; a tuple: those jointly,
    as scipy.special.log_softmax)."""
    axes = normalize_axis("log_softmax", axis, len(_shape(x)))
    return subtract(x, logsumexp(x, axis=axes, keepdims=True))


def softmax(x: Any, axis: Any = -1) -> Any:
    """exp(x) / sum(exp(x)) over ``axis`` (as for :func:`log_softmax`), computed as
    exp(log_softmax)."""
    return exp(log_softmax(x, axis=normalize_axis("softmax", axis, len(_shape(x)))))
