"""Python operators and a few numpy-style methods on :class:`~checkpoint_ad.engine.ops.Tracer`.

Comparisons return plain boolean arrays (no gradient), as the book's comparisons do.
"""
from __future__ import annotations

from . import composites as c
from . import primitives as p
from .ops import Tracer


def _flip(function):
    return lambda self, other: function(other, self)


_OPERATORS = {
    "__add__": p.add, "__radd__": _flip(p.add),
    "__sub__": p.subtract, "__rsub__": _flip(p.subtract),
    "__mul__": p.multiply, "__rmul__": _flip(p.multiply),
    "__truediv__": p.divide, "__rtruediv__": _flip(p.divide),
    "__pow__": p.power, "__rpow__": _flip(p.power),
    "__matmul__": p.matmul, "__rmatmul__": _flip(p.matmul),
    "__lt__": p.less, "__le__": p.less_equal, "__gt__": p.greater, "__ge__": p.greater_equal,
    "__eq__": p.equal, "__ne__": p.not_equal,
    "__neg__": p.negative, "__pos__": lambda self: self, "__abs__": p.abs,
    "__getitem__": p.getitem,
    "sum": p.sum, "max": p.max, "mean": c.mean, "reshape": lambda self, *shape: p.reshape(
        self, shape[0] if len(shape) == 1 else shape),
    "transpose": lambda self, *axes: p.transpose(
        self, (axes[0] if len(axes) == 1 and not isinstance(axes[0], int) else axes) or None),
    "T": property(lambda self: p.transpose(self)),
}

for _name, _function in _OPERATORS.items():
    setattr(Tracer, _name, _function)
