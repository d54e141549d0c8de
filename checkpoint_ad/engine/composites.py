"""Ops written only from primitives: they have no VJP of their own, so they cannot be wrong
in a way the primitives' gradchecks would miss, and what they keep for backward is exactly what
their primitives declare."""
from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

from .backend import xp
from ..errors import ShapeError
from .ops import value_of
from .primitives import (_normalize_axis, concatenate, exp, log, matmul, max, multiply,
                         reshape, subtract, sum)


def _shape(x: Any) -> tuple:
    return xp.shape(value_of(x))


def stop_gradient(x: Any) -> Any:
    """The value of ``x`` as a constant: no gradient flows through it."""
    return value_of(x)


def square(x: Any) -> Any:
    """x * x."""
    return multiply(x, x)


def mean(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Arithmetic mean over ``axis`` (None: all)."""
    shape = _shape(x)
    count = 1
    for a in _normalize_axis(axis, len(shape)):
        count *= shape[a]
    return sum(x, axis=axis, keepdims=keepdims) / count


def dot(a: Any, b: Any) -> Any:
    """numpy.dot for operands of at most two dimensions (scalars multiply)."""
    ndims = (len(_shape(a)), len(_shape(b)))
    if 0 in ndims:
        return multiply(a, b)
    if builtins.max(ndims) > 2:
        raise ShapeError(f"dot: operands of shapes {_shape(a)} and {_shape(b)}; "
                         "use matmul for more than two dimensions")
    return matmul(a, b)


def expand_dims(x: Any, axis: int) -> Any:
    """Insert a length-1 axis at ``axis``."""
    shape = list(_shape(x))
    if not -len(shape) - 1 <= axis <= len(shape):
        raise ShapeError(f"expand_dims: axis {axis} is out of bounds for a result of dimension "
                         f"{len(shape) + 1}")
    position = axis % (len(shape) + 1)
    return reshape(x, tuple(shape[:position]) + (1,) + tuple(shape[position:]))


def stack(arrays: Sequence[Any], axis: int = 0) -> Any:
    """numpy.stack: join arrays of one shape along a new axis."""
    arrays = list(arrays)
    if not arrays:
        raise ShapeError("stack: needs at least one array")
    shapes = {_shape(a) for a in arrays}
    if len(shapes) > 1:
        raise ShapeError(f"stack: all arrays must have one shape, got {sorted(shapes)}")
    return concatenate([expand_dims(a, axis) for a in arrays], axis=axis)


def logsumexp(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """log(sum(exp(x))) over ``axis``, shifted by the (constant) maximum for stability."""
    axes = _normalize_axis(axis, len(_shape(x)))
    shift = max(stop_gradient(x), axis=axes, keepdims=True)  # on the value: records no node
    shift = xp.where(xp.isfinite(shift), shift, 0)
    result = log(sum(exp(subtract(x, shift)), axis=axes, keepdims=True)) + shift
    if keepdims:
        return result
    return reshape(result, tuple(s for i, s in enumerate(_shape(x)) if i not in axes))


def log_softmax(x: Any, axis: int = -1) -> Any:
    """x - logsumexp(x) along ``axis`` (default: the last)."""
    return subtract(x, logsumexp(x, axis=axis, keepdims=True))


def softmax(x: Any, axis: int = -1) -> Any:
    """exp(x) / sum(exp(x)) along ``axis`` (default: the last), computed as exp(log_softmax)."""
    return exp(log_softmax(x, axis=axis))
