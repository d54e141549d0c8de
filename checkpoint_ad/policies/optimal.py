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
    C(i, j, m, f)   = min( u_{i+1} + C(i+1, j, m + f·a_i − b_{i+1}, 0)  if b_{i+1} ≤ m + f·a_i
                                                                                 (hold a tape)
                           min over i<k<j of U(i, k) + D(k, j, m) + C(i, k, m, f) ) (advance)
    D(k, j, m)      = min( C(k, j, m − a_k, 1)                      if a_k ≤ m    (store x_k)
                           u_{k+1} + C(k+1, j, m − b_{k+1}, 0)      if b_{k+1} ≤ m (hold a tape))
    optimum         = C(0, n, M − a_0, 0)

**Budgets.** With ``slots`` every state and every held tape takes one slot (a = b = 1, M = slots)
and the plan promises ``slots`` to the checker. With ``budget_bytes`` the sizes are
``costs.state_bytes`` and ``costs.tape_bytes``; the bytes free besides x_0 (budget − a_0) are
counted in whole units of ``max(1, ceil((budget − a_0) / resolution))`` bytes, every size rounded
up and the free bytes rounded down, so the bytes really stored never exceed the budget (and with
at most ``resolution`` free bytes the byte count is exact). ``tapes=False`` forbids held tapes
(b = ∞): that is revolve's model, and with unit costs the optimum is T_G(n, s) + n.

**Computation.** The tables are filled for increasing chain length j − i; one length takes a
few numpy operations over every start i, split k, flag f and free memory m at once: O(n³·M) work
and O(n²·M) memory, M being the free units, capped at what storing everything would need. numpy
touches only these cost tables, never a model array: it is the one exception to DESIGN's
"policies never import numpy", made for speed. The plan is rebuilt from the tables by a loop
over an explicit stack of pending sub-problems, so no Python recursion grows with n.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import BudgetError, PolicyError
from ..plans import ChainCosts, Plan, PlanBuilder
from .base import Parameter, PolicySpec, positive_int

NAME = "optimal"
DEFAULT_RESOLUTION = 200  # memory units free besides x_0, at most, in budget_bytes mode


@dataclass(frozen=True)
class Problem:
    """A chain as the DP sees it, every size and the budget in whole memory units.

    ``compute[i]`` is u_{i+1}; ``prefix[t]`` is U(0, t); ``state_units[j]`` is a_j (j = 0..n);
    ``tape_units[i]`` is b_{i+1}; ``free`` is the budget minus a_0; ``tapes`` is False when held
    tapes are forbidden.
    """

    compute: np.ndarray
    prefix: np.ndarray
    state_units: np.ndarray
    tape_units: np.ndarray
    free: int
    tapes: bool

    @property
    def n(self) -> int:
        return len(self.compute)

    @property
    def flags(self) -> int:
        """How many values of f the tables keep: without held tapes f changes nothing."""
        return 2 if self.tapes else 1


def _problem(costs: ChainCosts, state_units: list[int], tape_units: list[int], free: int,
             tapes: bool) -> Problem:
    """Build a Problem, capping the free units at what storing everything would need.

    With that much memory every sub-chain already reaches its least possible cost (each stage
    taped once, or without tapes each stage but the last advanced once more), so more changes
    nothing and only slows the tables down.
    """
    everything = sum(tape_units[:-1]) if tapes else sum(state_units[1:-1])
    compute = np.asarray(costs.compute, dtype=float)
    return Problem(compute, np.concatenate(([0.0], np.cumsum(compute))),
                   np.asarray(state_units, dtype=np.int64), np.asarray(tape_units, dtype=np.int64),
                   min(free, everything), tapes)


def slots_problem(costs: ChainCosts, slots: object, tapes: bool) -> Problem:
    """The problem for a budget of ``slots`` items, x_0's included (at least 1)."""
    if isinstance(slots, bool) or not isinstance(slots, int):
        raise PolicyError(f"policy {NAME!r}: slots must be a whole number, got {slots!r}")
    if slots < 1:
        raise BudgetError(f"policy {NAME!r}: slots={slots} is below the minimum of 1 slot "
                          f"(x_0 alone, recomputing everything)")
    return _problem(costs, [1] * (costs.n + 1), [1] * costs.n, slots - 1, tapes)


def bytes_problem(costs: ChainCosts, budget_bytes: object, tapes: bool,
                  resolution: int) -> Problem:
    """The problem for a budget in bytes, discretized into at most ``resolution`` free units."""
    if (isinstance(budget_bytes, bool) or not isinstance(budget_bytes, numbers.Real)
            or not math.isfinite(budget_bytes)):
        raise PolicyError(f"policy {NAME!r}: budget_bytes must be a finite number, "
                          f"got {budget_bytes!r}")
    minimum = costs.state_bytes[0]
    if budget_bytes <= 0 or budget_bytes < minimum:
        raise BudgetError(f"policy {NAME!r}: budget_bytes={budget_bytes} is below the minimum of "
                          f"{minimum} bytes (x_0 alone, recomputing everything)")
    free_bytes = budget_bytes - minimum
    unit = max(1, math.ceil(free_bytes / resolution))
    return _problem(costs, [_units_up(size, unit) for size in costs.state_bytes],
                    [_units_up(size, unit) for size in costs.tape_bytes],
                    int(free_bytes // unit), tapes)


def _units_up(size: float, unit: int) -> int:
    """``size`` bytes in whole units of ``unit`` bytes, rounded up."""
    return int(-(-size // unit))


@dataclass(frozen=True)
class Tables:
    """The DP's values (``inf``: infeasible) and the hold-a-tape moves they were made with.

    ``cost[l, f, m, i]`` = C(i, i+l, m, f); ``advanced[l, f, m, i]`` = U(i, i+l) + C(i, i+l, m, f),
    a split's advance and left part together; ``working[l, m, j]`` = D(j−l, j, m), indexed by its
    end j so that all splits of one length are one slice. The chain position is the last axis
    so that numpy's inner loops run along it. For flag f, free m and start i,
    ``hold_target[f, m, i]`` is the free memory after holding stage i+1's tape (clamped to the
    budget, which only unreachable states exceed) and ``hold_fits[f, m, i]`` says whether it fits.
    """

    cost: np.ndarray
    advanced: np.ndarray
    working: np.ndarray
    hold_target: np.ndarray
    hold_fits: np.ndarray

    def hold(self, problem: Problem, length: int) -> np.ndarray:
        """u_{i+1} + C(i+1, i+length, target, 0) for every flag, free and start i (or inf)."""
        starts = problem.n - length + 1
        target, fits = self.hold_target[..., :starts], self.hold_fits[..., :starts]
        if not problem.tapes:
            return np.full(target.shape, np.inf)
        gathered = self.cost[length - 1, 0][target, np.arange(1, starts + 1)]
        return np.where(fits, problem.compute[:starts] + gathered, np.inf)

    def hold_value(self, problem: Problem, start: int, end: int, flag: int, free: int) -> float:
        """One entry of :meth:`hold`, computed the same way."""
        if not self.hold_fits[flag, free, start]:
            return math.inf
        target = self.hold_target[flag, free, start]
        return problem.compute[start] + self.cost[end - start - 1, 0, target, start + 1]

    def store(self, problem: Problem, length: int) -> np.ndarray:
        """C(k, k+length, m − a_k, 1) for every free m and start k (inf if x_k does not fit)."""
        starts = problem.n - length + 1
        target = (np.arange(problem.free + 1)[:, None] - problem.state_units[:starts])
        gathered = self.cost[length, problem.flags - 1][np.maximum(target, 0), np.arange(starts)]
        return np.where(target >= 0, gathered, np.inf)

    def store_value(self, problem: Problem, start: int, end: int, free: int) -> float:
        """One entry of :meth:`store`."""
        target = free - problem.state_units[start]
        if target < 0:
            return math.inf
        return self.cost[end - start, problem.flags - 1, target, start]

    def splits(self, start: int, end: int, flag: int, free: int) -> np.ndarray:
        """U(i, k) + D(k, j, m) + C(i, k, m, f) for k = i+1..j−1, as the DP computed them."""
        length = end - start
        return (self.advanced[1:length, flag, free, start]
                + self.working[length - 1:0:-1, free, end])


def _hold_moves(problem: Problem) -> tuple[np.ndarray, np.ndarray]:
    """Free memory after holding stage i+1's tape, and whether it fits, per flag, free, start."""
    releasable = problem.state_units[:-1].copy()
    releasable[0] = 0  # x_0 is never freed
    free = np.arange(problem.free + 1)[None, :, None]
    flag = np.arange(problem.flags)[:, None, None]
    target = free + flag * releasable - problem.tape_units
    fits = (target >= 0) & problem.tapes
    return np.clip(target, 0, problem.free), fits


def solve(problem: Problem) -> Tables:
    """Fill the DP tables for every sub-chain, shortest first."""
    n, flags, width = problem.n, problem.flags, problem.free + 1
    compute, prefix = problem.compute, problem.prefix
    cost = np.full((n + 1, flags, width, n + 1), np.inf)
    advanced = np.full_like(cost, np.inf)
    working = np.full((n + 1, width, n + 1), np.inf)
    cost[1, ..., :n] = compute
    advanced[1, ..., :n] = 2 * compute
    working[1, :, 1:] = compute
    tables = Tables(cost, advanced, working, *_hold_moves(problem))
    scratch = np.empty((n // 2) * (n - n // 2) * flags * width)  # the largest split block
    for length in range(2, n + 1):
        starts = n - length + 1
        block = scratch[:(length - 1) * flags * width * starts].reshape(
            length - 1, flags, width, starts)
        np.add(advanced[1:length, ..., :starts], working[length - 1:0:-1, None, :, length:],
               out=block)
        hold = tables.hold(problem, length)
        cost[length, ..., :starts] = np.minimum(hold, block.min(axis=0))
        advanced[length, ..., :starts] = (cost[length, ..., :starts]
                                          + (prefix[length:] - prefix[:starts]))
        working[length, :, length:] = np.minimum(tables.store(problem, length), hold[0])
    return tables


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
            self._hold(start, end, int(tables.hold_target[column, free, start]))
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
        if (tables.hold_value(problem, start, end, 0, free)
                <= tables.store_value(problem, start, end, free)):
            self._hold(start, end, int(tables.hold_target[0, free, start]))
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


def _problem_for(costs: ChainCosts, slots: object, budget_bytes: object, tapes: object,
                 resolution: object) -> Problem:
    """Validate the parameters and discretize the chain accordingly."""
    if (slots is None) == (budget_bytes is None):
        raise PolicyError(f"policy {NAME!r} needs exactly one budget: slots (items, x_0's "
                          f"included) or budget_bytes, got slots={slots!r}, "
                          f"budget_bytes={budget_bytes!r}")
    if not isinstance(tapes, bool):
        raise PolicyError(f"policy {NAME!r}: tapes must be True or False, got {tapes!r}")
    if slots is not None:
        return slots_problem(costs, slots, tapes)
    return bytes_problem(costs, budget_bytes, tapes, positive_int(NAME, "resolution", resolution))


def optimal_cost(costs: ChainCosts, slots: int | None = None, budget_bytes: float | None = None,
                 tapes: bool = True, resolution: int = DEFAULT_RESOLUTION) -> float:
    """The DP's least forward cost (sum of u_t over evaluations) for the given budget."""
    problem = _problem_for(costs, slots, budget_bytes, tapes, resolution)
    return float(solve(problem).cost[problem.n, 0, problem.free, 0])


def plan_optimal(costs: ChainCosts, slots: int | None = None, budget_bytes: float | None = None,
                 tapes: bool = True, resolution: int = DEFAULT_RESOLUTION) -> Plan:
    """The plan of least forward cost within the budget (see the module docstring)."""
    problem = _problem_for(costs, slots, budget_bytes, tapes, resolution)
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
     Parameter("resolution", int, DEFAULT_RESOLUTION,
               "budget_bytes only: the free bytes besides x_0 are counted in at most this many "
               "units, sizes rounded up; more units plan closer to the budget but take "
               "proportionally longer")))
