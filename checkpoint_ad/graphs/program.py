"""From a traced :class:`~checkpoint_ad.engine.graph.Graph` to what planning and execution
need: the :class:`GraphCosts` (pure data) and the operations that re-execute each node.

Ops that lie on no path to the output are dropped and the rest renumbered; inputs are kept
(their gradients are zeros when unreached). Sizes are exact bytes. A **view** (reshape,
transpose, basic indexing, broadcast_to) shares its parent's buffer in numpy; the graph
executor gives every value a buffer of its own (it copies a view when it computes one), so
that a value's bytes are exactly ``sizes[i]`` whatever else is resident, and the prediction
equals the Meter. Costs are 1 per op unless given.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..engine.graph import Application, Graph
from ..errors import OpError
from .costs import GraphCosts


@dataclass(frozen=True)
class Program:
    """``costs`` for the planners; ``applications[i]`` re-executes op node i (operands are
    node indices of this program, or constants); ``inputs`` are the traced graph's variable
    indices of the input nodes 0, 1, ...; ``views`` lists the ops numpy computes as views;
    ``shapes`` and ``dtypes`` describe every node's value."""

    costs: GraphCosts
    applications: dict[int, Application]
    inputs: tuple[int, ...]
    views: frozenset[int]
    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[str, ...]

    @property
    def constant_bytes(self) -> int:
        """Bytes of the constant operands the graph holds (literals, dropout masks)."""
        seen: dict[int, int] = {}
        for application in self.applications.values():
            for operand, constant in zip(application.operands, application.constant):
                if constant and hasattr(operand, "nbytes"):
                    seen[id(operand)] = int(operand.nbytes)
        return sum(seen.values())


def graph_costs(graph: Graph) -> GraphCosts:
    """The costs of a traced graph (:func:`checkpoint_ad.trace`), one unit per op: the
    :class:`GraphCosts` of :func:`compile_graph`'s program."""
    return compile_graph(graph).costs


def compile_graph(graph: Graph, costs: Sequence[float] | None = None) -> Program:
    """The program of ``graph`` (see the module docstring); ``costs`` per variable of the
    traced graph (default 1 per op)."""
    if not isinstance(graph, Graph):
        raise OpError(f"expected a traced Graph (checkpoint_ad.trace), got "
                      f"{type(graph).__name__}")
    if graph.output is None:
        raise OpError("the traced function's output does not depend on its inputs: there is "
                      "nothing to differentiate or plan")
    variables = graph.variables
    if variables[graph.output].op is None:
        raise OpError("the traced function returns one of its inputs unchanged: there is no "
                      "operation to plan")
    keep = _on_path_to(graph)
    number = {old: new for new, old in enumerate(keep)}
    parents, residuals, applications, views = [], [], {}, set()
    for new, old in enumerate(keep):
        variable = variables[old]
        parents.append(tuple(number[i] for i in variable.inputs if i is not None))
        residuals.append(tuple(number[i] for i in variable.residuals))
        if variable.op is not None:
            application = graph.applications[old]
            operands = tuple(operand if constant else number[operand]
                             for operand, constant in zip(application.operands,
                                                          application.constant))
            applications[new] = Application(application.op, operands, application.constant,
                                            application.params)
            if variable.view_of is not None:
                views.add(new)
    chosen = None if costs is None else [costs[old] for old in keep]
    graph_costs = GraphCosts(parents, [variables[old].nbytes for old in keep], chosen,
                             residuals, [variables[old].op for old in keep],
                             [variables[old].differentiable for old in keep])
    return Program(graph_costs, applications, tuple(i for i in keep if variables[i].op is None),
                   frozenset(views), tuple(variables[old].shape for old in keep),
                   tuple(variables[old].dtype for old in keep))


def _on_path_to(graph: Graph) -> list[int]:
    """Inputs, and the ops from which the output can be reached, in index order."""
    variables = graph.variables
    reaches = [False] * len(variables)
    reaches[graph.output] = True
    for variable in reversed(variables[:graph.output + 1]):
        if reaches[variable.index]:
            for source in variable.inputs:
                if source is not None:
                    reaches[source] = True
    return [v.index for v in variables if v.op is None or reaches[v.index]]
