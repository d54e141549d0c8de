"""The core of the engine: op records, the registry, tracers, tape nodes and the reverse sweep.

Conventions (Deep Learning book, section 6.5):

* An :class:`Op` is a primitive operation with a forward function on raw arrays and a
  vector-Jacobian product (VJP). Each op **declares its residuals** (:class:`Saves`): the
  arrays its VJP needs (its inputs, its output, or nothing, or a custom selection). The VJP
  receives them from the :class:`Node`; it captures nothing, so the memory kept for the
  backward pass is known exactly: it is the residuals of the live nodes.
* A :class:`Tracer` wraps a value being differentiated; applying an op to tracers records a
  :class:`Node` on the tracers' :class:`Tape`. Creation order is a topological order, so the
  reverse sweep (Algorithm 6.2) is a reversed loop: no recursion, any depth.
* Cotangents of shared subexpressions accumulate; a node's cotangent and its residuals are
  freed as soon as its VJP has run.
* Applying an op to plain arrays computes the forward only and records nothing.
"""
from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from typing import Any

from .backend import ARRAY_TYPES, xp
from ..errors import OpError, ShapeError, UnknownNameError


class Saves(enum.Enum):
    """What an op keeps for its VJP."""

    NOTHING = "nothing"
    INPUTS = "inputs"
    OUTPUT = "output"
    INPUTS_AND_OUTPUT = "inputs and output"


class Op:
    """A primitive: ``forward(*values, **params) -> value`` and ``vjp(g, node) -> cotangents``.

    ``vjp`` returns one cotangent per input (None where the input gets no gradient), each of
    the input's shape; it reads ``node.residuals``, ``node.in_shapes`` and ``node.params``.
    ``differentiable`` is False for ops whose output carries no gradient (comparisons).
    """

    __slots__ = ("name", "forward", "vjp", "saves", "differentiable")

    def __init__(self, name: str, forward: Callable[..., Any], vjp: Callable[..., tuple] | None,
                 saves: Saves | Callable[..., tuple], differentiable: bool = True) -> None:
        self.name, self.forward, self.vjp = name, forward, vjp
        self.saves, self.differentiable = saves, differentiable

    def residuals(self, inputs: tuple, output: Any, params: dict) -> tuple:
        saves = self.saves
        if saves is Saves.NOTHING:
            return ()
        if saves is Saves.INPUTS:
            return inputs
        if saves is Saves.OUTPUT:
            return (output,)
        if saves is Saves.INPUTS_AND_OUTPUT:
            return inputs + (output,)
        return saves(inputs, output, **params)

    def __repr__(self) -> str:
        return f"Op({self.name})"


OPS: dict[str, Op] = {}


def register(op: Op) -> Op:
    OPS[op.name] = op
    return op


def get_op(name: str) -> Op:
    try:
        return OPS[name]
    except KeyError:
        raise UnknownNameError(f"unknown op {name!r}; known ops: {', '.join(sorted(OPS))}") from None


class Node:
    """One recorded op application: the op, parent nodes (None for constants), residuals."""

    __slots__ = ("op", "parents", "residuals", "in_shapes", "params", "shape", "dtype", "cot")

    def __init__(self, op: Op | None, parents: tuple, residuals: tuple, in_shapes: tuple,
                 params: dict, shape: tuple, dtype: Any) -> None:
        self.op, self.parents, self.residuals = op, parents, residuals
        self.in_shapes, self.params = in_shapes, params
        self.shape, self.dtype, self.cot = shape, dtype, None


class Tape:
    """The nodes recorded while tracing one function, in creation (topological) order.

    A tape with a ``recorder`` is a structure pass (:func:`~.graph.trace`): every op applied
    to its tracers is handed to ``recorder(op, args, values, output,
    params)``, which returns the traced result; no node keeps residuals for a backward sweep.
    """

    __slots__ = ("nodes", "variables", "recorder")

    def __init__(self, recorder: Callable[..., Any] | None = None) -> None:
        self.nodes: list[Node] = []
        self.variables: list[Node] = []
        self.recorder = recorder

    def variable(self, value: Any) -> Tracer:
        """Start differentiating with respect to ``value`` (a leaf of the graph)."""
        node = Node(None, (), (), (), {}, xp.shape(value), xp.result_type(value))
        self.variables.append(node)
        return Tracer(value, node, self)

    def residual_arrays(self) -> list[Any]:
        """Every array the live nodes keep for the backward pass (may repeat an array)."""
        return [r for node in self.nodes for r in node.residuals if isinstance(r, ARRAY_TYPES)]

    def backward(self, output: Node, seed: Any) -> None:
        """Algorithm 6.2: propagate ``seed`` from ``output`` back to the variables.

        Afterwards each variable's ``cot`` holds its gradient (None if unreached); nodes'
        cotangents and residuals are released as soon as they are used.
        """
        output.cot = seed
        for node in reversed(self.nodes):
            g = node.cot
            if g is None:
                node.residuals = ()
                continue
            node.cot = None
            cotangents = node.op.vjp(g, node)
            node.residuals = ()
            for parent, c in zip(node.parents, cotangents):
                if parent is not None and c is not None:
                    if c.dtype != parent.dtype:  # e.g. a float32 input mixed with float64
                        c = c.astype(parent.dtype)
                    parent.cot = c if parent.cot is None else parent.cot + c


class Tracer:
    """A value under differentiation; Python operators dispatch to checkpoint_ad ops."""

    __slots__ = ("value", "node", "tape")
    __array_ufunc__ = None  # make numpy defer to our reflected operators
    __array_priority__ = 1000

    def __init__(self, value: Any, node: Node, tape: Tape) -> None:
        self.value, self.node, self.tape = value, node, tape

    shape = property(lambda self: xp.shape(self.value))
    dtype = property(lambda self: xp.result_type(self.value))
    ndim = property(lambda self: xp.ndim(self.value))
    size = property(lambda self: xp.size(self.value))

    def __len__(self) -> int:
        if not xp.ndim(self.value):
            raise OpError("len() of a 0-d traced value")
        return len(self.value)

    def __iter__(self):  # rows, each a traced value (numpy's iteration over the first axis)
        return (self[i] for i in range(len(self)))

    def __bool__(self) -> bool:
        return bool(self.value)

    def __repr__(self) -> str:
        return f"Tracer({self.value!r})"

    __hash__ = object.__hash__


def check_value(op_name: str, value: Any) -> Any:
    """Accept real (not complex) arrays and numbers; convert lists; else raise OpError."""
    if isinstance(value, ARRAY_TYPES):
        if value.dtype.kind in "biuf":
            return value
    elif isinstance(value, (int, float)):
        return value
    elif isinstance(value, (list, tuple)):
        if any(type(item) is Tracer for item in value):
            raise OpError(f"{op_name}: got a list holding traced values; join them with "
                          "stack or concatenate first")
        try:
            array = xp.asarray(value)
        except ValueError as error:
            raise OpError(f"{op_name}: cannot make an array of {value!r}: {error}") from None
        if array.dtype.kind in "biuf":
            return array
    if isinstance(value, complex) or getattr(getattr(value, "dtype", None), "kind", "") == "c":
        raise OpError(f"{op_name}: complex values are not supported (real arrays and numbers "
                      f"only), got {type(value).__name__} {value!r:.60}")
    raise OpError(f"{op_name}: expected an array or a number, got {type(value).__name__} {value!r:.60}")


def apply(op: Op, args: Sequence[Any], params: dict) -> Any:
    """Apply ``op`` to ``args``: record a node if any argument is a tracer."""
    tape = None
    values = []
    parents = []
    for arg in args:
        if type(arg) is Tracer:
            if tape is None:
                tape = arg.tape
            elif arg.tape is not tape:
                raise OpError(f"{op.name}: arguments come from two different traces; a stage or "
                              "function must receive traced values as arguments, not capture them")
            values.append(arg.value)
            parents.append(arg.node)
        else:
            values.append(check_value(op.name, arg))
            parents.append(None)
    output = _forward(op, values, params)
    if tape is None:
        return output
    if tape.recorder is not None:
        return tape.recorder(op, args, tuple(values), output, params)
    if not op.differentiable:
        return output
    values = tuple(values)
    node = Node(op, tuple(parents), op.residuals(values, output, params),
                tuple(xp.shape(v) for v in values), params, xp.shape(output), xp.result_type(output))
    tape.nodes.append(node)
    return Tracer(output, node, tape)


def apply_unary(op: Op, x: Any, params: dict) -> Any:
    """The fast path of :func:`apply` for one-input ops (most of a chain's work).

    A tracer's value is always a numpy array or scalar, so ``.shape``/``.dtype`` are read
    directly rather than through numpy's slower dispatching functions.
    """
    if type(x) is not Tracer:
        return _forward(op, (check_value(op.name, x),), params)
    value = x.value
    output = _forward(op, (value,), params)
    if x.tape.recorder is not None:
        return x.tape.recorder(op, (x,), (value,), output, params)
    saves = op.saves
    if saves is Saves.INPUTS:
        residuals: tuple = (value,)
    elif saves is Saves.OUTPUT:
        residuals = (output,)
    elif saves is Saves.NOTHING:
        residuals = ()
    else:
        residuals = op.residuals((value,), output, params)
    node = Node(op, (x.node,), residuals, (value.shape,), params, output.shape, output.dtype)
    x.tape.nodes.append(node)
    return Tracer(output, node, x.tape)


def _forward(op: Op, values: Sequence[Any], params: dict) -> Any:
    try:
        return op.forward(*values, **params)
    except ValueError as error:
        shapes = ", ".join(str(xp.shape(v)) for v in values)
        raise ShapeError(f"{op.name}: inputs of shapes {shapes} do not fit: {error}") from None


def unbroadcast(g: Any, shape: tuple) -> Any:
    """Sum ``g`` down to ``shape``, undoing numpy broadcasting (the tape casts dtypes)."""
    if xp.shape(g) == shape:
        return g
    extra = xp.ndim(g) - len(shape)
    axes = tuple(range(extra)) + tuple(
        i + extra for i, size in enumerate(shape) if size == 1 and g.shape[i + extra] != 1)
    return xp.reshape(xp.sum(g, axis=axes), shape)


def value_of(x: Any) -> Any:
    """The raw value behind a tracer (or ``x`` itself)."""
    return x.value if type(x) is Tracer else x
