"""The primitive ops: a forward on raw arrays, a VJP, and the residuals each VJP declares.

Every VJP reads only ``node.residuals`` (what :class:`~checkpoint_ad.engine.ops.Saves` declares),
``node.in_shapes`` and ``node.params``; it returns one cotangent per input, reduced back to the
input's shape. Python scalar constants stay Python scalars so that float32 stays float32.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .axes import axis_integers, normalize_axis, single_axis
from .backend import xp
from ..errors import ShapeError
from .ops import (Node, Op, Saves, Tracer, apply, apply_unary, check_value, register,
                  unbroadcast, value_of)

_NO_PARAMS: dict = {}


def _unary(name: str, forward: Callable, vjp: Callable[[Any, Node], Any], saves: Saves,
           doc: str) -> Callable[[Any], Any]:
    op = register(Op(name, forward, lambda g, node: (vjp(g, node),), saves))

    def function(x: Any) -> Any:
        return apply_unary(op, x, _NO_PARAMS)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"{doc} Saves for backward: {saves.value}."
    return function


def _saved(node: Node) -> Any:
    return node.residuals[0]


def _times(fresh: Any, g: Any) -> Any:
    """``fresh * g``, written into ``fresh`` when it is an array this VJP just made and the
    product keeps its shape and dtype: one temporary fewer per elementwise VJP."""
    if type(fresh) is xp.ndarray and fresh.shape == xp.shape(g) and fresh.dtype == g.dtype:
        return xp.multiply(fresh, g, out=fresh)
    return fresh * g


def _tanh_vjp(g: Any, node: Node) -> Any:
    y = _saved(node)
    slope = y * y
    slope = xp.subtract(1, slope, out=slope) if type(slope) is xp.ndarray else 1 - slope
    return _times(slope, g)


def _sigmoid_vjp(g: Any, node: Node) -> Any:
    y = _saved(node)
    slope = 1 - y
    slope = _times(slope, y)
    return _times(slope, g)


negative = _unary("negative", xp.negative, lambda g, n: -g, Saves.NOTHING, "Elementwise -x.")
sin = _unary("sin", xp.sin, lambda g, n: _times(xp.cos(_saved(n)), g), Saves.INPUTS,
             "Elementwise sine.")
cos = _unary("cos", xp.cos, lambda g, n: _times(xp.negative(xp.sin(_saved(n))), g), Saves.INPUTS,
             "Elementwise cosine.")
exp = _unary("exp", xp.exp, lambda g, n: g * _saved(n), Saves.OUTPUT, "Elementwise e**x.")
log = _unary("log", xp.log, lambda g, n: g / _saved(n), Saves.INPUTS, "Natural logarithm.")
tanh = _unary("tanh", xp.tanh, _tanh_vjp, Saves.OUTPUT, "Hyperbolic tangent.")
sqrt = _unary("sqrt", xp.sqrt, lambda g, n: g * 0.5 / _saved(n), Saves.OUTPUT, "Square root.")
abs = _unary("abs", xp.abs, lambda g, n: g * xp.sign(_saved(n)), Saves.INPUTS,  # noqa: A001
             "Absolute value (gradient 0 at 0).")
sigmoid = _unary("sigmoid", lambda x: 0.5 * (xp.tanh(0.5 * x) + 1), _sigmoid_vjp, Saves.OUTPUT,
                 "Logistic sigmoid 1/(1+e**-x), computed stably as (tanh(x/2)+1)/2.")
relu = _unary("relu", lambda x: xp.maximum(x, 0), lambda g, n: g * (_saved(n) > 0), Saves.OUTPUT,
              "max(x, 0) (gradient 0 at 0).")


def _binary(name: str, forward: Callable, vjp: Callable[[Any, Node], tuple], saves: Saves,
            doc: str) -> Callable[[Any, Any], Any]:
    op = register(Op(name, forward, vjp, saves))

    def function(x: Any, y: Any) -> Any:
        return apply(op, (x, y), _NO_PARAMS)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"{doc} Broadcasts like numpy. Saves for backward: {saves.value}."
    return function


def _both(node: Node, gx: Callable[[], Any], gy: Callable[[], Any]) -> tuple:
    """Cotangents of a binary op, computing only those whose input is traced."""
    x_parent, y_parent = node.parents
    sx, sy = node.in_shapes
    return (None if x_parent is None else unbroadcast(gx(), sx),
            None if y_parent is None else unbroadcast(gy(), sy))


def _divide_vjp(g: Any, node: Node) -> tuple:
    x, y = node.residuals
    return _both(node, lambda: g / y, lambda: -g * x / (y * y))


def _power_vjp(g: Any, node: Node) -> tuple:
    x, y, out = node.residuals

    def slope() -> Any:  # y * x**(y-1), taken as 0 where y == 0 (also at x == 0)
        with xp.errstate(divide="ignore", invalid="ignore"):
            return xp.where(xp.equal(y, 0), 0, y * xp.power(x, y - 1))

    return _both(node, lambda: g * slope(), lambda: g * out * xp.log(xp.where(x > 0, x, 1)))


def _select_vjp(pick_x: Callable[[Any, Any], Any]) -> Callable[[Any, Node], tuple]:
    """VJP of maximum/minimum: the chosen input gets g; ties split it evenly."""
    def vjp(g: Any, node: Node) -> tuple:
        x, y = node.residuals
        share = xp.where(x == y, 0.5, pick_x(x, y).astype(float))
        return _both(node, lambda: g * share, lambda: g * (1 - share))
    return vjp


add = _binary("add", xp.add, lambda g, n: _both(n, lambda: g, lambda: g), Saves.NOTHING, "x + y.")
subtract = _binary("subtract", xp.subtract, lambda g, n: _both(n, lambda: g, lambda: -g),
                   Saves.NOTHING, "x - y.")
multiply = _binary("multiply", xp.multiply,
                   lambda g, n: _both(n, lambda: g * n.residuals[1], lambda: g * n.residuals[0]),
                   Saves.INPUTS, "x * y.")
divide = _binary("divide", xp.divide, _divide_vjp, Saves.INPUTS, "x / y.")
power = _binary("power", xp.power, _power_vjp, Saves.INPUTS_AND_OUTPUT,
                "x ** y (the gradient for y uses log x, taken as 0 where x <= 0).")
maximum = _binary("maximum", xp.maximum, _select_vjp(xp.greater), Saves.INPUTS,
                  "Elementwise maximum (ties split the gradient evenly).")
minimum = _binary("minimum", xp.minimum, _select_vjp(xp.less), Saves.INPUTS,
                  "Elementwise minimum (ties split the gradient evenly).")


def _matmul_vjp(g: Any, node: Node) -> tuple:
    a, b = node.residuals
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    g2 = g[..., None] if b.ndim == 1 else g  # b's axis first: a 0-d g (1-D @ 1-D) has none
    g2 = g2[..., None, :] if a.ndim == 1 else g2
    ga = lambda: xp.reshape(unbroadcast(g2 @ xp.swapaxes(b2, -1, -2), a2.shape), a.shape)
    gb = lambda: xp.reshape(unbroadcast(xp.swapaxes(a2, -1, -2) @ g2, b2.shape), b.shape)
    return (None if node.parents[0] is None else ga(),
            None if node.parents[1] is None else gb())


def _matmul_forward(a: Any, b: Any) -> Any:
    if xp.ndim(a) == 0 or xp.ndim(b) == 0:
        raise ValueError("matmul needs arrays of at least one dimension (use * for scalars)")
    return xp.matmul(a, b)


matmul = _binary("matmul", _matmul_forward, _matmul_vjp, Saves.INPUTS,
                 "Matrix product with numpy's matmul semantics (1-D operands promoted).")


def _comparison(name: str, forward: Callable) -> Callable[[Any, Any], Any]:
    op = register(Op(name, forward, None, Saves.NOTHING, differentiable=False))

    def function(x: Any, y: Any) -> Any:
        return apply(op, (x, y), _NO_PARAMS)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"Elementwise {name}; returns a plain boolean array (no gradient)."
    return function


less, less_equal = _comparison("less", xp.less), _comparison("less_equal", xp.less_equal)
greater = _comparison("greater", xp.greater)
greater_equal = _comparison("greater_equal", xp.greater_equal)
equal, not_equal = _comparison("equal", xp.equal), _comparison("not_equal", xp.not_equal)


def _keepdims_shape(shape: tuple, axes: tuple[int, ...]) -> tuple:
    return tuple(1 if i in axes else size for i, size in enumerate(shape))


def _sum_vjp(g: Any, node: Node) -> tuple:
    shape = node.in_shapes[0]
    kept = _keepdims_shape(shape, node.params["axis"])
    return (xp.broadcast_to(xp.reshape(g, kept), shape),)


def _max_vjp(g: Any, node: Node) -> tuple:
    x, out = node.residuals
    kept = _keepdims_shape(xp.shape(x), node.params["axis"])
    mask = x == xp.reshape(out, kept)
    count = xp.sum(mask, axis=node.params["axis"], keepdims=True)
    return (xp.reshape(g, kept) * mask / count,)


_SUM = register(Op("sum", lambda x, axis, keepdims: xp.sum(x, axis=axis, keepdims=keepdims),
                   _sum_vjp, Saves.NOTHING))
_MAX = register(Op("max", lambda x, axis, keepdims: xp.max(x, axis=axis, keepdims=keepdims),
                   _max_vjp, Saves.INPUTS_AND_OUTPUT))


def _reduction(op: Op, x: Any, axis: Any, keepdims: bool) -> Any:
    axes = normalize_axis(op.name, axis, xp.ndim(value_of(x)))
    return apply_unary(op, x, {"axis": axes, "keepdims": keepdims})


def sum(x: Any, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A001
    """Sum over ``axis``: None (all), an integer or a tuple of them, negative from the end.
    Saves nothing for backward (only the input shape)."""
    return _reduction(_SUM, x, axis, keepdims)


def max(x: Any, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A001
    """Maximum over ``axis`` (as for :func:`sum`); ties share the gradient evenly. Saves the
    input and the output."""
    return _reduction(_MAX, x, axis, keepdims)


_RESHAPE = register(Op("reshape", lambda x, shape: xp.reshape(x, shape),
                       lambda g, n: (xp.reshape(g, n.in_shapes[0]),), Saves.NOTHING))
_TRANSPOSE = register(Op("transpose", lambda x, axes: xp.transpose(x, axes),
                         lambda g, n: (xp.transpose(g, xp.argsort(n.params["axes"])),),
                         Saves.NOTHING))
_BROADCAST = register(Op("broadcast_to", lambda x, shape: xp.broadcast_to(x, shape),
                         lambda g, n: (unbroadcast(g, n.in_shapes[0]),), Saves.NOTHING))


def reshape(x: Any, shape: Any) -> Any:
    """numpy.reshape (one -1 allowed). Saves nothing."""
    return apply_unary(_RESHAPE, x, {"shape": tuple(shape) if not isinstance(shape, int) else (shape,)})


def transpose(x: Any, axes: Sequence[int] | int | None = None) -> Any:
    """numpy.transpose: ``axes`` (a tuple or list; an integer for 1-D) is a permutation of the
    axes, negative ones counting from the end; None reverses them. Saves nothing."""
    ndim = xp.ndim(value_of(x))
    if axes is None:
        return apply_unary(_TRANSPOSE, x, {"axes": tuple(range(ndim))[::-1]})
    axes = tuple(axes) if isinstance(axes, list) else axes
    if len(axis_integers("transpose", axes)) != ndim:
        raise ShapeError(f"transpose: axes {axes} are not a permutation of {ndim} dimensions")
    return apply_unary(_TRANSPOSE, x, {"axes": normalize_axis("transpose", axes, ndim, sort=False)})


def broadcast_to(x: Any, shape: Any) -> Any:
    """numpy.broadcast_to. Saves nothing."""
    return apply_unary(_BROADCAST, x, {"shape": tuple(shape) if not isinstance(shape, int) else (shape,)})


def _concatenate_vjp(g: Any, node: Node) -> tuple:
    axis = node.params["axis"]
    bounds = xp.cumsum([shape[axis] for shape in node.in_shapes])[:-1]
    return tuple(xp.split(g, bounds, axis=axis))


_CONCATENATE = register(Op("concatenate", lambda *xs, axis: xp.concatenate(xs, axis=axis),
                           _concatenate_vjp, Saves.NOTHING))


def concatenate(arrays: Sequence[Any], axis: int | None = 0) -> Any:
    """numpy.concatenate along the integer ``axis``; ``axis=None`` flattens every array first,
    then joins them (as numpy does). Saves nothing (only the input shapes)."""
    arrays = list(arrays)
    if not arrays:
        raise ShapeError("concatenate: needs at least one array")
    if axis is None:
        return apply(_CONCATENATE, [reshape(a, (-1,)) for a in arrays], {"axis": 0})
    ndim = xp.ndim(value_of(arrays[0]))
    if ndim == 0:
        raise ShapeError("concatenate: zero-dimensional arrays cannot be concatenated")
    return apply(_CONCATENATE, arrays, {"axis": single_axis("concatenate", axis, ndim)})


def _is_basic_index(index: Any) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, (int, slice)) for p in parts)


def _getitem_vjp(g: Any, node: Node) -> tuple:
    index = node.params["index"]
    full = xp.zeros(node.in_shapes[0], dtype=g.dtype)
    if _is_basic_index(index):
        full[index] = g
    else:
        xp.add.at(full, index, g)  # repeated indices accumulate
    return (full,)


def _getitem_forward(x: Any, index: Any) -> Any:
    try:
        return x[index]
    except IndexError as error:
        raise ValueError(str(error)) from None


_GETITEM = register(Op("getitem", _getitem_forward, _getitem_vjp, Saves.NOTHING))


def getitem(x: Any, index: Any) -> Any:
    """``x[index]``: basic indexing, slicing and integer arrays; the gradient is scattered back."""
    return apply_unary(_GETITEM, x, {"index": index})


def _where_vjp(g: Any, node: Node) -> tuple:
    (condition,) = node.residuals
    _, sx, sy = node.in_shapes
    x_parent, y_parent = node.parents[1:]
    zero = xp.zeros((), dtype=g.dtype)
    return (None,
            None if x_parent is None else unbroadcast(xp.where(condition, g, zero), sx),
            None if y_parent is None else unbroadcast(xp.where(condition, zero, g), sy))


_WHERE = register(Op("where", xp.where, _where_vjp, lambda inputs, output: (inputs[0],)))


def where(condition: Any, x: Any, y: Any) -> Any:
    """numpy.where(condition, x, y); the condition gets no gradient. Saves the condition."""
    if type(condition) is Tracer:
        condition = condition.value
    return apply(_WHERE, (xp.asarray(condition, dtype=bool), x, y), _NO_PARAMS)


def _clip_vjp(g: Any, node: Node) -> tuple:
    (x,) = node.residuals
    low, high = node.params["a_min"], node.params["a_max"]
    inside = xp.ones(xp.shape(x), dtype=bool)
    if low is not None:
        inside &= x >= low
    if high is not None:
        inside &= x <= high
    return (g * inside,)


_CLIP = register(Op("clip", lambda x, a_min, a_max: xp.clip(x, a_min, a_max), _clip_vjp,
                    Saves.INPUTS))


def clip(x: Any, a_min: Any = None, a_max: Any = None) -> Any:
    """numpy.clip with constant bounds (None: unbounded; traced bounds are taken as constants)
    that broadcast to x's shape; gradient 1 inside, 0 outside."""
    if a_min is None and a_max is None:
        raise ShapeError("clip: give a_min, a_max or both")
    bounds = {name: None if b is None else check_value("clip", value_of(b))
              for name, b in (("a_min", a_min), ("a_max", a_max))}
    shape = xp.shape(value_of(x))
    for name, bound in bounds.items():
        if bound is not None and xp.broadcast_shapes(shape, xp.shape(bound)) != shape:
            raise ShapeError(f"clip: {name} of shape {xp.shape(bound)} would broadcast x of "
                             f"shape {shape} to a larger shape")
    return apply_unary(_CLIP, x, bounds)
