"""Exact search with transfers (docs/offload_model.md): the least-**time** plan under a device
budget over every plan of the six actions, on small graphs.

It runs :func:`.exact.search` on a larger space: a state is (resident ops, ops with a host
copy, backward steps taken), and a move is one step — any set of offloads of resident values,
any set of prefetches of values with a host copy, and a compute, a backward step or, when
there are transfers, a ``wait`` — followed by the frees of any subset of the values the step's
action read. The pruning of :mod:`.exact` carries over: values (and host copies) no remaining
backward step can need are dropped at once, and frees come right after a last read. A host
copy is kept until no remaining step can need it, so a value is never offloaded twice —
unless a host budget is given: then a step that prefetches values may also drop their host
copies (the model drops a copy as the step of its last prefetch ends), and a step's host bytes
(the copies kept and those it makes) must fit the host budget. The
heuristic is the time of the remaining backward steps plus the cost of computing, once each,
the residuals still wanted that are neither resident nor on the host: every plan pays it.
"""
from __future__ import annotations

import math
from collections.abc import Iterator

from ..costs import GraphCosts
from ..plans import GraphAction, GraphStep
from ...plans.transfers import step_time
from .exact import Move, Space, bits

OFFLOAD, PREFETCH, WAIT = GraphAction.OFFLOAD, GraphAction.PREFETCH, GraphAction.WAIT


class OffloadSpace(Space):
    """States (resident ops, ops with a host copy, backward steps taken); move costs are step
    times in cost units at ``bandwidth`` bytes per cost unit. ``budget`` (bytes) prunes moves
    early; the search checks it too. ``host_budget`` (bytes) bounds the host copies alive at
    once (docs/offload_model.md)."""

    start: tuple = (0, 0, 0)

    def __init__(self, costs: GraphCosts, bandwidth: float, budget: float = math.inf,
                 deadline: float = math.inf, host_budget: float = math.inf) -> None:
        super().__init__(costs, deadline)
        self.bandwidth, self.budget, self.host_budget = bandwidth, budget, host_budget
        left = [0.0] * (len(self.order) + 1)
        for k in reversed(range(len(self.order))):
            left[k] = left[k + 1] + costs.backward_costs[self.order[k]]
        self.backward_left = left
        self._computed: dict[tuple[int, int], float] = {}
        self._bytes: dict[int, int] = {}

    def heuristic(self, state: tuple) -> float:
        """A lower bound of the time still to take: the remaining backward steps, and one
        computation of every op that must be computed again — a residual still wanted that is
        neither resident nor on the host, and, recursively, each op parent of one that is
        neither (a value gets to the host only from the device)."""
        mask, host, k = state
        key = (mask | host, k)
        if key not in self._computed:
            self._computed[key] = self._must_compute(mask | host, k)
        return self.backward_left[k] + self._computed[key]

    def _must_compute(self, available: int, k: int) -> float:
        pending, closure = self.wanted[k] & ~available, 0
        while pending:
            closure |= pending
            parents = 0
            for node in bits(pending):
                parents |= self.parents[node]
            pending = parents & ~available & ~closure
        return sum(self.costs.costs[i] for i in bits(closure))

    def estimate(self, state: tuple, cost: float, peak: float) -> tuple[float, float]:
        """Least estimated time first; among equals, the state furthest along (the most time
        spent): many plans of equal time differ only in where their transfers hide, and
        going deep first finds one of them without visiting the others."""
        return cost + self.heuristic(state), -cost

    def moves(self, state: tuple, memory: int) -> list[Move]:
        """Every step from ``state``: transfers, an action, then frees; each move's steps are
        described as (offloaded mask, prefetched mask, action step or None for ``wait``, freed
        mask) until :meth:`expand` spells them out."""
        mask, host, k = state
        sizes_of, base, budget = self.bytes_of, memory + self.cotangents[k], self.budget
        found: list[Move] = []
        actions = self._step_actions(mask, k)
        bounded = self.host_budget < math.inf
        for outs in _submasks(mask & self.needed[k] & ~host):
            out_bytes = sizes_of(outs)
            if bounded and sizes_of(host | outs) > self.host_budget:
                continue
            for ins in _submasks(host & self.needed[k] & ~mask):
                in_bytes = sizes_of(ins)
                here = actions if outs | ins else actions[:-1]  # wait: only with transfers
                for step, read, made, new_k, extra, action_time in here:
                    peak = base + in_bytes + extra
                    if made & ins or peak > budget:
                        continue
                    time = step_time(action_time, out_bytes, in_bytes, self.bandwidth)
                    after = (mask | ins | made) & ~outs
                    held = memory + in_bytes - out_bytes + sizes_of(made)
                    for kept in _kept_copies(host | outs, ins, bounded):
                        for freed in _submasks(read & ~outs):
                            found.append(((outs, ins, step, freed), (after & ~freed, kept,
                                          new_k), held - sizes_of(freed), peak, time))
        return found

    def bytes_of(self, mask: int) -> int:
        """Bytes of the values of ``mask`` (remembered: the search asks often)."""
        found = self._bytes.get(mask)
        if found is None:
            found = self._bytes[mask] = sum(self.costs.sizes[i] for i in bits(mask))
        return found

    def expand(self, steps: object) -> list[GraphStep]:
        outs, ins, step, freed = steps  # type: ignore[misc]
        transfers = ([GraphStep(OFFLOAD, i) for i in bits(outs)]
                     + [GraphStep(PREFETCH, i) for i in bits(ins)])
        action = step if step is not None else GraphStep(WAIT, transfers[0].node)
        return transfers + [action] + [GraphStep(GraphAction.FREE, i) for i in bits(freed)]

    def _step_actions(self, mask: int, k: int
                      ) -> list[tuple[GraphStep | None, int, int, int, int, float]]:
        """The actions possible from (mask, k): (step, values it reads, value it makes, new
        k, bytes it adds at its peak, its time); the last one is ``wait`` (step None)."""
        costs, found = self.costs, []
        for node in bits(self.needed[k] & ~mask):
            if not self.parents[node] & ~mask:
                found.append((GraphStep(GraphAction.COMPUTE, node), self.parents[node],
                              1 << node, k, costs.sizes[node], costs.costs[node]))
        if k < len(self.order):
            b = self.order[k]
            if not self.residuals[b] & ~mask:
                seed = costs.sizes[b] if b == costs.output else 0
                found.append((GraphStep(GraphAction.BACKWARD, b), self.residuals[b], 0, k + 1,
                              seed + self.added[b], costs.backward_costs[b]))
        found.append((None, 0, 0, k, 0, 0.0))
        return found

    def drop_dead(self, state: tuple, memory: int) -> tuple[tuple, int, list[int]]:
        """As :meth:`Space.drop_dead`, and host copies no remaining step can need dropped."""
        (mask, host, k), memory, dead = super().drop_dead(state, memory)
        return (mask, host & self.needed[k], k), memory, dead


def _kept_copies(host: int, prefetched: int, bounded: bool) -> Iterator[int]:
    """The host copies after a step: all of ``host``; under a host budget also without any
    subset of the ``prefetched`` ones (their last prefetch: the model drops them then)."""
    if not bounded:
        yield host
        return
    for dropped in _submasks(prefetched):
        yield host & ~dropped


def _submasks(mask: int) -> Iterator[int]:
    """Every subset of ``mask``, the empty one first."""
    yield 0
    sub = mask
    while sub:
        yield sub
        sub = (sub - 1) & mask

