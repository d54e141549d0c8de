"""A CP-SAT model (OR-Tools) of docs/graph_model.md: the live-values model, exactly, over
event slots, with at most ``capacity[v]`` computations of each op v.

Time is a sequence of ``horizon`` **slots**; each slot holds at most one event: a computation
or a backward step (frees take no slot: they happen between events). Variables:

* per op v and computation c < ``capacity[v]``: a presence literal ``x[v][c]`` (the first one
  is always present: every op lies on a path to the output, so every plan computes it), a
  start slot ``s`` (the slot of the computation) and a last slot ``e >= s`` (the value is
  resident from slot s through slot e, and freed before slot e + 1). The computations of an
  op are ordered and disjoint (``e[c] < s[c+1]``): a value is never computed while resident;
* per backward step j (``costs.backward_order``): its slot ``t[j]``, increasing in j;
* per (computation of u, op parent p of u): literals choosing which computation of p covers
  the slot (``s_p < s_u <= e_p``); per (backward step, op residual): the same for ``t[j]``.

Memory is one ``Cumulative`` over the value intervals ``[s, e + 1)`` (demand: the value's
size) and the cotangent intervals: op p's cotangent lives from the slot of the backward step
that allocates it (``costs.new_cotangents``; the output's seed at its own step) through the
slot of backward(p). At a compute slot this counts the resident values and the new one; at a
backward step it counts the resident values, the live cotangents and the new ones, exactly
the peaks of :func:`~checkpoint_ad.graphs.replay.replay`. Sizes are divided by their gcd; the
capacity is the budget in those units. In an **exact** model slots are distinct (``NoOverlap``
of unit intervals) and events fill the first slots. A model that is not exact (used to improve
a plan on large graphs: CP-SAT's neighbourhood search then has room to move events) lets
independent events share a slot, and has twice as many slots: the memory of a shared slot
counts all its events at once, which only overestimates the peak, so every solution is still
a plan within the budget, but some plans are missed and its bound bounds nothing.

**What it restricts.** Only the number of computations of each op (``capacity``), and the
horizon, ``sum(capacity) + len(backward_order)`` slots, which any such plan fits. Any plan
can be rewritten, at no cost in time or memory, so that each value is freed after its last
use and no computation is unused; such a plan with at most ``capacity[v]`` computations of
each op is a solution of the model with the same cost and peak. So when every capacity is at
least ``1 + (U - total) / costs[v]`` for a known plan of cost U (a plan of cost <= U cannot
compute op v more often), the model holds an optimal plan and its proven bound bounds every
plan (:meth:`IntervalModel.complete`).

The objective is the sum of ``costs[v]`` over present computations, with costs scaled to
integers and rounded **down** (exact when they are whole numbers), so the solver's bound
divided by the scale never exceeds the true cost of any plan of the model.
"""
from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..costs import GraphCosts
from ..plans import GraphAction, GraphStep
from .checkmate_model import OutOfTime
from .steps import free_after_last_use

if TYPE_CHECKING:
    from ortools.sat.python import cp_model

COST_UNITS = 10**6  # fractional costs: the largest becomes about this many integer units
CHECKED_OPS = 256  # ops added between two readings of the clock
SPREAD = 2  # slots per event of the hint in a model that is not exact (room to insert events)


def cost_scale(costs: GraphCosts) -> float:
    """Integer units per cost unit: 1 when every op cost is a whole number, else a power of
    ten putting the largest cost near :data:`COST_UNITS`."""
    values = [costs.costs[v] for v in costs.op_nodes]
    if all(float(c).is_integer() for c in values):
        return 1.0
    largest = max(values)
    return float(10 ** max(0, round(math.log10(COST_UNITS / largest)))) if largest else 1.0


def complete_capacity(costs: GraphCosts, upper: float) -> list[float]:
    """Per node, the most computations of op v a plan of cost <= ``upper`` can make:
    ``1 + floor((upper - total) / costs[v])`` (each op is computed at least once); ``inf``
    for an op of cost 0 (free recomputation is never ruled out). 0 for inputs."""
    spare = upper - costs.total_cost
    found = [0.0] * len(costs)
    for v in costs.op_nodes:
        cost = costs.costs[v]
        found[v] = math.inf if cost <= 0 else 1 + math.floor(spare / cost + 1e-9)
    return found


class IntervalModel:
    """The model of the module docstring for ``costs`` under ``budget`` bytes (``math.inf``:
    no limit), with ``capacity[v]`` computations allowed for op v. Building stops with
    :class:`~.checkmate_model.OutOfTime` at ``deadline`` (a ``time.perf_counter()`` value).
    ``ordered=False`` drops the order of an op's computations (the c-th present only after
    the (c-1)-th, and later): their values are kept disjoint by a ``NoOverlap`` instead, so
    any of them but the first may be absent (:mod:`.cpsat_lns` fixes some and frees others)."""

    def __init__(self, costs: GraphCosts, budget: float, capacity: Sequence[int],
                 deadline: float = math.inf, exact: bool = True, floor: float = 0.0,
                 ordered: bool = True) -> None:
        self.costs, self.capacity, self.deadline = costs, list(capacity), deadline
        self.ordered = ordered
        self.order = costs.backward_order
        self.exact = exact
        self.spread = 1 if exact else SPREAD
        self.horizon = self.spread * (sum(self.capacity[v] for v in costs.op_nodes)
                                      + len(self.order))
        self.unit = math.gcd(*(costs.sizes[v] for v in costs.op_nodes)) or 1
        self.scale = cost_scale(costs)
        from ortools.sat.python import cp_model  # imported when used: it takes a second
        self.model = cp_model.CpModel()
        self.present: dict[int, list] = {}
        self.start: dict[int, list] = {}
        self.last: dict[int, list] = {}
        self.value_intervals: list[tuple[object, int]] = []
        self.events: list[object] = []
        self.choices: list[tuple[int, tuple, list]] = []  # (node, reader, literals) to hint
        self._computations()
        self._backward_steps()
        self._memory(budget)
        self._objective(floor)

    def _units(self, node: int) -> int:
        return self.costs.sizes[node] // self.unit

    def _computations(self) -> None:
        m, top = self.model, self.horizon - 1
        for count, v in enumerate(self.costs.op_nodes):
            if count % CHECKED_OPS == 0 and time.perf_counter() > self.deadline:
                raise OutOfTime
            present, start, last = [], [], []
            for c in range(self.capacity[v]):
                x = m.NewConstant(1) if c == 0 else m.NewBoolVar(f"x{v}_{c}")
                s, e = m.NewIntVar(0, top, f"s{v}_{c}"), m.NewIntVar(0, top, f"e{v}_{c}")
                size = m.NewIntVar(1, self.horizon, f"d{v}_{c}")
                self.value_intervals.append((m.NewOptionalIntervalVar(s, size, e + 1, x,
                                                                      f"v{v}_{c}"), self._units(v)))
                self.events.append(m.NewOptionalFixedSizeIntervalVar(s, 1, x, f"c{v}_{c}"))
                if c and self.ordered:
                    m.AddImplication(x, present[-1])
                    m.Add(s > last[-1]).OnlyEnforceIf(x)
                present.append(x); start.append(s); last.append(e)
            if not self.ordered and len(present) > 1:
                m.AddNoOverlap([i for i, _ in self.value_intervals[-len(present):]])
            self.present[v], self.start[v], self.last[v] = present, start, last
        for count, u in enumerate(self.costs.op_nodes):
            if count % CHECKED_OPS == 0 and time.perf_counter() > self.deadline:
                raise OutOfTime
            for c in range(self.capacity[u]):
                for p in self.costs.op_parents[u]:
                    self._covered(p, self.start[u][c], self.present[u][c], ("compute", u, c))

    def _covered(self, node: int, slot, when, reader: tuple) -> None:
        """Some computation of ``node`` is resident at ``slot`` (computed before it, not yet
        freed), whenever the literal ``when`` holds; ``reader`` names the slot's event (for
        hints)."""
        m = self.model
        if self.capacity[node] == 1:
            m.Add(self.start[node][0] < slot).OnlyEnforceIf(when)
            m.Add(self.last[node][0] >= slot).OnlyEnforceIf(when)
            return
        choices = []
        for c in range(self.capacity[node]):
            y = m.NewBoolVar("")
            m.AddImplication(y, self.present[node][c])
            m.Add(self.start[node][c] < slot).OnlyEnforceIf(y)
            m.Add(self.last[node][c] >= slot).OnlyEnforceIf(y)
            choices.append(y)
        m.AddBoolOr(choices).OnlyEnforceIf(when)
        self.choices.append((node, reader, choices))

    def _backward_steps(self) -> None:
        m, ops = self.model, len(self.costs.op_nodes)
        # the first backward step needs the output, hence every op, computed before it
        self.step = [m.NewIntVar(ops + j, self.horizon - 1 - (len(self.order) - 1 - j), f"t{j}")
                     for j in range(len(self.order))]
        true = m.NewConstant(1)
        for j, b in enumerate(self.order):
            self.events.append(m.NewFixedSizeIntervalVar(self.step[j], 1, f"b{b}"))
            if j:
                m.Add(self.step[j] > self.step[j - 1])
            for r in self.costs.op_residuals[b]:
                self._covered(r, self.step[j], true, ("backward", j, 0))
        if self.exact:
            self._no_gaps()

    def _no_gaps(self) -> None:
        """Events fill the first slots and the last backward step comes last: a plan can
        always be written so (nothing after the last backward step is of use), and this
        removes the symmetric solutions that differ only by empty slots."""
        m, last = self.model, self.step[-1]
        computations = [x for v in self.costs.op_nodes for x in self.present[v]]
        m.Add(last == sum(computations) + len(self.order) - 1)
        for v in self.costs.op_nodes:
            for x, s in zip(self.present[v], self.start[v]):
                m.Add(s < last).OnlyEnforceIf(x)

    def _cotangent_intervals(self) -> list[tuple[object, int]]:
        """(interval, units) of every cotangent: from the step allocating it through the
        step consuming it."""
        index = {b: j for j, b in enumerate(self.order)}
        born = {self.costs.output: 0}
        for j, b in enumerate(self.order):
            for p in self.costs.new_cotangents[b]:
                born[p] = j
        m, found = self.model, []
        for p, j in born.items():
            first, last = self.step[j], self.step[index[p]]
            size = m.NewIntVar(1, self.horizon, f"g{p}")
            found.append((m.NewIntervalVar(first, size, last + 1, f"cot{p}"), self._units(p)))
        return found

    def _memory(self, budget: float) -> None:
        entries = self.value_intervals + self._cotangent_intervals()
        everything = sum(units for _, units in entries)
        capacity = everything if not math.isfinite(budget) else min(
            everything, int(budget) // self.unit)
        self.model.AddCumulative([i for i, _ in entries], [u for _, u in entries], capacity)
        if self.exact:
            self.model.AddNoOverlap(self.events)

    def _objective(self, floor: float) -> None:
        """Minimise the scaled cost; it is at least ``floor``, a bound valid for every plan
        (:mod:`~checkpoint_ad.graphs.floors`), which helps the solver prove optima."""
        units = {v: math.floor(self.costs.costs[v] * self.scale + 1e-9)
                 for v in self.costs.op_nodes}
        objective = sum(units[v] * x for v in self.costs.op_nodes for x in self.present[v])
        if self.scale == 1:
            self.model.Add(objective >= math.ceil(floor - 1e-9))
        self.model.Minimize(objective)

    # -- hints and decoding ------------------------------------------------------------------

    def hint(self, steps: Sequence[GraphStep]) -> bool:
        """Hint the solver with ``steps`` (a replayed plan): each compute and backward step
        takes the next slot, a value's last slot is the last event before its free. False
        (and no hint) when the plan computes some op more often than its capacity."""
        found, taken = self.placement(steps)
        if any(len(found[v]) > self.capacity[v] for v in found):
            return False
        self._hint_events(found, taken)
        self._hint_choices(found, taken)
        return True

    def placement(self, steps: Sequence[GraphStep]) -> tuple[dict[int, list[list[int]]],
                                                              list[int]]:
        """The slots of ``steps`` as :meth:`hint` places them: per op, the [first, last]
        slots of each computation, and the slot of each backward step."""
        slot, found, taken = -1, {v: [] for v in self.costs.op_nodes}, []
        open_: dict[int, list[int]] = {}
        for action, node in steps:
            if action is GraphAction.FREE:
                open_.pop(node)[1:] = [slot]
                continue
            slot += self.spread if slot >= 0 else 1
            if action is GraphAction.BACKWARD:
                taken.append(slot)
            else:
                record = [slot, slot]
                found[node].append(record)
                open_[node] = record
        return found, taken

    def _hint_events(self, found: dict[int, list[list[int]]], taken: list[int]) -> None:
        """Hint the computations (``found``: per op, the [first, last] slots of each) and the
        backward steps' slots (``taken``)."""
        m = self.model
        for v, records in found.items():
            for c in range(self.capacity[v]):
                s, e = records[c] if c < len(records) else (0, 0)
                if c:
                    m.AddHint(self.present[v][c], c < len(records))
                m.AddHint(self.start[v][c], s)
                m.AddHint(self.last[v][c], e)
        for variable, value in zip(self.step, taken):
            m.AddHint(variable, value)

    def _hint_choices(self, found: dict[int, list[list[int]]], taken: list[int]) -> None:
        """Hint the covering literals: the computation of the node resident at the reader's
        slot (readers that are absent computations cover nothing)."""
        for node, (kind, who, c), literals in self.choices:
            if kind == "backward":
                slot = taken[who]
            elif c < len(found[who]):
                slot = found[who][c][0]
            else:
                slot = None
            for k, literal in enumerate(literals):
                record = found[node][k] if k < len(found[node]) else None
                self.model.AddHint(literal, slot is not None and record is not None
                                   and record[0] < slot <= record[1])

    def decode(self, solver: cp_model.CpSolver) -> list[GraphStep]:
        """The plan of the solver's best solution: its events in slot order, each value freed
        right after its last use (no later than the model frees it, so its replayed peak is at
        most the model's memory)."""
        events = [(solver.Value(t), GraphStep(GraphAction.BACKWARD, b))
                  for t, b in zip(self.step, self.order)]
        for v in self.costs.op_nodes:
            events += [(solver.Value(s), GraphStep(GraphAction.COMPUTE, v))
                       for x, s in zip(self.present[v], self.start[v]) if solver.Value(x)]
        # events sharing a slot (a model that is not exact) are independent: computations
        # first, in index order, then the backward step; the slot's memory counted them all
        events.sort(key=lambda event: (event[0], event[1].action is GraphAction.BACKWARD,
                                       event[1].node))
        return free_after_last_use(self.costs, [step for _, step in events])

    def counts(self, solver: cp_model.CpSolver) -> dict[int, int]:
        """Computations of each op in the solver's best solution."""
        return {v: sum(solver.Value(x) for x in self.present[v]) for v in self.costs.op_nodes}
