"""The block DP of ``optimal(bandwidth=...)`` on chains (docs/chain_offload.md): the plan of
least time under a **store budget** among the plans of the block family, where each block of
the forward sweep is kept, moved to the host, or recomputed from a checkpoint (POFO-style).

A state is (i, kind, p): the next block starts from ``x_i``; ``kind`` is the previous block's
(``start``, ``keep``, ``move`` or ``segment``); p is the bytes the previous block prefetches
during this block's last backward step (its offload, ``b_i`` after a move, overlaps this
block's first step). The bytes R that earlier blocks keep stored on the device while a block
lives only add to every moment of it, so a state's completions are summed up by a Pareto
front of (store need g, time): with R stored the completion's store peak is R + g. A block's
time is the sum of its steps' times with those transfers; its store need is its largest
moment. The fronts are filled by two loops (the states reachable going forward, then their
fronts going back), with no recursion over the chain's length; the start's front answers
every store budget at once.

Units: bytes for sizes, cost units for times, bytes per cost unit for the bandwidth.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ...errors import BudgetError, PolicyError
from ..costs import ChainCosts
from ..plans import PlanBuilder

KEEP, MOVE, SEGMENT, MOVED_SEGMENT = "keep", "move", "segment", "moved segment"
START = "start"
MAX_STAGES = 64  # the longest chain planned with transfers (about 30 s here, its ladder's
# dozen fronts included; the DP takes about n³ steps)


@dataclass(frozen=True)
class Block:
    """One block: ``kind`` and the stages ``first..last`` it covers (x_{first-1} its start)."""

    kind: str
    first: int
    last: int


class BlockProblem:
    """A chain's costs as the block DP reads them, at one bandwidth (None: no transfer)."""

    def __init__(self, costs: ChainCosts, bandwidth: float | None) -> None:
        self.costs, self.n = costs, costs.n
        self.u, self.bc = costs.compute, costs.backward_costs
        self.a, self.b = costs.state_bytes, costs.tape_bytes
        self.rate = bandwidth
        if costs.n > MAX_STAGES:
            raise PolicyError(f"policy 'optimal': planning transfers covers chains of up to "
                              f"{MAX_STAGES} stages (its DP takes about n³ steps, a minute at "
                              f"200); this chain has {costs.n:,}: plan it without a bandwidth")
        self.prefix, self.backward, self.tapes = [0.0], [0.0], [0]
        for t in range(costs.n):
            self.prefix.append(self.prefix[-1] + self.u[t])
            self.backward.append(self.backward[-1] + self.bc[t])
            self.tapes.append(self.tapes[-1] + self.b[t])

    def moved(self, size: int) -> float:
        """The time ``size`` bytes take to move (0 when nothing moves)."""
        return size / self.rate if size else 0.0

    def moves(self, i: int, stored: int, kind: str, prefetch: int
              ) -> Iterator[tuple[Block, float, int, tuple | None]]:
        """Every block that may start from x_i: (block, its time, its store peak, the next
        state or None when it ends the chain)."""
        n, u, bc, a, b = self.n, self.u, self.bc, self.a, self.b
        leaving = b[i - 1] if kind == MOVE else 0
        t = i + 1
        if t == n:
            step = max(u[t - 1] + bc[t - 1], self.moved(leaving), self.moved(prefetch))
            yield Block(KEEP, t, t), step, stored + leaving + prefetch, None
        else:
            first = max(u[t - 1], self.moved(leaving))
            last = max(bc[t - 1], self.moved(prefetch))
            peak = stored + max(leaving + b[t - 1], b[t - 1] + prefetch)
            yield Block(KEEP, t, t), first + last, peak, (t, stored + b[t - 1], KEEP, 0)
            if self.rate is not None and t < n - 1:
                yield Block(MOVE, t, t), first + last, peak, (t, stored, MOVE, b[t - 1])
        if kind == MOVE:
            for k in range(t, n):
                yield self._after_move(i, k, stored, leaving)
            return
        own = a[i] if kind == SEGMENT else 0
        for k in range(t, n + 1):
            yield from self._segments(i, k, stored, own, kind, prefetch)

    def _segments(self, i: int, k: int, stored: int, own: int, kind: str, prefetch: int
                  ) -> Iterator[tuple[Block, float, int, tuple | None]]:
        """The segment i+1..k from x_i (``own``: the bytes of x_i saved by this block), kept,
        and moved when x_i is a checkpoint of its own and the segment does not end the chain."""
        u, bc, b = self.u, self.bc, self.b
        span = self.prefix[k] - self.prefix[i]
        backward = self.backward[k] - self.backward[i]
        last = bc[i] if k > i + 1 else u[k - 1] + bc[k - 1]
        reverse = span + backward - last + max(last, self.moved(prefetch))
        held = self.tapes[k - 1] - self.tapes[i]
        peak = stored + own + max(held, (b[i] if k > i + 1 else 0) + prefetch)
        if k == self.n:
            yield Block(SEGMENT, i + 1, k), reverse, peak, None
            return
        yield Block(SEGMENT, i + 1, k), span + reverse, peak, (k, stored + own, SEGMENT, 0)
        if own and self.rate is not None:
            advance = max(span, self.moved(own))
            yield (Block(MOVED_SEGMENT, i + 1, k), advance + reverse, peak,
                   (k, stored, SEGMENT, own))


    def _after_move(self, i: int, k: int, stored: int, tape: int
                    ) -> tuple[Block, float, int, tuple]:
        """The segment i+1..k restarting from the moved tape of stage i: its advance overlaps
        the tape's offload, and the tape comes back during the next block's last step (before
        this segment's reversal restores x_i from it)."""
        span = self.prefix[k] - self.prefix[i]
        held = self.tapes[k - 1] - self.tapes[i]
        time = max(span, self.moved(tape)) + span + self.backward[k] - self.backward[i]
        return Block(SEGMENT, i + 1, k), time, stored + tape + held, (k, stored, SEGMENT, tape)


Point = tuple  # (store need g, time, block, next state or None, index in its front)


def fronts(problem: BlockProblem) -> dict[tuple, list[Point]]:
    """For every reachable state (i, kind, p) (the bytes R stored before it left out), the
    Pareto front of its completions: points (g, time, ...) such that with R stored the
    completion's store peak is R + g, each of least time for its g (g ascending, time
    descending)."""
    start = (0, START, 0)
    layers: list[dict[tuple, list]] = [dict() for _ in range(problem.n + 1)]
    layers[0][start] = []
    for i in range(problem.n):
        for state, edges in layers[i].items():
            for block, time, peak, following in problem.moves(i, 0, *state[1:]):
                added = 0
                if following is not None:
                    added, following = following[1], (following[0], *following[2:])
                    layers[following[0]].setdefault(following, [])
                edges.append((block, time, peak, added, following))
    found: dict[tuple, list[Point]] = {}
    for i in range(problem.n - 1, -1, -1):
        for state, edges in layers[i].items():
            points = []
            for block, time, peak, added, following in edges:
                if following is None:
                    points.append((peak, time, block, None, 0))
                    continue
                for index, (need, rest, *_) in enumerate(found[following]):
                    points.append((max(peak, added + need), time + rest, block, following,
                                   index))
            found[state] = _pareto(points)
    return found


def _pareto(points: list[Point]) -> list[Point]:
    """The points of least time for their need, need ascending and time strictly descending."""
    points.sort(key=lambda point: (point[0], point[1]))
    front: list[Point] = []
    for point in points:
        if not front or point[1] < front[-1][1]:
            front.append(point)
    return front


def front_blocks(found: dict[tuple, list[Point]], point: Point) -> list[Block]:
    """The blocks of a point's completion, first to last."""
    blocks = [point[2]]
    while point[3] is not None:
        point = found[point[3]][point[4]]
        blocks.append(point[2])
    return blocks


def solve_blocks(problem: BlockProblem, store_budget: float) -> tuple[float, list[Block]]:
    """The least time under ``store_budget`` (bytes: checkpoints and held tapes on the device,
    x_0 included) and its blocks, first to last (:class:`BudgetError` when none fits)."""
    found = fronts(problem)
    fitting = [point for point in found[(0, START, 0)]
               if problem.a[0] + point[0] <= store_budget]
    if not fitting:
        least = problem.a[0] + found[(0, START, 0)][0][0]
        raise BudgetError(f"policy 'optimal': store budget {store_budget:,} bytes is below "
                          f"the least store peak of the offload DP's plans, {least:,} bytes")
    return fitting[-1][1], front_blocks(found, fitting[-1])


def blocks_plan(costs: ChainCosts, blocks: list[Block]) -> PlanBuilder:
    """The steps of a block sequence (docs/chain_offload.md, the block family)."""
    builder = PlanBuilder(costs.n)
    saved = [False] * len(blocks)
    for index, block in enumerate(blocks):
        i, k = block.first - 1, block.last
        if block.kind in (KEEP, MOVE):
            if block.last == costs.n:
                _fetch(builder, _fetched(blocks, index))
                builder.turn(block.last)
            else:
                builder.tape(block.last)
                if block.kind == MOVE:
                    builder.offload(block.last)
            continue
        saved[index] = index > 0 and blocks[index - 1].kind in (SEGMENT, MOVED_SEGMENT)
        if saved[index]:
            builder.save(i)
        if block.kind == MOVED_SEGMENT:
            builder.offload(i)
        if k < costs.n:
            builder.advance(i + 1, k)
    for index in range(len(blocks) - 1, -1, -1):
        _reverse(builder, blocks, index, saved[index])
    return builder


def _reverse(builder: PlanBuilder, blocks: list[Block], index: int, saved: bool) -> None:
    """The reversal of block ``index``, the previous block's prefetch before its last step."""
    block = blocks[index]
    fetch = _fetched(blocks, index)
    if block.kind in (KEEP, MOVE):
        if block.last != builder.n:  # the last stage's turn ran with the forward
            _fetch(builder, fetch)
            builder.backward(block.last)
        return
    i, k = block.first - 1, block.last
    builder.restore(i)
    for t in range(i + 1, k):
        builder.tape(t)
    if k == i + 1:
        _fetch(builder, fetch)
    builder.turn(k)
    for t in range(k - 1, i, -1):
        if t == i + 1:
            _fetch(builder, fetch)
        builder.backward(t)
    if saved:
        builder.free(i)


def _fetched(blocks: list[Block], index: int) -> int | None:
    """The stage whose item the block before ``index`` moved (prefetched during the last step
    of block ``index``), or None."""
    previous = blocks[index - 1] if index else None
    if previous is None:
        return None
    if previous.kind == MOVE:  # a segment after a move fetched it before its own reversal
        return previous.last if blocks[index].kind in (KEEP, MOVE) else None
    if previous.kind == MOVED_SEGMENT:
        return previous.first - 1
    if index > 1 and previous.kind == SEGMENT and blocks[index - 2].kind == MOVE:
        return blocks[index - 2].last
    return None


def _fetch(builder: PlanBuilder, stage: int | None) -> None:
    if stage is not None:
        builder.prefetch(stage)
