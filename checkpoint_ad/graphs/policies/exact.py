"""``optimal`` on small graphs: the least-cost plan under a byte budget over **all** plans of
the vocabulary (docs/graph_model.md), by A* search over states (resident ops, backward steps
taken).

Pruning that keeps the search exact:

* a value that no remaining backward step can need (not a residual of one, nor an ancestor
  of one through ops) is freed at once: keeping it only costs memory;
* any plan can be rewritten, at no cost in time or memory, so that every free comes right
  after the last step that read the value; so a move is a compute or a backward step followed
  by the frees of a subset of the values it read;
* the heuristic is the cost of computing, once each, the residuals of the remaining backward
  steps that are not resident: every plan must pay it, so A* stays exact.

The minimum feasible budget (named when a budget is too small) is the least peak over all
plans, found by the same search minimising the peak instead of the cost.
"""
from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Iterator
import math
import time

from ...errors import BudgetError, PolicyError
from ..costs import GraphCosts
from ..plans import GraphAction, GraphStep

DEFAULT_MAX_STATES = 1_000_000


def table_bytes(costs: GraphCosts) -> int:
    """An upper estimate of the bytes of the search's tables before its first state: two masks
    of V bits (V nodes) per backward step, plus the ints' headers."""
    return len(costs) * (len(costs) // 4 + 64)


class Space:
    """The search space of recompute-only plans: states (resident ops, backward steps taken),
    moves between them and a heuristic; bitmask tables of a graph (bit i = node i). Building
    them stops with :class:`SearchLimit` at ``deadline`` (they take time quadratic in the
    nodes). :mod:`.exact_offload` extends it with host copies; :func:`search` runs on either.
    """

    def __init__(self, costs: GraphCosts, deadline: float = math.inf) -> None:
        self.costs = costs
        self.order = costs.backward_order
        count = len(self.order)
        self.parents = [mask_of(p) for p in costs.op_parents]
        self.residuals = [mask_of(r) for r in costs.op_residuals]
        fresh = costs.new_cotangents
        self.added = [sum(costs.sizes[p] for p in fresh[b]) for b in range(len(costs))]
        alive = [0] * (count + 1)  # bytes of cotangents alive before backward step k
        live = set()
        for k, b in enumerate(self.order):
            alive[k] = sum(costs.sizes[p] for p in live)
            live.discard(b)
            live.update(fresh[b])
        self.cotangents = alive
        self.needed = [0] * (count + 1)   # values a step >= k may need (residual ancestors)
        self.wanted = [0] * (count + 1)   # residuals of the steps >= k
        for k in reversed(range(count)):
            if time.perf_counter() > deadline:
                raise SearchLimit(f"policy 'optimal': exact search ran out of its time limit "
                                  f"preparing its tables for this {len(costs.op_nodes)}-op graph")
            b = self.order[k]
            self.wanted[k] = self.wanted[k + 1] | self.residuals[b]
            self.needed[k] = self.needed[k + 1] | self._ancestors(self.residuals[b])

    def _ancestors(self, mask: int) -> int:
        closure, stack = 0, list(bits(mask))
        while stack:
            node = stack.pop()
            if closure >> node & 1:
                continue
            closure |= 1 << node
            stack.extend(bits(self.parents[node]))
        return closure

    start: tuple = (0, 0)

    def done(self, state: tuple) -> bool:
        """All backward steps taken and nothing resident."""
        return state[-1] == len(self.order) and state[0] == 0

    def heuristic(self, state: tuple) -> float:
        """A lower bound of the cost still to pay: the residuals still wanted that are not
        resident, computed once each."""
        mask, k = state
        return sum(self.costs.costs[i] for i in bits(self.wanted[k] & ~mask))

    def expand(self, steps: object) -> list[GraphStep]:
        """The plan steps of a move (a move may describe them compactly until a plan is
        built: most moves never are)."""
        return steps  # type: ignore[return-value]

    def estimate(self, state: tuple, cost: float, peak: float) -> tuple[float, float]:
        """The A* key of ``state`` reached at ``cost`` with peak ``peak``: lower bounds of a
        complete plan's cost and peak."""
        return cost + self.heuristic(state), peak

    def moves(self, state: tuple, memory: int) -> list[Move]:
        """The moves from ``state`` holding ``memory`` bytes of values (see :data:`Move`)."""
        mask, k = state
        return [(steps, (new_mask, new_k), *rest)
                for steps, new_mask, new_k, *rest in self.actions(mask, k, memory)]

    def actions(self, mask: int, k: int, memory: int
                ) -> list[tuple[list[GraphStep], int, int, int, int, float]]:
        """(steps, new mask, new k, new memory, step peak, step cost) from a state: a compute
        or a backward step, each followed by the frees of any subset of the values it read
        (every plan can be rewritten so that a value is freed right after its last use, at
        no cost in time or memory, so no other free needs considering)."""
        costs, found = self.costs, []
        base = memory + self.cotangents[k]
        for node in bits(self.needed[k] & ~mask):
            if self.parents[node] & ~mask:
                continue
            size = costs.sizes[node]
            step = GraphStep(GraphAction.COMPUTE, node)
            found += self._with_frees(step, self.parents[node], mask | 1 << node, k,
                                      memory + size, base + size, costs.costs[node])
        if k < len(self.order):
            b = self.order[k]
            if not self.residuals[b] & ~mask:
                seed = costs.sizes[b] if b == costs.output else 0
                found += self._with_frees(GraphStep(GraphAction.BACKWARD, b), self.residuals[b],
                                          mask, k + 1, memory, base + seed + self.added[b], 0.0)
        return found

    def _with_frees(self, step: GraphStep, read: int, mask: int, k: int, memory: int,
                    peak: int, cost: float) -> list:
        options = list(bits(read))
        found = []
        for chosen in range(1 << len(options)):
            freed = [options[j] for j in range(len(options)) if chosen >> j & 1]
            found.append(([step] + [GraphStep(GraphAction.FREE, f) for f in freed],
                          mask & ~mask_of(tuple(freed)), k,
                          memory - sum(self.costs.sizes[f] for f in freed), peak, cost))
        return found

    def drop_dead(self, state: tuple, memory: int) -> tuple[tuple, int, list[int]]:
        """``state`` without the resident values no remaining backward step can need (freed
        at once: keeping them only costs memory), its memory, and the values freed."""
        mask, *rest = state
        k = rest[-1]
        dead = mask & ~self.needed[k]
        nodes = list(bits(dead))
        return ((mask & ~dead, *rest), memory - sum(self.costs.sizes[i] for i in nodes), nodes)


#: a move of the search: (the plan steps it takes, as :meth:`Space.expand` reads them, the new
#: state, the bytes of values resident after it, its peak, its cost: the cost of its
#: computation, or, with transfers, its time)
Move = tuple[object, tuple, int, int, float]


class SearchLimit(PolicyError):
    """The exact search gave up (states or time) before proving an optimum."""


def search(costs: GraphCosts, budget: float, max_states: int = DEFAULT_MAX_STATES,
           minimise_peak: bool = False, deadline: float = math.inf,
           space: Space | None = None) -> tuple[list[GraphStep], float, int]:
    """The least-cost plan with peak <= ``budget``, the lower peak among equal costs (or, with
    ``minimise_peak``, the least peak, then the least cost): (steps, cost, peak). Raises
    BudgetError when no plan fits, :class:`SearchLimit` past ``max_states`` expanded states
    or the ``deadline`` (a ``time.perf_counter()`` value). ``space``: the states and moves to
    search (default: the recompute-only :class:`Space` of ``costs``; with transfers, the
    "cost" is the time)."""
    space = space if space is not None else Space(costs, deadline)
    start = space.start
    best: dict[tuple, tuple[float, float]] = {start: (0.0, 0)}
    parent: dict[tuple, tuple[tuple, list[GraphStep]]] = {}
    memory_of = {start: 0}
    tie = itertools.count()
    frontier = [((0.0, 0), next(tie), 0.0, 0, start)]
    expanded = 0
    while frontier:
        _, _, cost, peak, state = heapq.heappop(frontier)
        if _rank(cost, peak, minimise_peak) > best.get(state, _WORST):
            continue
        if space.done(state):
            return _path(space, parent, state), cost, peak
        expanded += 1
        if expanded % 64 == 0 and time.perf_counter() > deadline:  # states are slow on large graphs
            raise SearchLimit(f"policy 'optimal': exact search ran out of its time limit after "
                              f"{expanded:,} states on this {len(costs.op_nodes)}-op graph")
        if expanded > max_states:
            raise SearchLimit(
                f"policy 'optimal': exact search expanded {max_states:,} states without proving "
                f"the optimum of this {len(costs.op_nodes)}-op graph; exact search handles "
                "graphs up to about 20 ops at tight budgets (raise max_states)")
        for steps, new_state, memory, step_peak, step_cost in space.moves(
                state, memory_of[state]):
            if step_peak > budget:
                continue
            new_state, memory, dead = space.drop_dead(new_state, memory)
            new_cost, new_peak = cost + step_cost, max(peak, step_peak)
            rank = _rank(new_cost, new_peak, minimise_peak)
            if rank < best.get(new_state, _WORST):
                best[new_state] = rank
                memory_of[new_state] = memory
                parent[new_state] = (state, steps, dead)
                estimate = (rank if minimise_peak else
                            space.estimate(new_state, new_cost, new_peak))
                heapq.heappush(frontier, (estimate, next(tie), new_cost, new_peak, new_state))
    raise BudgetError("no plan fits")


_WORST = (math.inf, math.inf)


def _rank(cost: float, peak: float, minimise_peak: bool) -> tuple[float, float]:
    return (peak, cost) if minimise_peak else (cost, peak)


def _path(space: Space, parent: dict, state: tuple) -> list[GraphStep]:
    pieces = []
    while state in parent:
        state, steps, dead = parent[state]
        pieces.append(space.expand(steps) + [GraphStep(GraphAction.FREE, d) for d in dead])
    return [step for steps in reversed(pieces) for step in steps]


def mask_of(nodes: Iterable[int]) -> int:
    mask = 0
    for node in nodes:
        mask |= 1 << node
    return mask


def bits(mask: int) -> Iterator[int]:
    """The nodes of ``mask``, lowest first."""
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low
