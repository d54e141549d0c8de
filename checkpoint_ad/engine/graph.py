"""The computational graph of a traced function (section 6.5.1): nodes are variables, edges
are operations. Recorded in creation order, so it is topologically sorted already.

:func:`trace` is a *structure pass*: it runs the function once and records, for every op
application (comparisons included), the op, which variables or constants it read, its
parameters, the shape, dtype and bytes of its value, and which values its VJP reads (its
declared residuals). It keeps no value beyond its forward use, except the constant operands
(literals, dropout masks, the outputs of comparisons), which a re-execution of an op needs.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import OpError
from ..checks import function
from .autodiff import as_float_array
from .backend import ARRAY_TYPES, buffer_root, xp
from .ops import Node, Op, Tape, Tracer
from .trees import flatten


@dataclass(frozen=True)
class Variable:
    """One value of the graph: an input (``op`` None) or an op's output.

    ``inputs`` are indices of the variables the op read (None for a constant operand);
    ``saved_bytes`` is what the op keeps for its VJP (its declared residuals), in bytes;
    ``residuals`` are the indices of the variables among them (the op's inputs, or its own
    index for its output); ``nbytes`` is the value's own size; ``view_of`` is the input it
    shares its buffer with (reshape, transpose, basic indexing), else None.
    """

    index: int
    op: str | None
    inputs: tuple[int | None, ...]
    shape: tuple[int, ...]
    dtype: str
    saved_bytes: int
    residuals: tuple[int, ...] = ()
    nbytes: int = 0
    differentiable: bool = True
    view_of: int | None = None


@dataclass(frozen=True)
class Application:
    """What re-executing one op needs: the op, its operands (a variable index, or a constant
    held by the graph) and its parameters."""

    op: Op
    operands: tuple[Any, ...]
    constant: tuple[bool, ...]
    params: dict


@dataclass(frozen=True)
class Graph:
    """Variables in topological order; ``output`` is the index of the traced output (None if
    the function's output is not traced). ``applications[i]`` re-executes op variable i."""

    variables: tuple[Variable, ...]
    output: int | None
    applications: dict[int, Application] = field(default_factory=dict, repr=False,
                                                 compare=False)

    @property
    def operations(self) -> int:
        return sum(v.op is not None for v in self.variables)

    @property
    def inputs(self) -> tuple[int, ...]:
        return tuple(v.index for v in self.variables if v.op is None)

    def __str__(self) -> str:
        lines = [f"graph: {len(self.variables) - self.operations} inputs, "
                 f"{self.operations} operations, output v{self.output}"]
        for v in self.variables:
            if v.op is None:
                rhs = "input"
            else:
                rhs = f"{v.op}({', '.join('const' if i is None else f'v{i}' for i in v.inputs)})"
            lines.append(f"  v{v.index} = {rhs:<28} shape {v.shape} {v.dtype}, "
                         f"keeps {v.saved_bytes} bytes")
        return "\n".join(lines)

    def to_dot(self) -> str:
        """Graphviz DOT text: one node per variable, one labelled edge per operation input."""
        lines = ["digraph computation {", "  rankdir=LR;", "  node [shape=ellipse];"]
        for v in self.variables:
            style = ", style=bold" if v.index == self.output else ""
            lines.append(f'  v{v.index} [label="v{v.index}\\n{v.shape} {v.dtype}"{style}];')
        for v in self.variables:
            for position, source in enumerate(v.inputs):
                if source is not None:
                    lines.append(f'  v{source} -> v{v.index} [label="{v.op}:{position}"];')
        lines.append("}")
        return "\n".join(lines)


def _distinct_bytes(arrays: Any) -> int:
    """Bytes of the distinct buffers behind ``arrays`` (an array listed twice counts once)."""
    roots = {id(root): root for root in map(buffer_root, arrays) if isinstance(root, ARRAY_TYPES)}
    return sum(int(root.nbytes) for root in roots.values())


class _Recorder:
    """The structure pass's recorder (see :class:`~.ops.Tape`): numbers every value."""

    def __init__(self) -> None:
        self.tape = Tape(recorder=self)
        self.index: dict[int, int] = {}  # id(node) -> variable index
        self.variables: list[Variable] = []
        self.applications: dict[int, Application] = {}

    def leaf(self, value: Any) -> Tracer:
        tracer = self.tape.variable(value)
        number = self.index[id(tracer.node)] = len(self.variables)
        self.variables.append(Variable(number, None, (), tuple(xp.shape(value)),
                                       str(xp.result_type(value)), 0, (),
                                       int(xp.asarray(value).nbytes)))
        return tracer

    def __call__(self, op: Op, args: tuple, values: tuple, output: Any, params: dict) -> Any:
        if not op.differentiable:  # a comparison: a plain array, a constant of its consumers
            return output
        number = len(self.variables)
        inputs = tuple(self.index[id(a.node)] if type(a) is Tracer else None for a in args)
        residual_arrays = op.residuals(values, output, params)
        self.variables.append(Variable(
            number, op.name, inputs, tuple(xp.shape(output)), str(xp.result_type(output)),
            _distinct_bytes(residual_arrays), self._residual_indices(op, residual_arrays, values,
                                                                     output, inputs, number),
            int(xp.asarray(output).nbytes), op.differentiable, self._view_of(output, values,
                                                                               inputs)))
        constant = tuple(i is None for i in inputs)
        operands = tuple(v if c else i for v, c, i in zip(values, constant, inputs))
        self.applications[number] = Application(op, operands, constant, dict(params))
        node = Node(op, (), (), (), params, xp.shape(output), xp.result_type(output))
        self.index[id(node)] = number
        return Tracer(output, node, self.tape)

    @staticmethod
    def _residual_indices(op: Op, arrays: tuple, values: tuple, output: Any,
                          inputs: tuple, number: int) -> tuple[int, ...]:
        found: list[int] = []
        for array in arrays:
            if array is output:
                found.append(number)
                continue
            position = next((k for k, v in enumerate(values) if v is array), None)
            if position is None:
                raise OpError(f"{op.name}: saves an array that is neither an input nor its "
                              "output; it cannot be planned as a graph node")
            if inputs[position] is not None:
                found.append(inputs[position])
        return tuple(dict.fromkeys(found))

    @staticmethod
    def _view_of(output: Any, values: tuple, inputs: tuple) -> int | None:
        root = buffer_root(output)
        for value, source in zip(values, inputs):
            if source is not None and isinstance(value, ARRAY_TYPES) and buffer_root(value) is root:
                return source
        return None


def structure(fn: Callable[..., Any], args: tuple, argnums: tuple[int, ...] | None = None,
              name: str = "trace") -> tuple[Graph, list[Any], list[tuple[int, int, Any]]]:
    """The structure pass: run ``fn`` once with the arguments named by ``argnums`` (all when
    None) as inputs; the others are constants. Returns the graph, the input leaves' values
    (variables 0, 1, ...), and per input argument ``(number, leaf count, unflatten)`` to shape
    its gradients like the argument."""
    function(fn, f"{name}: fn")
    recorder = _Recorder()
    boxed, leaves, arguments = list(args), [], []
    for number in range(len(args)) if argnums is None else argnums:
        values, unflatten = flatten(args[number])
        values = [as_float_array(leaf, f"{name} argument {number}") for leaf in values]
        boxed[number] = unflatten([recorder.leaf(value) for value in values])
        leaves += values
        arguments.append((number, len(values), unflatten))
    output = fn(*boxed)
    traced = type(output) is Tracer and output.tape is recorder.tape
    graph = Graph(tuple(recorder.variables),
                  recorder.index[id(output.node)] if traced else None, recorder.applications)
    return graph, leaves, arguments


def trace(fn: Callable[..., Any], *args: Any) -> Graph:
    """Run ``fn`` once on ``args`` (all of them become inputs) and return its graph."""
    return structure(fn, args)[0]
