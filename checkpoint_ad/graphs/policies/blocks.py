"""A graph as a chain of blocks: the cut points every path crosses, and the chain costs of the
blocks between them, so that a chain planner can plan a large graph (the hierarchical
``optimal``).

A **cut** is an op c such that no edge jumps over it: every op after c reads only ops from c
on (inputs are pinned and do not count). Consecutive cuts c_{t-1} < c_t bound **block t** =
the ops in (c_{t-1}, c_t]; the last cut is the output. Block t reads only its own ops, c_{t-1}
and inputs, so it is a chain stage whose state x_t is c_t (x_0: the inputs, 0 bytes).
A residual stack becomes one block per residual block; a chain, one block per op; a graph
whose skips span everything (a U-Net's) stays one block.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from ...chains.plans import ChainCosts
from ..costs import GraphCosts


def cuts(costs: GraphCosts) -> list[int]:
    """The cut ops in increasing order (the output, always a cut, last): c is a cut when no
    op before it has a consumer after it."""
    found, reach = [], -1
    for node in costs.op_nodes:
        if reach <= node:
            found.append(node)
        reach = max(reach, max(costs.consumers[node], default=node))
    return found


@dataclass(frozen=True)
class Blocks:
    """The blocks of ``costs``: ``cut[t]`` is c_t (``cut[0]`` None: the inputs) and
    ``ops[t]`` the ops of block t (t = 1..n; index 0 unused)."""

    costs: GraphCosts
    cut: tuple[int | None, ...]
    ops: tuple[tuple[int, ...], ...]

    @classmethod
    def of(cls, costs: GraphCosts) -> Blocks:
        boundaries = cuts(costs)
        blocks: list[tuple[int, ...]] = [()]
        start = -1
        for c in boundaries:
            blocks.append(tuple(i for i in costs.op_nodes if start < i <= c))
            start = c
        return cls(costs, (None,) + tuple(boundaries), tuple(blocks))

    @property
    def n(self) -> int:
        return len(self.cut) - 1

    @cached_property
    def read_by_backward(self) -> tuple[frozenset[int], ...]:
        """The values block t's backward steps read (c_{t-1} among them when read)."""
        found = [frozenset()]
        for t in range(1, self.n + 1):
            members = set(self.ops[t]) | ({self.cut[t - 1]} if self.cut[t - 1] is not None
                                          else set())
            found.append(frozenset(r for i in self.ops[t] if self.costs.has_cotangent[i]
                                   for r in self.costs.op_residuals[i] if r in members))
        return tuple(found)

    @cached_property
    def tapes(self) -> tuple[frozenset[int], ...]:
        """What a held tape of block t keeps: what its backward reads, and c_t, its restart
        point (as the chain model counts a held tape)."""
        return (frozenset(),) + tuple(self.read_by_backward[t] | {self.cut[t]}
                                      for t in range(1, self.n + 1))

    def chain_costs(self) -> ChainCosts:
        """The blocks as a chain: u_t the block's cost, a_t the size of c_t, b_t its held tape
        (c_t included), of which c_{t-1}'s size when the tape keeps it."""
        sizes = self.costs.sizes
        compute = tuple(sum(self.costs.costs[i] for i in self.ops[t]) for t in range(1, self.n + 1))
        states = (0,) + tuple(sizes[self.cut[t]] for t in range(1, self.n + 1))
        tapes = tuple(sum(sizes[i] for i in self.tapes[t]) for t in range(1, self.n + 1))
        inputs = tuple(sizes[self.cut[t - 1]] if self.cut[t - 1] in self.tapes[t] else 0
                       for t in range(1, self.n + 1))
        return ChainCosts(self.n, compute, states, tapes, inputs)
