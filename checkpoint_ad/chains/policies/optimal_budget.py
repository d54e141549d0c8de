"""``optimal(budget_bytes=B)``: the cheapest plan whose whole activation peak fits B.

The recursion of :mod:`.optimal` bounds checkpoints and held tapes (its *store levels*). The
whole peak the Meter counts (:mod:`..replay`: those, plus the working value, a turn's tape and
the cotangents) is not monotone in the store level: keeping one small checkpoint can spare
every later sweep a large working value. So a byte budget is answered from a fixed family of
plans, each replayed once for its whole peak:

* the DP's plan at every store level of the chain's table, and the plan keeping everything;
* ``recompute_all``, and ``revolve`` at 1, 2, ..., 16, 24, 32, 48, 64, ... slots up to n; with
  held tapes allowed also ``sqrt_n`` at as many segments, and ``store_all``.

The answer is the cheapest member whose whole peak is at most B (on a tie, the smaller peak).
The family does not depend on B, so a larger budget never costs more, and the least budget
``optimal`` meets is the least peak in the family, which a refusal names. Among plans of this
family the answer is exact; against every schedule of the whole-peak model it is not proved
optimal (the DP is exact for its store levels, docs/cost_model.md).
"""
from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from ...errors import BudgetError
from ..plans import Plan
from ..replay import forward_cost, peak_bytes
from . import recompute_all, revolve, sqrt_n, store_all
from .optimal_table import NAME, OptimalTable


def counts_up_to(n: int) -> list[int]:
    """Every count from 1 to 16, then 24, 32, 48, 64, ... (powers of two and 1.5 times them),
    up to n."""
    found, power = set(range(1, 17)), 1
    while power <= n:
        found |= {power, max(1, 3 * power // 2)}
        power *= 2
    return sorted(c for c in found if c <= n)


@dataclass
class _Member:
    """One plan of the family: its cost, and its steps and peak made when first needed."""

    cost: float
    make: Callable[[], Plan]
    _peak: int | None = None
    _plan: Plan | None = None

    def plan(self) -> Plan:
        if self._plan is None:
            self._plan = self.make()
        return self._plan


@dataclass
class Family:
    """The plans ``budget_bytes`` chooses from for one table (module docstring)."""

    table: OptimalTable
    members: list[_Member] = field(default_factory=list)
    _peaks: dict[bytes, int] = field(default_factory=dict)  # replays shared by equal plans

    @classmethod
    def of(cls, table: OptimalTable) -> Family:
        costs, tapes = table.costs, table.tapes
        family = cls(table)
        for level in [None, *range(table.width, -1, -1)]:
            family.members.append(_Member(table.level_cost(level),
                                          lambda level=level: table.level_steps(level).build(NAME)))
        fixed = [recompute_all.plan_recompute_all(costs)]
        fixed += [revolve.plan_revolve(costs, slots) for slots in counts_up_to(costs.n)]
        if tapes:
            fixed += [store_all.plan_store_all(costs)]
            fixed += [sqrt_n.plan_sqrt_n(costs, k) for k in counts_up_to(costs.n)]
        family.members += [_Member(forward_cost(plan, costs), lambda plan=plan: plan, _plan=plan)
                           for plan in fixed]
        family.members.sort(key=lambda member: member.cost)
        return family

    def peak(self, member: _Member) -> int:
        """The member's whole activation peak (bytes), replayed once per distinct plan."""
        if member._peak is None:
            plan = member.plan()
            key = b"".join((plan._actions.tobytes(), plan._stages.tobytes(),
                            plan._ends.tobytes()))
            if key not in self._peaks:
                self._peaks[key] = peak_bytes(plan, self.table.costs)
            member._peak = self._peaks[key]
        return member._peak

    def cheapest_within(self, budget_bytes: float) -> Plan:
        """The cheapest member whose peak is at most ``budget_bytes`` (ties: smaller peak)."""
        best: _Member | None = None
        for member in self.members:  # cheapest first
            if best is not None and member.cost > best.cost:
                break
            if self.peak(member) <= budget_bytes and (best is None
                                                      or self.peak(member) < self.peak(best)):
                best = member
        if best is None:
            raise BudgetError(f"policy {NAME!r}: budget_bytes={budget_bytes} is below the "
                              f"minimum of {self.minimum():,} bytes, the least whole activation "
                              f"peak of its plans on this chain (checkpoints, held tapes, the "
                              f"working value and the cotangents)")
        return best.plan()

    def minimum(self) -> int:
        """The least whole peak in the family: the least ``budget_bytes`` it meets."""
        return min(self.peak(member) for member in self.members)


_FAMILIES: weakref.WeakKeyDictionary[OptimalTable, Family] = weakref.WeakKeyDictionary()


def family_of(table: OptimalTable) -> Family:
    """The family of ``table``, kept as long as the table is."""
    if table not in _FAMILIES:
        _FAMILIES[table] = Family.of(table)
    return _FAMILIES[table]


def plan_within(table: OptimalTable, budget_bytes: float, params: dict[str, object]) -> Plan:
    """The cheapest plan of the family of ``table`` within ``budget_bytes``, as ``optimal``'s
    plan with ``params``."""
    chosen = family_of(table).cheapest_within(budget_bytes)
    return replace(chosen, policy=NAME, params=tuple(sorted(params.items())), slots=None)


def minimum_budget(table: OptimalTable) -> int:
    """The least ``budget_bytes`` (bytes) ``optimal`` meets with this table's chain."""
    return family_of(table).minimum()
