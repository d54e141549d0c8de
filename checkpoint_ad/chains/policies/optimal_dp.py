"""The DP tables of the ``optimal`` policy: filling them, and rebuilding a plan from them.

The recursion, its steps and its units are described in :mod:`.optimal`; this module holds the
numerics.

**Computation.** The tables are filled for increasing chain length j − i; one length takes a
few numpy operations over every start i, split k, flag f and free memory m at once: O(n³·M) work
and O(n²·M) memory, M being the free units, capped at what storing everything would need. The
tables are int32 when that is exact (whole-number costs, totals below 2**29), else float64: the
bulk is bound by memory traffic, which 4-byte entries halve (measured: 2.7x faster at n = 500).
numpy touches only these cost tables, never a
model array: it is the one exception to DESIGN's "policies never import numpy", made for speed.
The plan is rebuilt from the tables by a loop over an explicit stack of pending sub-problems, so
no Python recursion grows with n.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..limits import Footprint, plan_bytes
from ..plans import ChainCosts, PlanBuilder

BLOCK_BYTES = 1 << 21  # sums added, then minimised, while in cache (measured: 1.4x in float64)
UNREACHABLE = 2 ** 30  # "infeasible" in int32 tables: any finite entry plus it still fits


@dataclass(frozen=True)
class Problem:
    """A chain as the DP sees it, every size in whole memory units.

    ``compute[i]`` is u_{i+1} and ``prefix[t]`` is U(0, t), both in the tables' dtype;
    ``state_units[j]`` is a_j (j = 0..n); ``tape_units[i]`` is b_{i+1} and ``input_units[i]``
    the part of it that is x_i (rounded down, so that b − c is never undercounted); ``free`` is
    the most free memory (budget minus a_0) the tables answer; ``tapes`` is False when held
    tapes are forbidden.
    """

    compute: np.ndarray
    prefix: np.ndarray
    state_units: np.ndarray
    tape_units: np.ndarray
    input_units: np.ndarray
    free: int
    tapes: bool

    @property
    def n(self) -> int:
        return len(self.compute)

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


def _units_up(size: float, unit: int) -> int:
    """``size`` bytes in whole units of ``unit`` bytes, rounded up."""
    return int(-(-size // unit))


def everything_bytes(costs: ChainCosts, tapes: bool) -> int:
    """Bytes besides x_0 that keep everything: every held tape but stage n's (x_1..x_{n−1}
    without tapes). With that much free memory the least cost is reached, whatever the units."""
    return sum(costs.tape_bytes[:-1]) if tapes else sum(costs.state_bytes[1:-1])


@dataclass(frozen=True)
class Discretization:
    """A chain's sizes in units of ``unit`` bytes (1 and item counts in slots mode)."""

    unit: int
    state_units: list[int]
    tape_units: list[int]
    input_units: list[int]

    @classmethod
    def of(cls, costs: ChainCosts, unit: int | None) -> Discretization:
        """Sizes in units of ``unit`` bytes, rounded up (inputs down); None: one slot each."""
        if unit is None:
            return cls(1, [1] * (costs.n + 1), [1] * costs.n, [0] * costs.n)
        return cls(unit, [_units_up(size, unit) for size in costs.state_bytes],
                   [_units_up(size, unit) for size in costs.tape_bytes],
                   [int(size // unit) for size in costs.tape_input_bytes])

    def everything(self, tapes: bool) -> int:
        """Units that keep everything (see :func:`everything_bytes`)."""
        return sum(self.tape_units[:-1]) if tapes else sum(self.state_units[1:-1])

    def problem(self, costs: ChainCosts, width: int, tapes: bool) -> Problem:
        dtype = _table_dtype(costs.compute)
        prefix = np.concatenate(([0.0], np.cumsum(costs.compute, dtype=float)))
        return Problem(np.asarray(costs.compute, dtype), prefix.astype(dtype),
                       np.asarray(self.state_units, dtype=np.int64),
                       np.asarray(self.tape_units, dtype=np.int64),
                       np.asarray(self.input_units, dtype=np.int64), width, tapes)


@dataclass(frozen=True)
class Tables:
    """The DP's values (``inf``: infeasible) and the hold-a-tape moves they were made with.

    ``cost[l, f, i, m]`` = C(i, i+l, m, f); ``advanced[l, f, i, m]`` = U(i, i+l) + C(i, i+l, m, f),
    a split's advance and left part together; ``working[l, j, m]`` = D(j−l, j, m), indexed by
    its end j. So all splits of one length are contiguous slices, which numpy adds in long inner
    loops. For flag f, start i and free m, ``hold_target[f, i, m]`` is the free memory after
    holding stage i+1's tape (clamped to the budget, which only unreachable states exceed) and
    ``hold_fits[f, i, m]`` says whether it fits.
    """

    cost: np.ndarray
    advanced: np.ndarray
    working: np.ndarray
    hold_target: np.ndarray
    hold_fits: np.ndarray

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
        target = np.arange(problem.free + 1) - problem.state_units[:starts, None]
        gathered = self.cost[length, problem.flags - 1, :starts][
            np.arange(starts)[:, None], np.maximum(target, 0)]
        return np.where(target >= 0, gathered, problem.unreachable)

    def store_value(self, problem: Problem, start: int, end: int, free: int) -> float:
        """One entry of :meth:`store`."""
        target = free - problem.state_units[start]
        if target < 0:
            return math.inf
        return self.cost[end - start, problem.flags - 1, start, target]

    def splits(self, start: int, end: int, flag: int, free: int) -> np.ndarray:
        """U(i, k) + D(k, j, m) + C(i, k, m, f) for k = i+1..j−1, as the DP computed them."""
        length = end - start
        return (self.advanced[1:length, flag, start, free]
                + self.working[length - 1:0:-1, end, free])


def _hold_moves(problem: Problem) -> tuple[np.ndarray, np.ndarray]:
    """Free memory after holding stage i+1's tape, and whether it fits, per move, start, free.

    Moves 0..flags−1 are C's with that f (x_i stored: m' = m + f·a_i − b + (1−f)·c); the last,
    ``problem.working``, is D's (x_i only the working value: m' = m − b)."""
    releasable = problem.state_units[:-1, None].copy()
    releasable[0] = 0  # x_0 is never freed
    free = np.arange(problem.free + 1)
    flag = np.arange(problem.flags)[:, None, None]
    shared = problem.input_units[:, None]
    stored = free + flag * releasable - problem.tape_units[:, None] + (1 - flag) * shared
    working = (free - problem.tape_units[:, None])[None]
    target = np.concatenate([stored, working])
    fits = (target >= 0) & problem.tapes
    return np.clip(target, 0, problem.free), fits


def solve(problem: Problem) -> Tables:
    """Fill the DP tables for every sub-chain, shortest first."""
    n, flags, width = problem.n, problem.flags, problem.free + 1
    compute, prefix = problem.compute, problem.prefix
    # Only entries of real sub-chains (i + l <= n) are ever written or read, so the tables are
    # left uninitialised: their other half is never touched, nor paged in.
    cost = np.empty((n + 1, flags, n + 1, width), compute.dtype)
    advanced = np.empty_like(cost)
    working = np.empty((n + 1, n + 1, width), compute.dtype)
    cost[1, :, :n] = compute[:, None]
    advanced[1, :, :n] = 2 * compute[:, None]
    working[1, 1:] = compute[:, None]
    tables = Tables(cost, advanced, working, *_hold_moves(problem))
    scratch = np.empty(max(BLOCK_BYTES // cost.itemsize, flags * n * width), compute.dtype)
    for length in range(2, n + 1):
        starts = n - length + 1
        hold = tables.hold(problem, length)
        cost[length, :, :starts] = np.minimum(hold[:flags], _best_split(tables, length, scratch))
        advanced[length, :, :starts] = (cost[length, :, :starts]
                                        + (prefix[length:] - prefix[:starts])[:, None])
        working[length, length:] = np.minimum(tables.store(problem, length),
                                              hold[problem.working])
    return tables


def _best_split(tables: Tables, length: int, scratch: np.ndarray) -> np.ndarray:
    """The advance branch: min over i<k<j of U(i, k) + D(k, j, m) + C(i, k, m, f), j = i + length.

    This is the O(n³·M) bulk, done for every flag, start and free memory at once, a few splits
    at a time so that each block of sums is still in cache when its minimum is taken.
    """
    advanced, working = tables.advanced, tables.working
    _, flags, _, width = advanced.shape
    starts = advanced.shape[2] - length
    per_split = flags * starts * width
    count = max(1, scratch.size // per_split)  # splits per block
    best = None
    for first in range(1, length, count):
        last = min(length, first + count)
        block = scratch[:(last - first) * per_split].reshape(last - first, flags, starts, width)
        np.add(advanced[first:last, :, :starts],
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
                             (start, end, free - int(problem.state_units[start]), 1)))

    def _hold(self, start: int, end: int, free_after: int) -> None:
        """Tape stage start+1 and hold it while start+2..end are reversed from it."""
        self.builder.tape(start + 1)
        self.working = start + 1
        self.pending.append((self._backward, (start + 1,)))
        self.pending.append((self.reverse_restorable, (start + 1, end, free_after, 0)))

    def _backward(self, stage: int) -> None:
        self.builder.backward(stage)
        self.working = None


def table_footprint(n: int, width: int, tapes: bool) -> Footprint:
    """Bytes and operations of the DP for n stages and free memory levels 0..width (float64
    tables, the plan and its check included)."""
    flags, levels = (2 if tapes else 1), width + 1
    tables = 8 * (n + 1) ** 2 * levels * (2 * flags + 1)
    moves = 25 * (flags + 1) * n * levels  # hold targets as they are built
    scratch = max(BLOCK_BYTES, 8 * flags * n * levels)
    return Footprint(tables + moves + scratch + plan_bytes(n, 3 * n, n), 3 * n,
                     flags * levels * n ** 3 // 6)
