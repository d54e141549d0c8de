"""What a graph planner sees: :class:`GraphCosts`, pure data about a computational graph.

The conventions are those of docs/graph_model.md. Nodes ``0..V-1`` are in one topological
order; a node without parents is an **input** (pinned, never computed or freed, not counted in
activation bytes); every other node is an **op**; the last node is the **output** (the scalar
loss) and every op lies on a path to it. ``sizes[i]`` is the bytes of node i's value (its
cotangent has the same size), ``costs[i]`` the cost of one computation of op i (1 per op by
default), ``residuals[i]`` the nodes backward(i) reads (a subset of its parents and itself; by
default its parents, as most ops save their inputs), ``ops[i]`` the op's name (for op-type
policies such as ``save_ops``). An op whose output carries no gradient (a comparison) has
``differentiable[i]`` False. ``backward_costs[i]`` is the time of backward(i) in the same cost
units (default ``2 * costs[i]``; docs/offload_model.md): it enters a plan's time, never its cost.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from ..checks import finite_total, flag, plain, real_number, sequence, whole_number
from ..errors import PlanError


@dataclass(frozen=True, eq=False)
class GraphCosts:
    """A graph for planning; see the module docstring. Validated at construction."""

    parents: tuple[tuple[int, ...], ...]
    sizes: tuple[int, ...]
    costs: tuple[float, ...] | None = None
    residuals: tuple[tuple[int, ...], ...] | None = None
    ops: tuple[str | None, ...] | None = None
    differentiable: tuple[bool, ...] | None = None
    backward_costs: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        parents = _index_lists("parents", self.parents, None)
        count = len(parents)
        set_ = object.__setattr__
        set_(self, "parents", tuple(tuple(dict.fromkeys(p)) for p in parents))
        set_(self, "sizes", _column("sizes", self.sizes, count, _byte_count))
        is_input = [not p for p in self.parents]
        costs = self.costs if self.costs is not None else [0 if i else 1 for i in is_input]
        set_(self, "costs", _column("costs", costs, count, _cost))
        finite_total(self.costs, "GraphCosts.costs", error=PlanError)
        residuals = self.residuals if self.residuals is not None else self.parents
        set_(self, "residuals", tuple(tuple(dict.fromkeys(r))
                                      for r in _index_lists("residuals", residuals, count)))
        ops = self.ops if self.ops is not None else [None if i else "op" for i in is_input]
        set_(self, "ops", _column("ops", ops, count, lambda where, v: v))
        flags = self.differentiable if self.differentiable is not None else [True] * count
        set_(self, "differentiable", _column("differentiable", flags, count,
                                             lambda where, v: flag(v, where, error=PlanError)))
        backward = (self.backward_costs if self.backward_costs is not None
                    else [2 * c for c in self.costs])
        set_(self, "backward_costs", _column("backward_costs", backward, count, _cost))
        finite_total(self.backward_costs, "GraphCosts.backward_costs", error=PlanError)
        self._validate()

    def _validate(self) -> None:
        count = len(self.parents)
        if count < 2 or not self.parents[-1]:
            raise PlanError("a graph needs at least one input and an op as its last node "
                            "(the output)")
        for i, (parents, residuals) in enumerate(zip(self.parents, self.residuals)):
            if any(not 0 <= p < i for p in parents):
                raise PlanError(f"node {i}: parents must be earlier nodes (topological order), "
                                f"got {parents}")
            if not set(residuals) <= set(parents) | {i}:
                raise PlanError(f"node {i}: residuals {residuals} must be among its parents "
                                f"{parents} or the node itself")
        unreached = [i for i in self.op_nodes if not self.consumers[i] and i != count - 1]
        if unreached:
            raise PlanError(f"ops {unreached[:5]} lie on no path to the output (node "
                            f"{count - 1}); drop them")

    def __len__(self) -> int:
        return len(self.parents)

    @property
    def output(self) -> int:
        return len(self.parents) - 1

    def is_input(self, node: int) -> bool:
        return not self.parents[node]

    @cached_property
    def op_nodes(self) -> tuple[int, ...]:
        return tuple(i for i, p in enumerate(self.parents) if p)

    @cached_property
    def consumers(self) -> tuple[tuple[int, ...], ...]:
        found: list[list[int]] = [[] for _ in self.parents]
        for i, parents in enumerate(self.parents):
            for p in parents:
                found[p].append(i)
        return tuple(map(tuple, found))

    @cached_property
    def op_parents(self) -> tuple[tuple[int, ...], ...]:
        """The parents of each node that are ops (inputs are always resident)."""
        return tuple(tuple(p for p in parents if self.parents[p]) for parents in self.parents)

    @cached_property
    def op_residuals(self) -> tuple[tuple[int, ...], ...]:
        """What backward(i) needs resident: its op residuals, and the output itself."""
        needed = [tuple(r for r in res if self.parents[r]) for res in self.residuals]
        needed[-1] = tuple(dict.fromkeys(needed[-1] + (self.output,)))
        return tuple(needed)

    @cached_property
    def has_cotangent(self) -> tuple[bool, ...]:
        """Whether op i gets a cotangent: it is the output, or a differentiable op read by a
        differentiable op that has one. Inputs' cotangents are gradients, counted apart."""
        flags = [False] * len(self.parents)
        flags[self.output] = True
        for i in reversed(range(len(self.parents) - 1)):
            flags[i] = bool(self.parents[i]) and self.differentiable[i] and any(
                flags[c] and self.differentiable[c] for c in self.consumers[i])
        return tuple(flags)

    @cached_property
    def backward_order(self) -> tuple[int, ...]:
        """The ops that take a backward step, in the fixed reverse order (decreasing index).
        Ops without a cotangent are skipped: their backward step would do nothing."""
        return tuple(i for i in reversed(self.op_nodes) if self.has_cotangent[i])

    @cached_property
    def new_cotangents(self) -> tuple[tuple[int, ...], ...]:
        """For each op i, the parents whose cotangent backward(i) allocates (its op parents
        with a cotangent whose first consumer in reverse order is i)."""
        seen: set[int] = set()
        found: list[tuple[int, ...]] = [()] * len(self.parents)
        for i in self.backward_order:
            if not self.differentiable[i]:
                continue
            fresh = tuple(p for p in self.op_parents[i] if self.has_cotangent[p] and p not in seen)
            seen.update(fresh)
            found[i] = fresh
        return tuple(found)

    @property
    def total_cost(self) -> float:
        """The cost of computing every op once (store_all's cost)."""
        return math.fsum(self.costs[i] for i in self.op_nodes)

    @property
    def total_backward_cost(self) -> float:
        """The time of the backward steps, each taken once (docs/offload_model.md)."""
        return math.fsum(self.backward_costs[i] for i in self.backward_order)

    def key(self) -> tuple:
        """A hashable identity of the graph (for caches)."""
        return (self.parents, self.sizes, self.costs, self.residuals, self.differentiable,
                self.backward_costs)


def _index_lists(name: str, lists: Any, count: int | None) -> list[tuple[int, ...]]:
    """``GraphCosts.<name>``: one sequence of node indices per node (``count`` of them; None:
    any number, as ``parents`` defines the count)."""
    entries = sequence(lists, f"GraphCosts.{name}", length=count, error=PlanError)
    return [tuple(whole_number(node, f"GraphCosts.{name}[{i}] entry", error=PlanError,
                               noun="node index")
                  for node in sequence(entry, f"GraphCosts.{name}[{i}]", error=PlanError))
            for i, entry in enumerate(entries)]


def _column(name: str, values: Any, count: int, convert: Any) -> tuple:
    """``GraphCosts.<name>``: one entry per node, each converted by ``convert(where, value)``."""
    values = sequence(values, f"GraphCosts.{name}", length=count, error=PlanError)
    return tuple(convert(f"GraphCosts.{name}[{i}]", v) for i, v in enumerate(values))


def _byte_count(where: str, value: Any) -> int:
    return whole_number(value, where, error=PlanError, noun="whole number of bytes")


def _cost(where: str, value: Any) -> float | int:
    """A finite cost >= 0, kept as given (an int stays an int) unless it is a numpy number."""
    real_number(value, where, positive=False, error=PlanError)
    return plain(value)


def checked_costs(costs: object, caller: str) -> GraphCosts:
    """``costs`` when it is a :class:`GraphCosts`; else a :class:`PlanError` naming ``caller``."""
    if not isinstance(costs, GraphCosts):
        raise PlanError(f"{caller}: costs must be a GraphCosts, got {type(costs).__name__}")
    return costs
