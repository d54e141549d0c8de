"""The computational graph of a traced function (section 6.5.1): nodes are variables, edges
are operations. Built from a tape in creation order, so it is topologically sorted already."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..checks import function
from .autodiff import as_float_array
from .backend import ARRAY_TYPES, buffer_root
from .ops import Node, Tape, Tracer
from .trees import flatten


@dataclass(frozen=True)
class Variable:
    """One value of the graph: an input (``op`` None) or an op's output.

    ``inputs`` are indices of the variables the op read (None for a constant operand);
    ``saved_bytes`` is what the op keeps for its VJP (its declared residuals), in bytes.
    """

    index: int
    op: str | None
    inputs: tuple[int | None, ...]
    shape: tuple[int, ...]
    dtype: str
    saved_bytes: int


@dataclass(frozen=True)
class Graph:
    variables: tuple[Variable, ...]
    output: int | None

    @property
    def operations(self) -> int:
        return sum(v.op is not None for v in self.variables)

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


def _saved_bytes(node: Node) -> int:
    """Bytes of the distinct buffers the node keeps (an array saved twice counts once)."""
    roots = {id(root): root for root in map(buffer_root, node.residuals)
             if isinstance(root, ARRAY_TYPES)}
    return sum(int(root.nbytes) for root in roots.values())


def graph_from_tape(tape: Tape, output: Node | None) -> Graph:
    numbering: dict[int, int] = {}
    variables = []
    for node in tape.variables + tape.nodes:
        index = numbering[id(node)] = len(variables)
        inputs = tuple(None if p is None else numbering[id(p)] for p in node.parents)
        variables.append(Variable(index, node.op.name if node.op else None, inputs,
                                  tuple(node.shape), str(node.dtype), _saved_bytes(node)))
    return Graph(tuple(variables), None if output is None else numbering[id(output)])


def trace(fn: Callable[..., Any], *args: Any) -> Graph:
    """Run ``fn`` once on ``args`` (all of them become inputs) and return its graph."""
    function(fn, "trace: fn")
    tape = Tape()
    boxed = []
    for number, arg in enumerate(args):
        leaves, unflatten = flatten(arg)
        boxed.append(unflatten([tape.variable(as_float_array(leaf, f"trace argument {number}"))
                                for leaf in leaves]))
    output = fn(*boxed)
    return graph_from_tape(tape, output.node if type(output) is Tracer else None)
