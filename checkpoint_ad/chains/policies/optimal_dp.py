"""The DP tables of the ``optimal`` policy: filling them, and rebuilding a plan from them.

The recursion, its steps and its memory levels are described in :mod:`.optimal`; this module
holds the numerics.

**Computation.** The tables are filled for increasing chain length j − i; one length takes a
few numpy operations over every start i, split k, flag f and free memory level m at once:
O(n³·M) work and O(n²·M) memory, M being the levels. The tables are int32 when that is exact
(whole-number costs with 2·(n+1)·U(0, n) below 2**29), else float64: the bulk is bound by
memory traffic, which 4-byte entries halve (measured: 2.7x faster at n = 500). numpy touches
only these cost tables, never a model array: it is the one exception to DESIGN's "policies
never import numpy", made for speed.
The plan is rebuilt from the tables by a loop over an explicit stack of pending sub-problems, so
no Python recursion grows with n.
"""
from __future__ import annotations

import bisect
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..costs import ChainCosts
from ..plans import PlanBuilder

BLOCK_BYTES = 1 << 21  # sums added, then minimised, while in cache (measured: 1.4x in float64)
UNREACHABLE = 2 ** 30  # "infeasible" in int32 tables: any finite entry plus it still fits
FIRST_GAP = 1 / 16  # the first gap of a geometric grid, as a fraction of the median size


@dataclass(frozen=True)
class Problem:
    """A chain as the DP sees it: memory as *levels*, sizes as amounts of memory.

    ``levels[m]`` is the free memory level m guarantees (bytes, or slots), from ``levels[0] = 0``
    up; a sub-problem at level m may use that much. Sizes are exact: ``state_sizes[j]`` is a_j
    (j = 0..n), ``tape_sizes[i]`` is b_{i+1} and ``input_sizes[i]`` c_{i+1}, the part of it that
    is x_i. A move from level m to free memory ``levels[m] + ...`` lands on the highest level not
    above it (:meth:`level_below`): rounding down, so the memory a plan really has is never less
    than its level says. ``compute[i]`` is u_{i+1} and ``prefix[t]`` is U(0, t), both in the
    tables' dtype; ``tapes`` is False when held tapes are forbidden. ``round_up``: a move lands
    on the lowest level not below it, a relaxation whose costs are lower bounds.
    """

    compute: np.ndarray
    prefix: np.ndarray
    levels: np.ndarray
    state_sizes: np.ndarray
    tape_sizes: np.ndarray
    input_sizes: np.ndarray
    tapes: bool
    round_up: bool = False

    @property
    def n(self) -> int:
        return len(self.compute)

    @property
    def free(self) -> int:
        """The highest level the tables answer."""
        return len(self.levels) - 1

    def level_below(self, amounts: np.ndarray) -> np.ndarray:
        """The highest level at most each amount (−1 below zero), capped at the top level (which
        keeps everything); with ``round_up`` the lowest level at least each amount."""
        if not self.round_up:
            return np.searchsorted(self.levels, amounts, side="right") - 1
        above = np.minimum(np.searchsorted(self.levels, amounts, side="left"), self.free)
        return np.where(amounts < 0, -1, above)

    @property
    def unreachable(self) -> np.generic:
        """The tables' "infeasible": inf, or :data:`UNREACHABLE` in int32 tables."""
        floating = np.issubdtype(self.compute.dtype, np.floating)
        return self.compute.dtype.type(np.inf if floating else UNREACHABLE)

    @property
    def flags(self) -> int:
        """How many values of f the tables keep: without held tapes f changes nothing."""
        return 2 if self.tapes else 1

    @property
    def working(self) -> int:
        """The index of D's hold move in the hold tables, after C's flags."""
        return self.flags


def _table_dtype(compute: tuple[float, ...]) -> type:
    """int32 when it is exact, else float64.

    Every finite table entry, and every sum of two compared in a minimum, is at most
    2·(n+1)·U(0, n) (recompute-all bounds each sub-chain's optimum); with whole-number costs
    below 2**29 in total that way, int32 holds them all, and each plus :data:`UNREACHABLE` (C is
    always finite, so two infeasible values are never added), while halving the memory traffic
    that bounds the DP's speed.
    """
    whole = all(float(u).is_integer() and u >= 0 for u in compute)
    return np.int32 if whole and 2 * (len(compute) + 1) * sum(compute) < 2 ** 29 else np.float64


def everything_bytes(costs: ChainCosts, tapes: bool) -> int:
    """Bytes besides x_0 that keep everything: every held tape but stage n's (x_1..x_{n−1}
    without tapes). With that much free memory the least cost is reached, whatever the levels."""
    return sum(costs.tape_bytes[:-1]) if tapes else sum(costs.state_bytes[1:-1])


@dataclass(frozen=True)
class Grid:
    """The free memory levels of a table: slots (``slots``: every state and held tape one
    item) or bytes (the chain's own sizes).

    Three kinds: :meth:`of_slots` (levels 0, 1, 2... slots), :meth:`uniform` (levels every
    ``unit`` bytes) and :meth:`geometric` (levels whose gaps grow by a constant ratio, from the
    smallest size up to everything: a fixed relative resolution for every budget, so one table
    serves small budgets and large ones alike).
    """

    levels: tuple[float, ...]
    slots: bool = False

    @classmethod
    def of_slots(cls, n: int) -> Grid:
        """Levels 0..n slots."""
        return cls(tuple(float(m) for m in range(n + 1)), slots=True)

    @classmethod
    def uniform(cls, unit: int, width: int) -> Grid:
        """Levels 0, unit, 2·unit, ... width·unit bytes."""
        return cls(tuple(float(unit * m) for m in range(width + 1)))

    @classmethod
    def geometric(cls, costs: ChainCosts, count: int, tapes: bool) -> Grid:
        """``count`` levels above 0 up to everything (:func:`everything_bytes`): the first gap
        is :data:`FIRST_GAP` of the median state or tape size and each next gap a constant
        ratio r times the one before, r solved so that the last level is everything (r = 1,
        even gaps, when ``count`` first gaps already reach it). Levels are whole bytes.

        A constant ratio gives every budget the same relative resolution; levels far below
        the median size would hold little (measured on 500 stages of 1 KiB..3 MiB at 100
        levels: the worst of 20 budgets 1.12x the cost of a solve fitted to it with a first
        gap of a quarter of the median, 1.003x with a sixteenth).
        """
        top = everything_bytes(costs, tapes)
        first = max(1.0, min(FIRST_GAP * statistics.median((*costs.state_bytes[1:],
                                                           *costs.tape_bytes)), top))
        ratio = _gap_ratio(first / max(top, 1), count)
        levels = [0.0]
        for level in range(count):
            levels.append(levels[-1] + first * ratio ** level)
        scale = top / levels[-1]
        whole = sorted({math.floor(level * scale) for level in levels} | {top})
        return cls(tuple(float(level) for level in whole))

    @property
    def width(self) -> int:
        """The highest level."""
        return len(self.levels) - 1

    def level_of(self, free: float) -> int:
        """The highest level at most ``free`` (which must be at least 0)."""
        return bisect.bisect_right(self.levels, free) - 1

    def problem(self, costs: ChainCosts, width: int, tapes: bool, round_up: bool = False
                ) -> Problem:
        """The DP over levels 0..width (``round_up``: relaxed), with the chain's sizes in the
        grid's amounts (in slots: one per state and per held tape, inputs shared with nothing)."""
        dtype = _table_dtype(costs.compute)
        prefix = np.concatenate(([0.0], np.cumsum(costs.compute, dtype=float)))
        n = costs.n
        sizes = (((1,) * (n + 1), (1,) * n, (0,) * n) if self.slots else
                 (costs.state_bytes, costs.tape_bytes, costs.tape_input_bytes))
        return Problem(np.asarray(costs.compute, dtype), prefix.astype(dtype),
                       np.asarray(self.levels[:width + 1], dtype=float),
                       *(np.asarray(size, dtype=float) for size in sizes), tapes, round_up)


def _gap_ratio(smallest: float, count: int) -> float:
    """The r > 0 with smallest · (1 + r + ... + r^(count−1)) = 1 (r = 1 if the count of
    smallest gaps already reaches 1), by bisection on logarithms (r^count overflows floats)."""
    if smallest * count >= 1 or count <= 1:
        return 1.0

    def reaches(r: float) -> bool:  # smallest · (r^count − 1) / (r − 1) >= 1, for r > 1
        power = count * math.log(r)
        return math.log(smallest) + power + math.log1p(-math.exp(-power)) - math.log(r - 1) >= 0

    low, high = 1.0, 2.0
    while not reaches(high):
        low, high = high, 2 * high
    for _ in range(100):
        middle = (low + high) / 2
        low, high = (low, middle) if reaches(middle) else (middle, high)
    return high


@dataclass(frozen=True)
class Tables:
    """The DP's values (``inf``: infeasible) and the hold-a-tape moves they were made with.

    ``cost[l, f, i, m]`` = C(i, i+l, m, f); ``working[l, j, m]`` = U(0, j−l) + D(j−l, j, m),
    indexed by its end j: a split k of (i, j) costs U(i, k) + D(k, j, m) + C(i, k, m, f) = cost +
    working − U(0, i), and U(0, i) is the same for every split, so it is subtracted once after the
    minimum. So all splits of one length are contiguous slices, which numpy adds in long inner
    loops, and no third table is written (fresh pages cost this DP as much time as its sums:
    measured 0.4 s of 2.1 at n = 500). For flag f, start i and level m, ``hold_target[f, i, m]`` is
    the level after holding stage i+1's tape (0 where it does not fit: only unreachable entries
    read it) and ``hold_fits[f, i, m]`` says whether it fits; ``store_target[k, m]`` is the level
    left after storing x_k (−1: it does not fit); ``prefix[t]`` is U(0, t).
    """

    cost: np.ndarray
    working: np.ndarray
    hold_target: np.ndarray
    hold_fits: np.ndarray
    store_target: np.ndarray
    prefix: np.ndarray

    def hold(self, problem: Problem, length: int) -> np.ndarray:
        """u_{i+1} + C(i+1, i+length, target, 0) for every hold move, start i and free (or inf)."""
        starts = problem.n - length + 1
        target, fits = self.hold_target[:, :starts], self.hold_fits[:, :starts]
        if not problem.tapes:
            return np.full(target.shape, problem.unreachable)
        after = self.cost[length - 1, 0, 1:starts + 1]
        gathered = after[np.arange(starts)[:, None], target]
        held = problem.compute[:starts, None] + gathered
        return np.where(fits, held, problem.unreachable)

    def hold_value(self, problem: Problem, start: int, end: int, flag: int, free: int) -> float:
        """One entry of :meth:`hold`, computed the same way."""
        if not self.hold_fits[flag, start, free]:
            return math.inf
        target = self.hold_target[flag, start, free]
        return problem.compute[start] + self.cost[end - start - 1, 0, start + 1, target]

    def store(self, problem: Problem, length: int) -> np.ndarray:
        """C(k, k+length, m − a_k, 1) for every start k and free m (inf if x_k does not fit)."""
        starts = problem.n - length + 1
        target = self.store_target[:starts]
        gathered = self.cost[length, problem.flags - 1, :starts][
            np.arange(starts)[:, None], np.maximum(target, 0)]
        return np.where(target >= 0, gathered, problem.unreachable)

    def store_value(self, problem: Problem, start: int, end: int, free: int) -> float:
        """One entry of :meth:`store`."""
        target = self.store_target[start, free]
        if target < 0:
            return math.inf
        return self.cost[end - start, problem.flags - 1, start, target]

    def splits(self, start: int, end: int, flag: int, free: int) -> np.ndarray:
        """U(i, k) + D(k, j, m) + C(i, k, m, f) for k = i+1..j−1, as the DP computed them."""
        length = end - start
        sums = self.cost[1:length, flag, start, free] + self.working[length - 1:0:-1, end, free]
        return sums - self.prefix[start]


def _hold_moves(problem: Problem) -> tuple[np.ndarray, np.ndarray]:
    """Level after holding stage i+1's tape, and whether it fits, per move, start and level.

    Moves 0..flags−1 are C's with that f (x_i stored: free + f·a_i − b + (1−f)·c); the last,
    ``problem.working``, is D's (x_i only the working value: free − b)."""
    releasable = problem.state_sizes[:-1, None].copy()
    releasable[0] = 0  # x_0 is never freed
    free = problem.levels
    flag = np.arange(problem.flags)[:, None, None]
    shared = problem.input_sizes[:, None]
    stored = free + flag * releasable - problem.tape_sizes[:, None] + (1 - flag) * shared
    working = (free - problem.tape_sizes[:, None])[None]
    target = problem.level_below(np.concatenate([stored, working]))
    fits = (target >= 0) & problem.tapes
    return np.clip(target, 0, problem.free), fits


def _store_moves(problem: Problem) -> np.ndarray:
    """Level after storing x_k, per k and level (−1: x_k does not fit)."""
    return problem.level_below(problem.levels - problem.state_sizes[:, None])


def solve(problem: Problem) -> Tables:
    """Fill the DP tables for every sub-chain, shortest first."""
    n, flags, width = problem.n, problem.flags, problem.free + 1
    compute, prefix = problem.compute, problem.prefix
    # Only entries of real sub-chains (i + l <= n) are ever written or read, so the tables are
    # left uninitialised: their other half is never touched, nor paged in.
    cost = np.empty((n + 1, flags, n + 1, width), compute.dtype)
    working = np.empty((n + 1, n + 1, width), compute.dtype)
    cost[1, :, :n] = compute[:, None]
    working[1, 1:] = (prefix[:n] + compute)[:, None]
    tables = Tables(cost, working, *_hold_moves(problem), _store_moves(problem), prefix)
    scratch = np.empty(max(BLOCK_BYTES // cost.itemsize, flags * n * width), compute.dtype)
    for length in range(2, n + 1):
        starts = n - length + 1
        hold = tables.hold(problem, length)
        split = _best_split(tables, length, scratch)
        split -= prefix[:starts, None]
        np.minimum(hold[:flags], split, out=cost[length, :, :starts])
        working[length, length:] = np.minimum(tables.store(problem, length),
                                              hold[problem.working])
        working[length, length:] += prefix[:starts, None]
    return tables


def _best_split(tables: Tables, length: int, scratch: np.ndarray) -> np.ndarray:
    """The advance branch plus U(0, i): min over i<k<j of U(0, k) + D(k, j, m) + C(i, k, m, f),
    j = i + length.

    This is the O(n³·M) bulk, done for every flag, start and free memory at once, a few splits
    at a time so that each block of sums is still in cache when its minimum is taken.
    """
    cost, working = tables.cost, tables.working
    _, flags, _, width = cost.shape
    starts = cost.shape[2] - length
    per_split = flags * starts * width
    count = max(1, scratch.size // per_split)  # splits per block
    best = None
    for first in range(1, length, count):
        last = min(length, first + count)
        block = scratch[:(last - first) * per_split].reshape(last - first, flags, starts, width)
        np.add(cost[first:last, :, :starts],
               working[length - first:length - last:-1, None, length:], out=block)
        least = block.min(axis=0)
        best = least if best is None else np.minimum(best, least, out=best)
    return best


class Rebuild:
    """Replays the tables' choices as plan steps, with pending sub-problems on an explicit stack.

    ``working`` tracks the working value (None once a backward step consumed it), so that a
    RESTORE is emitted only when needed.
    """

    def __init__(self, problem: Problem, tables: Tables) -> None:
        self.problem, self.tables = problem, tables
        self.builder = PlanBuilder(problem.n)
        self.working: int | None = 0
        self.pending: list[tuple[Callable[..., None], tuple[int, ...]]] = []

    def run(self, free: int) -> PlanBuilder:
        """The steps of C(0, n, free, 0)."""
        self.pending.append((self.reverse_restorable, (0, self.problem.n, free, 0)))
        while self.pending:
            method, arguments = self.pending.pop()
            method(*arguments)
        return self.builder

    def reverse_restorable(self, start: int, end: int, free: int, flag: int) -> None:
        """C(start, end, free, flag): x_start is stored; free it at its last use if flag."""
        if self.working != start:
            self.builder.restore(start)
            self.working = start
        if end == start + 1:
            self.builder.turn(end)
            self.working = None
            if flag:
                self.builder.free(start)
            return
        tables, column = self.tables, min(flag, self.problem.flags - 1)
        splits = tables.splits(start, end, column, free)
        if tables.hold_value(self.problem, start, end, column, free) <= splits.min():
            if flag:
                self.builder.free(start)  # before taping: x_start's memory serves the tape
            self._hold(start, end, int(tables.hold_target[column, start, free]))
            return
        split = start + 1 + int(np.argmin(splits))
        self.builder.advance(start + 1, split)
        self.working = split
        self.pending.append((self.reverse_restorable, (start, split, free, flag)))
        self.pending.append((self.reverse_working, (split, end, free)))

    def reverse_working(self, start: int, end: int, free: int) -> None:
        """D(start, end, free): x_start is the working value only."""
        if end == start + 1:
            self.builder.turn(end)
            self.working = None
            return
        problem, tables = self.problem, self.tables
        move = problem.working
        if (tables.hold_value(problem, start, end, move, free)
                <= tables.store_value(problem, start, end, free)):
            self._hold(start, end, int(tables.hold_target[move, start, free]))
            return
        self.builder.save(start)
        self.pending.append((self.reverse_restorable,
                             (start, end, int(tables.store_target[start, free]), 1)))

    def _hold(self, start: int, end: int, free_after: int) -> None:
        """Tape stage start+1 and hold it while start+2..end are reversed from it."""
        self.builder.tape(start + 1)
        self.working = start + 1
        self.pending.append((self._backward, (start + 1,)))
        self.pending.append((self.reverse_restorable, (start + 1, end, free_after, 0)))

    def _backward(self, stage: int) -> None:
        self.builder.backward(stage)
        self.working = None
