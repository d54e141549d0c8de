"""Reading the ``axis`` argument of an op, with numpy's rules and the package's errors.

An axis is an integer (Python or numpy, never a bool). Reductions also take a tuple of integers,
or ``None`` for every axis; like numpy they refuse a list (transpose and expand_dims, where numpy
takes a list, turn it into a tuple first). Axis ``a`` of an array of ``ndim`` dimensions is
valid when ``-ndim <= a < ndim``; negative axes count from the end.
A wrong type raises :class:`~checkpoint_ad.errors.OpError`; an axis out of bounds or named
twice raises :class:`~checkpoint_ad.errors.ShapeError`. Messages start with the op's name.
"""
from __future__ import annotations

import builtins
import operator
from typing import Any

from .backend import xp
from ..errors import OpError, ShapeError


def _integer(op_name: str, axis: Any, accepted: str) -> int:
    if not isinstance(axis, (bool, xp.bool_)):
        try:
            return operator.index(axis)
        except TypeError:
            pass
    raise OpError(f"{op_name}: axis must be {accepted}, got {type(axis).__name__} {axis!r:.60}")


def axis_integers(op_name: str, axis: Any) -> tuple[int, ...]:
    """``axis`` (an integer or a tuple of integers) as a tuple of Python ints."""
    accepted = "an integer or a tuple of integers"
    items = axis if isinstance(axis, tuple) else (axis,)
    return tuple(_integer(op_name, a, accepted) for a in items)


def normalize_axis(op_name: str, axis: Any, ndim: int, sort: bool = True,
                   subject: str = "an array") -> tuple[int, ...]:
    """``axis`` (None, an integer or a tuple of them) as distinct non-negative axes of ``ndim``
    dimensions, sorted unless asked not to; None means every axis.

    Like numpy's reductions, a 0-d array accepts axis 0 or -1, which select nothing; it also
    accepts (0,) and (-1,), which numpy refuses.
    ``subject`` names what has ``ndim`` dimensions in the out-of-bounds message.
    """
    if axis is None:
        return tuple(range(ndim))
    axes = axis_integers(op_name, axis)
    bound = builtins.max(ndim, 1)
    for a in axes:
        if not -bound <= a < bound:
            raise ShapeError(f"{op_name}: axis {a} is out of bounds for {subject} of dimension "
                             f"{ndim}")
    if not ndim:
        return ()
    normalized = tuple(a % bound for a in axes)
    repeated = [a for i, a in enumerate(normalized) if a in normalized[:i]]
    if repeated:
        raise ShapeError(f"{op_name}: axis {repeated[0]} appears twice in {axes} "
                         f"(dimension {ndim})")
    return tuple(sorted(normalized)) if sort else normalized


def single_axis(op_name: str, axis: Any, ndim: int, subject: str = "an array") -> int:
    """One integer axis of ``ndim`` dimensions, made non-negative (no None, no tuple)."""
    _integer(op_name, axis, "an integer")
    return normalize_axis(op_name, axis, ndim, subject=subject)[0]
