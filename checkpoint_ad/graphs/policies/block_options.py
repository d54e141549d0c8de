"""The blocks of the hierarchical ``optimal`` and, for each, several ways to run it.

A graph is cut into a sequence of blocks (:func:`.blocks.cuts`): block t holds the ops in
(c_{t-1}, c_t] and reads only its own ops, its **entry** c_{t-1} (None for the first block:
the inputs) and inputs; its **exit** c_t is the only op of the block read after it. So the
cotangents a block's backward steps allocate are its own and its entry's.

An :class:`Option` of a block is one plan of the block alone, split at its first backward step
into ``forward`` (computes the block from its entry, leaving ``held`` bytes resident: the
option's tape and the exit) and ``backward`` (runs the block's backward steps, recomputing
from the tape and the entry, and frees everything of the block). Options come from exact
search on the block at several budgets (its least peak up to its store-all peak), or, for a
block too large for it, from ``dtr`` at several budgets; store_all inside the block is always
one (:mod:`.block_plans`). All bytes are live bytes (docs/graph_model.md) of the block's
values and cotangents, the entry's value counted only where the option frees it, its cotangent
always:

* ``forward_peak``: the peak during ``forward`` (the entry held by the caller);
  ``forward_free_peak``: the same with the entry counted and freed after its last use, when
  the backward does not read it (``reads_entry``);
* ``held``: the bytes resident after ``forward`` (tape and exit);
* ``backward_peak``: the peak during ``backward``, counting ``held``, the exit's cotangent
  (live from the start, except for the last block whose backward allocates the seed) and the
  entry's cotangent once allocated; when the backward does not read the exit
  (``needs_exit`` False) it starts by freeing it, and ``backward_rest_peak`` is the peak of
  the rest, for a caller that has freed the exit already;
* ``cost``: the cost (sum of op costs) of both parts;
* ``turn``: both parts at once when nothing runs between them (the block is the last of what
  remains to be differentiated), without the computations whose values no step reads: its
  ``turn_peak`` (the exit's cotangent live from the start) and ``turn_cost``;
  ``turn_release`` is the turn that also frees the entry after its last read, and
  ``turn_release_peak`` its peak, the entry counted.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

from ..costs import GraphCosts
from ..plans import GraphAction, GraphStep
from .block_plans import block_plans
from .blocks import cuts

COMPUTE, FREE, BACKWARD = GraphAction.COMPUTE, GraphAction.FREE, GraphAction.BACKWARD


@dataclass(frozen=True)
class Option:
    """One way to run a block (see the module docstring; bytes and op-cost units)."""

    forward: tuple[GraphStep, ...]
    forward_free: tuple[GraphStep, ...]
    backward: tuple[GraphStep, ...]
    forward_peak: int
    forward_free_peak: int
    held: int
    backward_peak: int
    backward_rest_peak: int
    cost: float
    reads_entry: bool
    needs_exit: bool
    turn: tuple[GraphStep, ...]
    turn_peak: int
    turn_cost: float
    turn_release: tuple[GraphStep, ...]
    turn_release_peak: int

    def measures(self) -> tuple[float, ...]:
        return (self.forward_peak, self.forward_free_peak, self.held, self.backward_peak,
                self.backward_rest_peak, self.turn_peak, self.turn_release_peak, self.cost,
                self.turn_cost)

    def kind(self) -> tuple[bool, bool]:
        return self.reads_entry, self.needs_exit

    @property
    def backward_rest(self) -> tuple[GraphStep, ...]:
        """The backward steps after the exit is freed (all of them when it is needed)."""
        return self.backward if self.needs_exit else self.backward[1:]


@dataclass(frozen=True)
class Block:
    """Block t of ``costs``: its ``ops`` (index order), ``entry`` and ``exit``; its options
    are found by ``deadline`` (a ``time.perf_counter()`` value) or not at all."""

    costs: GraphCosts
    ops: tuple[int, ...]
    entry: int | None
    last: bool
    deadline: float = math.inf

    @property
    def exit(self) -> int:
        return self.ops[-1]

    @property
    def cost(self) -> float:
        return math.fsum(self.costs.costs[i] for i in self.ops)

    def advance(self, free_entry: bool) -> list[GraphStep]:
        """Compute the block keeping only its exit; the entry is freed after its last use when
        ``free_entry`` (it is the working value), else left to the caller."""
        costs, last_use = self.costs, {}
        for i in self.ops:
            for p in costs.op_parents[i]:
                last_use[p] = i
        steps = []
        for i in self.ops:
            steps.append(GraphStep(COMPUTE, i))
            steps += [GraphStep(FREE, p) for p in costs.op_parents[i]
                      if last_use[p] == i and (p != self.entry or free_entry)]
        return steps

    def advance_peak(self, free_entry: bool) -> int:
        """The peak of :meth:`advance` in bytes (the entry counted when it is freed)."""
        start = {self.entry} if free_entry and self.entry is not None else set()
        return local_run(self.costs, self.advance(free_entry), start, set())[0]

    @cached_property
    def options(self) -> tuple[Option, ...]:
        """The block's options that no other beats on every measure."""
        graph, nodes = self._subgraph()
        found = {}
        for steps in block_plans(graph, self.deadline):
            option = self._option([GraphStep(a, nodes[i]) for a, i in steps if i < len(nodes)],
                                  [a for a, i in steps].index(BACKWARD))
            found.setdefault((option.kind(), option.measures()), option)
        kept = [o for o in found.values() if not any(
            other is not o and other.kind() == o.kind() and
            all(x <= y for x, y in zip(other.measures(), o.measures()))
            for other in found.values())]
        return tuple(sorted(kept, key=Option.measures))

    def _subgraph(self) -> tuple[GraphCosts, list[int]]:
        """The block as a graph of its own (entry and inputs as inputs); a block other than
        the last gets a sink op of 0 bytes reading the exit, whose backward step stands for
        the exit's cotangent arriving from the next block."""
        costs, members = self.costs, set(self.ops)
        outside = sorted({p for i in self.ops for p in costs.parents[i] if p not in members})
        nodes = outside + list(self.ops)
        index = {node: k for k, node in enumerate(nodes)}
        parents = [()] * len(outside) + [tuple(index[p] for p in costs.parents[i])
                                         for i in self.ops]
        residuals = [()] * len(outside) + [tuple(index[r] for r in costs.residuals[i])
                                           for i in self.ops]
        zeros = [0] * len(outside)
        sizes = zeros + [costs.sizes[i] for i in self.ops]
        op_costs = zeros + [costs.costs[i] for i in self.ops]
        flags = [True] * len(outside) + [costs.differentiable[i] for i in self.ops]
        if not self.last:
            parents.append((index[self.exit],))
            residuals.append(())
            sizes.append(0)
            op_costs.append(0)
            flags.append(costs.has_cotangent[self.exit])
        return GraphCosts(parents, sizes, op_costs, residuals, differentiable=flags), nodes

    def _option(self, steps: list[GraphStep], split: int) -> Option:
        """The option of a block plan (``steps`` in graph nodes, the sink's dropped; its first
        backward step at ``split`` in the plan with the sink)."""
        forward, backward = steps[:split - (not self.last)], steps[split - (not self.last):]
        tail = [k for k, step in enumerate(forward) if step.node == self.exit]
        if forward[tail[-1]].action is FREE:  # keep the exit for the caller; free it later
            del forward[tail[-1]]
            backward.insert(0, GraphStep(FREE, self.exit))
        costs, entry = self.costs, self.entry
        forward_peak, held, resident = local_run(costs, forward, set(), set())
        reads_entry = entry is not None and _reads(costs, backward, entry)
        forward_free = _free_after_last_read(costs, forward, None if reads_entry else entry)
        start = start_of(None if reads_entry else entry)
        cotangent = set() if self.last or not costs.has_cotangent[self.exit] else {self.exit}
        needs_exit = not backward or backward[0] != GraphStep(FREE, self.exit)
        rest = backward if needs_exit else backward[1:]
        turn = without_dead(costs, forward + backward)
        turn_release = _free_after_last_read(costs, turn, entry)
        return Option(tuple(forward), tuple(forward_free), tuple(backward), forward_peak,
                      local_run(costs, forward_free, start, set())[0], held,
                      local_run(costs, backward, resident, cotangent)[0],
                      local_run(costs, rest, resident - {self.exit}, cotangent)[0],
                      _cost(costs, steps), reads_entry, needs_exit, tuple(turn),
                      local_run(costs, turn, set(), cotangent)[0], _cost(costs, turn),
                      tuple(turn_release),
                      local_run(costs, turn_release, start_of(entry), cotangent)[0])


def start_of(entry: int | None) -> set[int]:
    return set() if entry is None else {entry}


def _free_after_last_read(costs: GraphCosts, steps: list[GraphStep], node: int | None
                          ) -> list[GraphStep]:
    """``steps`` with ``node`` freed right after the last step that reads it (first if none
    does); unchanged when ``node`` is None."""
    if node is None:
        return list(steps)
    reads = [k for k, step in enumerate(steps) if _reads(costs, [step], node)]
    at = reads[-1] + 1 if reads else 0
    return list(steps[:at]) + [GraphStep(FREE, node)] + list(steps[at:])


def _cost(costs: GraphCosts, steps: list[GraphStep]) -> float:
    return math.fsum(costs.costs[node] for action, node in steps if action is COMPUTE)


def _reads(costs: GraphCosts, steps: list[GraphStep], node: int) -> bool:
    """Whether a compute or backward step of ``steps`` reads ``node``."""
    return any(node in (costs.op_parents[i] if action is COMPUTE else costs.op_residuals[i])
               for action, i in steps if action is not FREE)


def without_dead(costs: GraphCosts, steps: list[GraphStep]) -> list[GraphStep]:
    """``steps`` without every computation whose value is freed before any kept step reads
    it, and without that free (one pass from the end: a removed computation reads nothing)."""
    needed: set[int] = set()
    freed_at: dict[int, int] = {}
    dropped: set[int] = set()
    for position in reversed(range(len(steps))):
        action, node = steps[position]
        if action is FREE:
            freed_at[node] = position
            needed.discard(node)
        elif action is BACKWARD:
            needed.update(costs.op_residuals[node])
        elif node in needed:
            needed.discard(node)
            needed.update(costs.op_parents[node])
        else:
            dropped.update((position, freed_at.pop(node)))
    return [step for position, step in enumerate(steps) if position not in dropped]


def local_run(costs: GraphCosts, steps: list[GraphStep], resident: set[int],
              cotangents: set[int]) -> tuple[int, int, set[int]]:
    """Run ``steps`` from ``resident`` values and live ``cotangents`` (both counted; anything
    else a step reads is taken to be held elsewhere): (peak bytes, final live bytes, final
    resident set), under the counting rules of :func:`~checkpoint_ad.graphs.replay.replay`."""
    sizes, resident = costs.sizes, set(resident)
    live = sum(sizes[i] for i in resident) + sum(sizes[i] for i in cotangents)
    peak = live
    for action, node in steps:
        if action is COMPUTE:
            live += sizes[node]
            resident.add(node)
            peak = max(peak, live)
        elif action is FREE:
            live -= sizes[node]
            resident.discard(node)
        else:
            if node == costs.output:
                live += sizes[node]
            added = sum(sizes[p] for p in costs.new_cotangents[node])
            peak = max(peak, live + added)
            live += added - sizes[node]
    return peak, live, resident


def graph_blocks(costs: GraphCosts, most: int, deadline: float = math.inf) -> list[Block]:
    """The blocks of ``costs``, consecutive blocks merged so that there are at most ``most``
    (each of about the same number of ops), their options due by ``deadline``."""
    boundaries = cuts(costs)
    per_block = math.ceil(len(costs.op_nodes) / most)
    groups, start, count = [], -1, 0
    ops = iter(costs.op_nodes)
    members: list[int] = []
    for c in boundaries:
        for i in ops:
            members.append(i)
            if i == c:
                break
        count = len(members)
        if count >= per_block or c == costs.output:
            groups.append((None if start < 0 else start, tuple(members)))
            start, members = c, []
    return [Block(costs, block_ops, entry, k == len(groups) - 1, deadline)
            for k, (entry, block_ops) in enumerate(groups)]
