"""The tables of ``optimal``: the DP solved once per chain over memory levels, answering every
budget up to its top level (see :mod:`.optimal` for the recursion and what a level is).

Levels are **store levels**: free bytes (or slots) for checkpoints and held tapes besides x_0's,
the quantity the recursion of docs/cost_model.md bounds. :meth:`OptimalTable.plan` answers a
store budget; :mod:`.optimal_budget` answers ``budget_bytes``, the whole activation peak, from
the plans of every level and a few more.
"""
from __future__ import annotations

import bisect
import math
import numbers
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from ...checks import flag, whole_number
from ...errors import BudgetError, PolicyError
from ..costs import ChainCosts
from ..plans import Plan, PlanBuilder
from ...plans.registry import positive_int
from ...plans.limits import Footprint, current, plan_bytes, require, within
from .optimal_dp import (BLOCK_BYTES, Grid, Problem, Tables, Rebuild, everything_bytes,
                         solve)

NAME = "optimal"
MAX_RESOLUTION = 1000  # default levels of a byte table, for short chains ...
LEVEL_STAGES = 36_000  # ... fewer for long ones, keeping (n+1) × levels near this ...
MIN_RESOLUTION = 16  # ... but never fewer than this
CACHE_TABLES = 16  # solved tables kept for later budgets and chains ...
CACHE_BYTES = 1 << 28  # ... and at most this many bytes of them (the newest is always kept):
# keeping 1 GiB cost a 500-stage sweep 1.6 s of system time (the kernel supplying fresh pages)


def default_resolution(n: int) -> int:
    """Memory levels for an n-stage chain's byte budgets, when the caller names none.

    The DP takes O(n³·levels) time and O(n²·levels) memory: with this default a 500-stage chain
    gets 71 levels, about 1.5 s and 210 MiB (int32 entries), and a 1,000-stage one 35 levels, about
    5 s and 420 MiB (``benchmarks/planner_scale.py``). More levels plan finer (each gap is a
    smaller fraction of the memory below it), in time and memory proportional to them.
    """
    return min(MAX_RESOLUTION, max(MIN_RESOLUTION, LEVEL_STAGES // (n + 1)))


# -- budgets -----------------------------------------------------------------------------------

def _check_tapes(tapes: object) -> bool:
    return flag(tapes, f"policy {NAME!r}: tapes", error=PolicyError)


def _free_slots(slots: object) -> int:
    """The slots besides x_0's (``slots`` at least 1)."""
    slots = whole_number(slots, f"policy {NAME!r}: slots", minimum=None, error=PolicyError,
                         noun="whole number")
    if slots < 1:
        raise BudgetError(f"policy {NAME!r}: slots={slots} is below the minimum of 1 slot "
                          f"(x_0 alone, recomputing everything)")
    return slots - 1


def _free_bytes(costs: ChainCosts, store_bytes: object) -> float:
    """The bytes besides x_0 (``store_bytes``, a store budget, at least a_0)."""
    if (isinstance(store_bytes, bool) or not isinstance(store_bytes, numbers.Real)
            or not math.isfinite(store_bytes)):
        raise PolicyError(f"policy {NAME!r}: store_budget_bytes must be a finite number, "
                          f"got {store_bytes!r}")
    minimum = costs.state_bytes[0]
    if store_bytes <= 0 or store_bytes < minimum:
        raise BudgetError(f"policy {NAME!r}: store_budget_bytes={store_bytes} is below the "
                          f"minimum of {minimum} bytes (x_0 alone, recomputing everything)")
    return store_bytes - minimum


def _everything_plan(costs: ChainCosts, tapes: bool) -> PlanBuilder:
    """The plan that keeps everything: with tapes, every stage but the last taped and held
    (cost U(0, n)); without, x_1..x_{n−2} saved on the way (cost U(0, n−1) + U(0, n)). No
    plan costs less, so the DP's optimum with this much memory is this cost."""
    n, builder = costs.n, PlanBuilder(costs.n)
    for stage in range(1, n):
        if tapes:
            builder.tape(stage)
        else:
            builder.advance(stage)
            if stage < n - 1:  # x_{n−1}'s only use is the turn of stage n, next
                builder.save(stage)
    builder.turn(n)
    for stage in range(n - 1, 0, -1):
        if tapes:
            builder.backward(stage)
        else:
            builder.restore(stage - 1)
            builder.turn(stage)
            if stage > 1:
                builder.free(stage - 1)
    return builder


def _most_slots(costs: ChainCosts, tapes: bool) -> int:
    """Free slots that keep everything: every held tape but stage n's (x_1..x_{n−1} without
    tapes)."""
    return costs.n - 1 if tapes else max(costs.n - 2, 0)


def _everything_cost(costs: ChainCosts, tapes: bool) -> float:
    return float(sum(costs.compute) + (0 if tapes else sum(costs.compute[:-1])))


def table_footprint(n: int, width: int, tapes: bool) -> Footprint:
    """Bytes and operations of the DP for n stages and free memory levels 0..width (float64
    tables, the plan and its check included)."""
    flags, levels = (2 if tapes else 1), width + 1
    tables = 8 * (n + 1) ** 2 * levels * (flags + 1)
    moves = 25 * (flags + 1) * n * levels  # hold targets as they are built
    scratch = max(BLOCK_BYTES, 8 * flags * n * levels)
    return Footprint(tables + moves + scratch + plan_bytes(n, 3 * n, n), 3 * n,
                     flags * levels * n ** 3 // 6)


# -- the table ---------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class OptimalTable:
    """Every budget of one chain up to a maximum from one solve of the DP.

    The tables are filled once over the free memory levels of ``grid`` (slots; bytes every
    ``unit_bytes``; or ``resolution`` geometric levels up to everything); :meth:`cost` and
    :meth:`plan` then answer any budget up to the top level, each at the price of rebuilding its
    plan. A level's answer does not depend on how many levels were solved, so it equals the DP
    solved for that budget alone on the same levels. With memory for everything
    (:func:`everything_bytes`) the plan keeps everything.
    """

    costs: ChainCosts
    tapes: bool
    unit_bytes: int | None
    resolution: int | None
    grid: Grid
    problem: Problem
    tables: Tables
    _relaxed: list[Tables] = field(default_factory=list, repr=False)

    @classmethod
    def solve(cls, costs: ChainCosts, max_store_bytes: float | None = None, *,
              resolution: int | None = None, unit_bytes: int | None = None,
              tapes: bool = True) -> OptimalTable:
        """Store budgets in bytes up to ``max_store_bytes`` (default: everything).

        The levels are every ``unit_bytes`` bytes if that is given, else ``resolution``
        geometric levels up to everything (default :func:`default_resolution`,
        :meth:`Grid.geometric`): either way they do not depend on the budgets later asked.
        """
        tapes = _check_tapes(tapes)
        everything = everything_bytes(costs, tapes)
        reach = everything
        if max_store_bytes is not None:
            reach = min(reach, _free_bytes(costs, max_store_bytes))
        if unit_bytes is not None:
            unit = positive_int(NAME, "unit_bytes", unit_bytes)
            count = -(-everything // unit)  # the last level keeps everything
            width = min(count, int(reach // unit))  # the levels solved
            return cls._solved(costs, tapes, lambda: Grid.uniform(unit, count), reach,
                               unit, None, f"n={costs.n:,} with store budgets in "
                               f"{width + 1:,} levels of {unit:,} bytes", lambda n: width)
        count = (default_resolution(costs.n) if resolution is None
                 else positive_int(NAME, "resolution", resolution))
        distinct = min(count, max(everything, 1))  # levels are whole bytes: no more than that
        return cls._solved(costs, tapes, lambda: Grid.geometric(costs, distinct, tapes), reach,
                           None, count, f"n={costs.n:,} with store budgets in {distinct + 1:,} "
                           f"levels", lambda n: distinct if resolution is not None
                           else default_resolution(n))

    @classmethod
    def solve_slots(cls, costs: ChainCosts, max_slots: int, *, tapes: bool = True
                    ) -> OptimalTable:
        """Budgets in slots (every state and held tape one item) up to ``max_slots``."""
        tapes = _check_tapes(tapes)
        width = min(_free_slots(max_slots), _most_slots(costs, tapes))
        return cls._solved(costs, tapes, lambda: Grid.of_slots(costs.n), width, None, None,
                           f"n={costs.n:,} with slots={max_slots:,}",
                           lambda m: min(width, m - 1))

    @classmethod
    def _solved(cls, costs: ChainCosts, tapes: bool, make_grid: Callable[[], Grid],
                reach: float, unit_bytes: int | None, resolution: int | None, what: str,
                width_of: Callable[[int], int]) -> OptimalTable:
        """Refuse what exceeds the planner limits (:mod:`..limits`), else build the grid and
        fill the tables for its levels up to ``reach`` free bytes (or slots)."""
        require(NAME, what, costs.n, lambda m: table_footprint(m, max(width_of(m), 0), tapes))
        grid = make_grid()
        problem = grid.problem(costs, grid.level_of(reach), tapes)
        return cls(costs, tapes, unit_bytes, resolution, grid, problem, solve(problem))

    @property
    def in_slots(self) -> bool:
        """Whether budgets are slots (else bytes)."""
        return self.grid.slots

    @property
    def min_budget(self) -> int:
        """The least budget: x_0 alone (bytes, or 1 slot)."""
        return 1 if self.in_slots else self.costs.state_bytes[0]

    @property
    def width(self) -> int:
        """The highest free memory level the tables answer."""
        return self.problem.free

    @property
    def nbytes(self) -> int:
        tables = self.tables
        return sum(array.nbytes for array in (tables.cost, tables.working,
                                              tables.hold_target, tables.hold_fits,
                                              tables.store_target))

    def level(self, budget: float) -> int | None:
        """The free memory level ``budget`` stands for, or None when it keeps everything."""
        free = _free_slots(budget) if self.in_slots else _free_bytes(self.costs, budget)
        if free >= (_most_slots(self.costs, self.tapes) if self.in_slots
                    else everything_bytes(self.costs, self.tapes)):
            return None
        level = self.grid.level_of(free)
        if level > self.width:
            kind = "slots" if self.in_slots else "store_budget_bytes"
            raise PolicyError(f"policy {NAME!r}: {kind}={budget} is beyond the "
                              f"{self.grid.levels[self.width]:g} free "
                              f"{'slots' if self.in_slots else 'bytes'} this table was solved "
                              f"for; solve it with a larger maximum")
        return level

    def budget_of(self, level: int) -> int:
        """The least budget that stands for ``level`` (x_0's memory plus the level's; levels
        are whole bytes or slots)."""
        return self.min_budget + int(self.grid.levels[level])

    def cost(self, budget: float) -> float:
        """The least forward cost (sum of u_t over evaluations) within ``budget``."""
        return self.level_cost(self.level(budget))

    def lower_bound(self, budget: float) -> float:
        """A lower bound on the forward cost of every persistent schedule (each checkpoint kept
        until it is dead: the recursion's model) within store ``budget`` (bytes, or slots): the
        same levels with every move rounded up (:class:`Problem`, ``round_up``), solved once.
        Equal to :meth:`cost` when no move rounds (slots; sizes on the levels)."""
        free = _free_slots(budget) if self.in_slots else _free_bytes(self.costs, budget)
        if self.level(budget) is None:
            return _everything_cost(self.costs, self.tapes)
        if not self._relaxed:
            self._relaxed.append(solve(replace(self.problem, round_up=True)))
        level = min(bisect.bisect_left(self.grid.levels, free), self.width)
        return float(self._relaxed[0].cost[self.problem.n, 0, 0, level])

    def level_cost(self, level: int | None) -> float:
        """The DP's least forward cost at store ``level`` (None: keeping everything)."""
        if level is None:
            return _everything_cost(self.costs, self.tapes)
        return float(self.tables.cost[self.problem.n, 0, 0, level])

    def level_steps(self, level: int | None) -> PlanBuilder:
        """The steps of the DP's plan at store ``level`` (None: the plan keeping everything)."""
        return (_everything_plan(self.costs, self.tapes) if level is None
                else Rebuild(self.problem, self.tables).run(level))

    def plan(self, budget: float) -> Plan:
        """The plan of least forward cost within ``budget`` (bytes, or slots)."""
        builder = self.level_steps(self.level(budget))
        if self.in_slots:
            return builder.build(NAME, {"slots": budget, "tapes": self.tapes}, slots=budget)
        scale = ({"resolution": self.resolution} if self.resolution is not None
                 else {"unit_bytes": self.unit_bytes})
        return builder.build(NAME, {"store_budget_bytes": budget, "tapes": self.tapes, **scale})


# -- the policy: one table per chain, kept for the next budgets --------------------------------

_CACHE: OrderedDict[tuple[object, ...], OptimalTable] = OrderedDict()


def clear_cache() -> None:
    """Forget the tables kept for later budgets (their memory is released)."""
    _CACHE.clear()


def _cached(key: tuple[object, ...], wide_enough: Callable[[OptimalTable], bool],
            make: Callable[[int], OptimalTable]) -> OptimalTable:
    """The kept table of ``key`` if it is wide enough, else ``make(width it had, or 0)``; then
    the oldest tables are dropped beyond CACHE_TABLES or CACHE_BYTES (never the newest)."""
    table = _CACHE.pop(key, None)
    if table is None or not wide_enough(table):
        width = 0 if table is None else table.width
        del table  # released before the new one is filled
        table = make(width)
    _CACHE[key] = table
    while len(_CACHE) > 1 and (len(_CACHE) > CACHE_TABLES
                               or sum(kept.nbytes for kept in _CACHE.values()) > CACHE_BYTES):
        _CACHE.popitem(last=False)
    return table


def _slots_table(costs: ChainCosts, free: int, tapes: bool) -> OptimalTable:
    """A table answering ``free`` slots besides x_0's; a kept one grows by doubling (when the
    doubled table is within the limits), so that an ascending sweep solves only a few times."""
    needed = min(free, _most_slots(costs, tapes))

    def make(width: int) -> OptimalTable:
        doubled = min(_most_slots(costs, tapes), max(needed, 2 * width))
        if not within(table_footprint(costs.n, doubled, tapes), current()):
            doubled = needed
        return OptimalTable.solve_slots(costs, doubled + 1, tapes=tapes)

    return _cached((costs, tapes, None), lambda table: table.width >= needed, make)

