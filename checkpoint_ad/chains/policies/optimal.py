"""optimal: the plan of least forward cost under a memory budget, by dynamic programming.

This is Beaumont et al., "Optimal checkpointing for heterogeneous chains" (the rotor family), in
the tape model of COST_MODEL.md, section "Optimal, heterogeneous, with held tapes". Stage t costs
u_t = ``costs.compute[t-1]`` per evaluation; checkpoint x_j takes a_j memory units; a held tape of
stage t takes b_t units (it holds x_t, so it is also a restart point). The plan minimises the
forward cost, the sum of u_t over all evaluations, while the stored checkpoints plus held tapes
(x_0 included) never exceed the budget M. With U(i, k) = u_{i+1} + ... + u_k:

    C(i, j, m, f)    least cost to reverse stages i+1..j when x_i can be restored, m units are
                     free, and f = 1 if this call holds x_i's last use (it frees x_i; never x_0)
    D(k, j, m)       the same when x_k is only the working value
    C(i, i+1, m, f) = D(i, i+1, m) = u_{i+1}                                     (turn)
    C(i, j, m, f)   = min( u_{i+1} + C(i+1, j, m', 0)                    if m' ≥ 0
                                                                                 (hold a tape)
                           min over i<k<j of U(i, k) + D(k, j, m) + C(i, k, m, f) ) (advance)
    D(k, j, m)      = min( C(k, j, m − a_k, 1)                  if a_k ≤ m      (store x_k)
                           u_{k+1} + C(k+1, j, m − b_{k+1}, 0)  if b_{k+1} ≤ m  (hold a tape) )
    optimum         = C(0, n, M − a_0, 0)
    m'              = m + f·a_i − b_{i+1} + (1 − f)·c_{i+1}

where c_t = ``costs.tape_input_bytes[t-1]`` is the part of b_t that is the tape's input x_{t-1}
(COST_MODEL.md's recursion is c = 0). A tape that keeps its input shares that memory with the
stored x_i, so holding it while x_i stays stored (f = 0) costs only b − c; with f = 1 x_i's
checkpoint is released but the tape keeps its memory, which m + a_i − b already says.

**Steps.** A turn: RESTORE i (when the working value is not x_i), TURN i+1, FREE i if f = 1.
Holding a tape: RESTORE i, FREE i if f = 1 (first, so that its memory serves the tape), TAPE i+1,
the reversal of i+2..j from x_{i+1}, BACKWARD i+1. Advancing: RESTORE i, ADVANCE i+1..k, then
D(k, j, m), then C(i, k, m, f). D stores with SAVE k, then C(k, j, m − a_k, 1), or holds with
TAPE k+1, the reversal of k+2..j, BACKWARD k+1; on a tie it holds (no SAVE freed at once).

**Budgets.** With ``slots`` every state and every held tape takes one slot (a = b = 1,
M = slots) and the plan promises ``slots`` to the checker. With ``budget_bytes`` the sizes are
``costs.state_bytes`` and ``costs.tape_bytes``; the bytes free besides x_0 (budget − a_0) are
counted in whole units of ``max(1, ceil((budget − a_0) / resolution))`` bytes, every size rounded
up and the free bytes rounded down, so the bytes really stored never exceed the budget (and with
at most ``resolution`` free bytes the byte count is exact). ``resolution`` defaults to 200 units,
fewer for long chains, to bound time and memory (:func:`default_resolution`: 19 at n = 500).
``tapes=False`` forbids held tapes (b = ∞): that is revolve's model, and with unit costs the
optimum is T_G(n, s) + n.

**Scope.** The recursion keeps each checkpoint x_j until it is dead (stage j+1 reversed, or its
tape held): it is optimal among such *persistent* schedules. With unit sizes, exhaustive search
found no schedule that beats it; with unequal sizes, freeing a small checkpoint that is still
needed, to make room for a larger one, is occasionally a little cheaper (tests/test_optimal.py
pins a 6-stage example: 61 against 63).

**Computation.** The tables are filled for increasing chain length j − i; one length takes a
few numpy operations over every start i, split k, flag f and free memory m at once: O(n³·M) work
and O(n²·M) memory, M being the free units, capped at what storing everything would need. The
tables are float32 when that is exact (whole-number costs, small totals), else float64: the bulk
is bound by memory traffic, which float32 halves. numpy touches only these cost tables, never a
model array: it is the one exception to DESIGN's "policies never import numpy", made for speed.
The plan is rebuilt from the tables by a loop over an explicit stack of pending sub-problems, so
no Python recursion grows with n.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ...checks import whole_number
from ...errors import BudgetError, PolicyError
from ..plans import ChainCosts, Plan, PlanBuilder
from ...plans.registry import Parameter, PolicySpec, positive_int

NAME = "optimal"
MAX_RESOLUTION = 200  # default free memory units in budget_bytes mode, for short chains ...
TABLE_ENTRIES = 5_000_000  # ... fewer for long ones, keeping (n+1)² × units near this ...
MIN_RESOLUTION = 16  # ... but never fewer than this
BLOCK_BYTES = 1 << 21  # sums added, then minimised, while in cache (measured: 1.4x in float64)


@dataclass(frozen=True)
class Problem:
    """A chain as the DP sees it, every size and the budget in whole memory units.

    ``compute[i]`` is u_{i+1} and ``prefix[t]`` is U(0, t), both in the tables' dtype;
    ``state_units[j]`` is a_j (j = 0..n); ``tape_units[i]`` is b_{i+1} and ``input_units[i]``
    the part of it that is x_i (rounded down, so that b − c is never undercounted); ``free`` is
    the budget minus a_0; ``tapes`` is False when held tapes are forbidden.
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
    def flags(self) -> int:
        """How many values of f the tables keep: without held tapes f changes nothing."""
        return 2 if self.tapes else 1

    @property
    def working(self) -> int:
        """The index of D's hold move in the hold tables, after C's flags."""
        return self.flags


def _problem(costs: ChainCosts, state_units: list[int], tape_units: list[int],
             input_units: list[int], free: int, tapes: bool) -> Problem:
    """Build a Problem, capping the free units at what storing everything would need.

    With that much memory every sub-chain already reaches its least possible cost (each stage
    taped once, or without tapes each stage but the last advanced once more), so more changes
    nothing and only slows the tables down.
    """
    everything = sum(tape_units[:-1]) if tapes else sum(state_units[1:-1])
    dtype = _table_dtype(costs.compute)
    prefix = np.concatenate(([0.0], np.cumsum(costs.compute, dtype=float)))
    return Problem(np.asarray(costs.compute, dtype), prefix.astype(dtype),
                   np.asarray(state_units, dtype=np.int64), np.asarray(tape_units, dtype=np.int64),
                   np.asarray(input_units, dtype=np.int64), min(free, everything), tapes)


def _table_dtype(compute: tuple[float, ...]) -> type:
    """float32 when it is exact, else float64.

    Every finite table entry, and every sum of two compared in a minimum, is at most
    2·(n+1)·U(0, n) (recompute-all bounds each sub-chain's optimum); with whole-number costs
    below 2**24 in total that way, float32 holds them all exactly, and halves the memory traffic
    that bounds the DP's speed.
    """
    whole = all(float(u).is_integer() and u >= 0 for u in compute)
    return np.float32 if whole and 2 * (len(compute) + 1) * sum(compute) < 2 ** 24 else np.float64


def slots_problem(costs: ChainCosts, slots: int, tapes: bool) -> Problem:
    """The problem for a budget of ``slots`` items, x_0's included (checked: at least 1)."""
    return _problem(costs, [1] * (costs.n + 1), [1] * costs.n, [0] * costs.n, slots - 1, tapes)


def bytes_problem(costs: ChainCosts, budget_bytes: float, tapes: bool,
                  resolution: int) -> Problem:
    """The problem for a budget in bytes, discretized into at most ``resolution`` free units."""
    minimum = costs.state_bytes[0]
    if budget_bytes <= 0 or budget_bytes < minimum:
        raise BudgetError(f"policy {NAME!r}: budget_bytes={budget_bytes} is below the minimum of "
                          f"{minimum} bytes (x_0 alone, recomputing everything)")
    free_bytes = budget_bytes - minimum
    unit = max(1, math.ceil(free_bytes / resolution))
    return _problem(costs, [_units_up(size, unit) for size in costs.state_bytes],
                    [_units_up(size, unit) for size in costs.tape_bytes],
                    [int(size // unit) for size in costs.tape_input_bytes],
                    int(free_bytes // unit), tapes)


def default_resolution(n: int) -> int:
    """Free memory units for an n-stage chain when the caller names none.

    The DP takes O(n³·units) time and O(n²·units) memory: with this default a 500-stage chain
    gets 19 units, about 0.5 s and 220 MB, where 200 units take about 10 s and 2 GB. Coarse
    units cost plan quality, as sizes are rounded up: in one 500-stage chain with a budget of
    about 20 states, 19 units planned 1419 evaluations and 200 units 1241.
    """
    return min(MAX_RESOLUTION, max(MIN_RESOLUTION, TABLE_ENTRIES // (n + 1) ** 2))


def _units_up(size: float, unit: int) -> int:
    """``size`` bytes in whole units of ``unit`` bytes, rounded up."""
    return int(-(-size // unit))


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
            return np.full(target.shape, np.inf, problem.compute.dtype)
        after = self.cost[length - 1, 0, 1:starts + 1]
        gathered = after[np.arange(starts)[:, None], target]
        return np.where(fits, problem.compute[:starts, None] + gathered, np.inf)

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
        return np.where(target >= 0, gathered, np.inf)

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
    best = np.full((flags, starts, width), np.inf, advanced.dtype)
    for first in range(1, length, count):
        last = min(length, first + count)
        block = scratch[:(last - first) * per_split].reshape(last - first, flags, starts, width)
        np.add(advanced[first:last, :, :starts],
               working[length - first:length - last:-1, None, length:], out=block)
        np.minimum(best, block.min(axis=0), out=best)
    return best


class _Rebuild:
    """Replays the tables' choices as plan steps, with pending sub-problems on an explicit stack.

    ``working`` tracks the working value (None once a backward step consumed it), so that a
    RESTORE is emitted only when needed.
    """

    def __init__(self, problem: Problem, tables: Tables) -> None:
        self.problem, self.tables = problem, tables
        self.builder = PlanBuilder(problem.n)
        self.working: int | None = 0
        self.pending: list[tuple[Callable[..., None], tuple[int, ...]]] = []

    def run(self) -> PlanBuilder:
        self.pending.append((self.reverse_restorable, (0, self.problem.n, self.problem.free, 0)))
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


def check_optimal(slots: object = None, budget_bytes: object = None, tapes: object = True,
                  resolution: object = None) -> None:
    """Refuse parameters that are wrong, or meaningless together, before any costs are known."""
    if (slots is None) == (budget_bytes is None):
        raise PolicyError(f"policy {NAME!r} needs exactly one budget: slots (items, x_0's "
                          f"included) or budget_bytes, got slots={slots!r}, "
                          f"budget_bytes={budget_bytes!r}")
    if not isinstance(tapes, bool):
        raise PolicyError(f"policy {NAME!r}: tapes must be True or False, got {tapes!r}")
    if slots is not None:
        whole_number(slots, f"policy {NAME!r}: slots", minimum=None, error=PolicyError)
        if slots < 1:
            raise BudgetError(f"policy {NAME!r}: slots={slots} is below the minimum of 1 slot "
                              f"(x_0 alone, recomputing everything)")
        if resolution is not None:
            raise PolicyError(f"policy {NAME!r}: resolution applies to budget_bytes only (with "
                              f"slots every state and held tape is one unit), got "
                              f"resolution={resolution!r}")
        return
    if (isinstance(budget_bytes, bool) or not isinstance(budget_bytes, numbers.Real)
            or not math.isfinite(budget_bytes)):
        raise PolicyError(f"policy {NAME!r}: budget_bytes must be a finite number, "
                          f"got {budget_bytes!r}")
    if resolution is not None:
        positive_int(NAME, "resolution", resolution)


def _problem_for(costs: ChainCosts, slots: int | None, budget_bytes: float | None, tapes: bool,
                 resolution: int | None) -> tuple[Problem, int | None]:
    """Check the parameters and discretize the chain; also the resolution used (bytes only)."""
    check_optimal(slots, budget_bytes, tapes, resolution)
    if slots is not None:
        return slots_problem(costs, slots, tapes), None
    resolution = default_resolution(costs.n) if resolution is None else resolution
    return bytes_problem(costs, budget_bytes, tapes, resolution), resolution


def optimal_cost(costs: ChainCosts, slots: int | None = None, budget_bytes: float | None = None,
                 tapes: bool = True, resolution: int | None = None) -> float:
    """The DP's least forward cost (sum of u_t over evaluations) for the given budget."""
    problem, _ = _problem_for(costs, slots, budget_bytes, tapes, resolution)
    return float(solve(problem).cost[problem.n, 0, 0, problem.free])


def plan_optimal(costs: ChainCosts, slots: int | None = None, budget_bytes: float | None = None,
                 tapes: bool = True, resolution: int | None = None) -> Plan:
    """The plan of least forward cost within the budget (see the module docstring)."""
    problem, resolution = _problem_for(costs, slots, budget_bytes, tapes, resolution)
    builder = _Rebuild(problem, solve(problem)).run()
    if slots is not None:
        return builder.build(NAME, {"slots": slots, "tapes": tapes}, slots=slots)
    return builder.build(NAME, {"budget_bytes": budget_bytes, "tapes": tapes,
                                "resolution": resolution})


SPEC = PolicySpec(
    NAME, "least forward cost within a memory budget (dynamic programming, held tapes allowed)",
    plan_optimal,
    (Parameter("slots", int, None,
               "budget in items, x_0's included; every state and held tape takes one slot "
               "(give this or budget_bytes)"),
     Parameter("budget_bytes", float, None,
               "budget in bytes for checkpoints and held tapes, x_0 included, sized by "
               "costs.state_bytes and costs.tape_bytes (give this or slots)"),
     Parameter("tapes", bool, True,
               "allow held tapes; False is revolve's model (checkpoints and turns only)"),
     Parameter("resolution", int, None,
               "budget_bytes only: the free bytes besides x_0 are counted in at most this many "
               "units, sizes rounded up; more units plan closer to the budget, in time and "
               "memory proportional to them (default: 200, fewer for chains over 157 stages, "
               "see default_resolution)")),
    check_optimal)
