"""optimal: the plan of least forward cost under a memory budget, by dynamic programming.

This is Beaumont et al., "Optimal checkpointing for heterogeneous chains" (the rotor family), in
the tape model of docs/cost_model.md, section "Least cost with held tapes". Stage t costs u_t =
``costs.compute[t-1]`` per evaluation; checkpoint x_j takes a_j of memory; a held tape of stage t
takes b_t (it holds x_t, so it is also a restart point); memory is bytes, or slots. The plan
minimises the forward cost, the sum of u_t over all evaluations, while the stored checkpoints plus
held tapes (x_0 included) never exceed the budget M. With U(i, k) = u_{i+1} + ... + u_k:

    C(i, j, m, f)    least cost to reverse stages i+1..j when x_i can be restored, m is free
                     (a level: see Budgets), and f = 1 if this call holds x_i's last use (it
                     frees x_i; never x_0)
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
(docs/cost_model.md states the recursion with c = 0). A tape that keeps its input shares that
memory with the stored x_i, so holding it while x_i stays stored (f = 0) costs only b − c; with
f = 1 x_i's checkpoint is released but the tape keeps its memory, which m + a_i − b already says.

**Steps.** A turn: RESTORE i (when the working value is not x_i), TURN i+1, FREE i if f = 1.
Holding a tape: RESTORE i, FREE i if f = 1 (first, so that its memory serves the tape), TAPE i+1,
the reversal of i+2..j from x_{i+1}, BACKWARD i+1. Advancing: RESTORE i, ADVANCE i+1..k, then
D(k, j, m), then C(i, k, m, f). D stores with SAVE k, then C(k, j, m − a_k, 1), or holds with
TAPE k+1, the reversal of k+2..j, BACKWARD k+1; on a tie it holds (no SAVE freed at once).

**Budgets.** With ``slots`` every state and every held tape takes one slot (a = b = 1,
M = slots) and the plan promises ``slots`` to the checker. With ``budget_bytes`` the sizes are
``costs.state_bytes`` and ``costs.tape_bytes``, exact, and the free memory m is a *level*: the
tables are solved for a grid of free byte amounts (:class:`.optimal_dp.Grid`), and every move
(storing x_k, holding a tape, releasing x_i) lands on the highest level not above the bytes
really left, so the bytes really stored never exceed the budget. The default grid is
*geometric*: ``resolution`` levels (default :func:`default_resolution`: 1000, 71 at n = 500)
from 0 up to E, the bytes that keep everything besides x_0 (:func:`everything_bytes`), the
first gap a sixteenth of the median state or tape size and each next gap a constant ratio
larger. Every budget, small or large, thus gets the same relative resolution from one table,
with levels that do not depend on the budget; a budget with room for everything gets the plan
that keeps everything, whatever the levels. ``tapes=False`` forbids held tapes (b = ∞): that is
revolve's model, and with unit costs the optimum is T_G(n, s) + n.

**One table, many budgets.** The tables are filled for every level up to a maximum, and a
level's answer does not depend on the maximum (nothing reachable from a level reads a higher
one), so :class:`OptimalTable` answers each budget up to its maximum exactly as that budget
solved alone on the same levels. The policy keeps the last tables (:data:`CACHE_TABLES`,
:data:`CACHE_BYTES`; :func:`clear_cache` releases them), keyed by the chain's costs, tapes and
resolution (bytes) or nothing (slots): a sweep of byte budgets solves once per chain, and an
ascending one over slots, whose table doubles, a few times. Before filling, the tables' bytes
and operations are estimated and refused above the planner limits (:mod:`..limits`).

**Scope.** The recursion keeps each checkpoint x_j until it is dead (stage j+1 reversed, or its
tape held): it is optimal among such *persistent* schedules. With unit sizes, exhaustive search
found no schedule that beats it; with unequal sizes, freeing a small checkpoint that is still
needed, to make room for a larger one, is occasionally a little cheaper (tests/chains/test_optimal.py
pins a 6-stage example: 61 against 63).

"""
from __future__ import annotations

import math
import numbers
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from ...checks import flag, whole_number
from ...errors import BudgetError, PolicyError
from ..costs import ChainCosts
from ..plans import Plan, PlanBuilder
from ...plans.registry import Parameter, PolicySpec, positive_int
from ...plans.limits import Footprint, current, plan_bytes, require, within
from .optimal_dp import (Grid, Problem, Tables, Rebuild, everything_bytes, solve,
                         table_footprint)

NAME = "optimal"
MAX_RESOLUTION = 1000  # default levels in budget_bytes mode, for short chains ...
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


def _free_bytes(costs: ChainCosts, budget_bytes: object) -> float:
    """The bytes besides x_0 (``budget_bytes`` at least a_0)."""
    if (isinstance(budget_bytes, bool) or not isinstance(budget_bytes, numbers.Real)
            or not math.isfinite(budget_bytes)):
        raise PolicyError(f"policy {NAME!r}: budget_bytes must be a finite number, "
                          f"got {budget_bytes!r}")
    minimum = costs.state_bytes[0]
    if budget_bytes <= 0 or budget_bytes < minimum:
        raise BudgetError(f"policy {NAME!r}: budget_bytes={budget_bytes} is below the minimum of "
                          f"{minimum} bytes (x_0 alone, recomputing everything)")
    return budget_bytes - minimum


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


# -- what a table takes ------------------------------------------------------------------------

def footprint(n: int, slots: object = None, budget_bytes: object = None, tapes: object = True,
              resolution: object = None) -> Footprint:
    """What planning an n-stage chain of unit stages takes (:mod:`..limits`)."""
    tapes = tapes is not False
    if isinstance(slots, int) and slots >= n or (isinstance(budget_bytes, numbers.Real)
                                                 and budget_bytes >= n):
        return Footprint(plan_bytes(n, 3 * n, n), 3 * n)  # keeps everything, no table
    if isinstance(slots, int):
        return table_footprint(n, min(max(slots - 1, 0), n - 1), tapes)
    units = resolution if isinstance(resolution, int) and resolution > 0 else None
    return table_footprint(n, units or default_resolution(n), tapes)


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

    @classmethod
    def solve(cls, costs: ChainCosts, max_budget_bytes: float | None = None, *,
              resolution: int | None = None, unit_bytes: int | None = None,
              tapes: bool = True) -> OptimalTable:
        """Budgets in bytes up to ``max_budget_bytes`` (default: everything).

        The levels are every ``unit_bytes`` bytes if that is given, else ``resolution``
        geometric levels up to everything (default :func:`default_resolution`,
        :meth:`Grid.geometric`): either way they do not depend on the budgets later asked.
        """
        tapes = _check_tapes(tapes)
        everything = everything_bytes(costs, tapes)
        reach = everything
        if max_budget_bytes is not None:
            reach = min(reach, _free_bytes(costs, max_budget_bytes))
        if unit_bytes is not None:
            unit = positive_int(NAME, "unit_bytes", unit_bytes)
            count = -(-everything // unit)  # the last level keeps everything
            width = min(count, int(reach // unit))  # the levels solved
            return cls._solved(costs, tapes, lambda: Grid.uniform(unit, count), reach,
                               unit, None, f"n={costs.n:,} with budget_bytes in "
                               f"{width + 1:,} levels of {unit:,} bytes", lambda n: width)
        count = (default_resolution(costs.n) if resolution is None
                 else positive_int(NAME, "resolution", resolution))
        distinct = min(count, max(everything, 1))  # levels are whole bytes: no more than that
        return cls._solved(costs, tapes, lambda: Grid.geometric(costs, distinct, tapes), reach,
                           None, count, f"n={costs.n:,} with budget_bytes in {distinct + 1:,} "
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
            kind = "slots" if self.in_slots else "budget_bytes"
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
        free = self.level(budget)
        if free is None:
            return _everything_cost(self.costs, self.tapes)
        return float(self.tables.cost[self.problem.n, 0, 0, free])

    def plan(self, budget: float) -> Plan:
        """The plan of least forward cost within ``budget`` (bytes, or slots)."""
        free = self.level(budget)
        builder = (_everything_plan(self.costs, self.tapes) if free is None
                   else Rebuild(self.problem, self.tables).run(free))
        if self.in_slots:
            return builder.build(NAME, {"slots": budget, "tapes": self.tapes}, slots=budget)
        scale = ({"resolution": self.resolution} if self.resolution is not None
                 else {"unit_bytes": self.unit_bytes})
        return builder.build(NAME, {"budget_bytes": budget, "tapes": self.tapes, **scale})


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


def check_optimal(slots: object = None, budget_bytes: object = None, tapes: object = True,
                  resolution: object = None) -> None:
    """Refuse parameters that are wrong, or meaningless together, before any costs are known."""
    if (slots is None) == (budget_bytes is None):
        raise PolicyError(f"policy {NAME!r} needs exactly one budget: slots (items, x_0's "
                          f"included) or budget_bytes, got slots={slots!r}, "
                          f"budget_bytes={budget_bytes!r}")
    tapes = _check_tapes(tapes)
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


def table_for(costs: ChainCosts, slots: object = None, budget_bytes: object = None,
              tapes: object = True, resolution: object = None) -> OptimalTable:
    """The (kept) table that answers this budget: validates the parameters, then solves once
    per chain, tapes and resolution (slots: once per chain and tapes, growing as
    needed)."""
    check_optimal(slots, budget_bytes, tapes, resolution)
    tapes = _check_tapes(tapes)
    if slots is not None:
        return _slots_table(costs, _free_slots(slots), tapes)
    levels = (default_resolution(costs.n) if resolution is None
              else positive_int(NAME, "resolution", resolution))
    return _cached((costs, tapes, levels), lambda table: True,
                   lambda width: OptimalTable.solve(costs, resolution=levels, tapes=tapes))


def _keeps_everything(costs: ChainCosts, slots: object, budget_bytes: object,
                      tapes: object) -> bool:
    """Whether a valid budget holds everything, so that no table is needed."""
    if not isinstance(tapes, bool):
        return False
    if isinstance(slots, int) and not isinstance(slots, bool) and budget_bytes is None:
        return slots - 1 >= costs.n - 1
    if (slots is None and isinstance(budget_bytes, numbers.Real)
            and not isinstance(budget_bytes, bool) and math.isfinite(budget_bytes)):
        return budget_bytes - costs.state_bytes[0] >= everything_bytes(costs, tapes)
    return False


def optimal_cost(costs: ChainCosts, slots: int | None = None, budget_bytes: float | None = None,
                 tapes: bool = True, resolution: int | None = None) -> float:
    """The DP's least forward cost (sum of u_t over evaluations) for the given budget."""
    check_optimal(slots, budget_bytes, tapes, resolution)
    if _keeps_everything(costs, slots, budget_bytes, tapes):
        return _everything_cost(costs, tapes)
    return table_for(costs, slots, budget_bytes, tapes, resolution).cost(
        budget_bytes if slots is None else slots)


def plan_optimal(costs: ChainCosts, slots: int | None = None, budget_bytes: float | None = None,
                 tapes: bool = True, resolution: int | None = None) -> Plan:
    """The plan of least forward cost within the budget (see the module docstring)."""
    check_optimal(slots, budget_bytes, tapes, resolution)
    if _keeps_everything(costs, slots, budget_bytes, tapes):
        if resolution is not None and slots is None:
            positive_int(NAME, "resolution", resolution)
        builder = _everything_plan(costs, tapes)
        if slots is not None:
            return builder.build(NAME, {"slots": slots, "tapes": tapes}, slots=slots)
        levels = default_resolution(costs.n) if resolution is None else resolution
        return builder.build(NAME, {"budget_bytes": budget_bytes, "tapes": tapes,
                                    "resolution": levels})
    table = table_for(costs, slots, budget_bytes, tapes, resolution)
    return table.plan(budget_bytes if slots is None else slots)


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
               "budget_bytes only: how many free memory levels the DP solves, from nothing to "
               "the bytes that keep everything, spaced geometrically (each gap a constant ratio "
               "larger than the one before) so that every budget gets the same relative "
               "resolution from one table; the bytes left after every move are rounded down "
               "to a level, never up; more levels take time and memory in proportion (default: "
               "1000, fewer for chains over 35 stages, see default_resolution)")),
    check_optimal)
