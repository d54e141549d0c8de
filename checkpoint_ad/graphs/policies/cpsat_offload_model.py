"""A CP-SAT model of docs/offload_model.md: the slot model of :mod:`.cpsat_model` (exact: one
compute or backward event per slot) with transfers, minimising a plan's **time**.

Added to the slot model:

* **Offload.** Op v may be offloaded once (literal ``y[v]``, slot ``o[v]``): the offload rides
  on one computation c of v (``s[c] < o[v] <= e[c]``, and then ``e[c] == o[v]``: the device
  copy leaves as slot o ends). A host copy exists from slot ``o[v]`` on.
* **Prefetch.** Op v may be prefetched up to ``prefetches[v]`` times (literal ``q``, slot
  ``p > o[v]``, last slot ``f > p``): the value holds its device bytes over ``[p, f]`` and can
  be read in slots ``p+1 .. f`` (a reader is covered by a computation or a prefetch of its
  value). Every device copy of an op (computations and prefetches) is disjoint from the
  others (``NoOverlap``): nothing is computed or prefetched while resident or arriving.
* **Wait slots.** ``waits`` more slots than events: a slot with no event holds transfers alone
  (a ``wait`` step) or nothing (skipped when decoded).
* **Time.** Per slot k a time ``T[k]`` (integer units of 1/``scale`` cost units), at least the
  time of its event (``costs`` or ``backward_costs``), of the bytes offloaded in it and of the
  bytes prefetched in it, each divided by the bandwidth: three ``Cumulative`` constraints
  over the slot axis, each with a filler interval per slot of demand ``C - T[k]`` (so the
  demands of the slot's events or transfers sum to at most ``T[k]``). The objective is the sum
  of ``T[k]``: the plan's time, with each duration rounded to the nearest unit.
* **Host budget.** When given, a host copy holds its bytes over ``[o[v], h[v]]`` with ``h[v]``
  at least the slot of each prefetch (the model drops a copy when the step of its last prefetch
  ends), under one more ``Cumulative``.

Memory on the device is the slot model's ``Cumulative`` with the prefetch intervals added, so
a solution's device peak is the replayed peak of the plan it decodes to.

**What it restricts**, beyond the slot model's capacities: at most one offload per op (with
an unbounded host that loses nothing: a second offload of a value whose copy is kept moves
bytes for nothing; under a host budget, dropping a copy and making it again later is out of
reach), an offload only of a computed copy (never of a prefetched one), at most
``prefetches[v]`` prefetches of op v, at most ``waits`` wait steps. So its optimum is the
least time of a subset of plans: it bounds nothing, and the planner reports no bound from it.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

from ..costs import GraphCosts
from ..plans import GraphAction, GraphStep
from .cpsat_model import IntervalModel

OFFLOAD, PREFETCH, WAIT = GraphAction.OFFLOAD, GraphAction.PREFETCH, GraphAction.WAIT
COMPUTE, FREE, BACKWARD = GraphAction.COMPUTE, GraphAction.FREE, GraphAction.BACKWARD
SCALES = (1, 2, 4, 5, 8, 10, 20, 25, 50, 100, 1000)  # time units per cost unit, tried in turn
LARGEST_SCALE = 100


def time_scale(values: Sequence[float]) -> int:
    """Integer time units per cost unit: the first of :data:`SCALES` making every duration in
    ``values`` whole, else about :data:`LARGEST_SCALE` units for the largest (rounded)."""
    for scale in SCALES:
        if all(abs(v * scale - round(v * scale)) <= 1e-9 * max(1.0, v * scale) for v in values):
            return scale
    largest = max(values, default=1.0) or 1.0
    return max(1, 10 ** round(math.log10(LARGEST_SCALE / largest)))


class OffloadModel(IntervalModel):
    """The model of the module docstring for ``costs`` under ``budget`` device bytes, moving
    values at ``bandwidth`` bytes per cost unit, host copies within ``host_budget`` bytes
    (``math.inf``: no limit); ``capacity[v]`` computations and ``prefetches[v]`` prefetches of
    op v, ``waits`` wait slots."""

    def __init__(self, costs: GraphCosts, budget: float, capacity: Sequence[int],
                 bandwidth: float, prefetches: Sequence[int], waits: int,
                 host_budget: float = math.inf, deadline: float = math.inf) -> None:
        self.bandwidth, self.host_budget, self.waits = bandwidth, host_budget, waits
        self.most = list(prefetches)
        self.moves: dict[int, dict] = {}  # op -> its offload and prefetch variables
        self.copies_choices: list[tuple[int, tuple, list]] = []
        durations = [costs.costs[v] for v in costs.op_nodes]
        durations += [costs.backward_costs[b] for b in costs.backward_order]
        durations += [costs.sizes[v] / bandwidth for v in costs.op_nodes]
        self.time_units = time_scale(durations)
        super().__init__(costs, budget, capacity, deadline, exact=True)

    def _units_of_time(self, value: float) -> int:
        return int(round(value * self.time_units))

    def _computations(self) -> None:
        self.horizon += self.waits  # slots with no event: wait steps
        super()._computations()

    def _moves(self, node: int) -> dict:
        """The offload and prefetch variables of ``node``, made on first use."""
        if node in self.moves:
            return self.moves[node]
        m, top = self.model, self.horizon - 1
        offloaded, slot = m.NewBoolVar(f"y{node}"), m.NewIntVar(1, top, f"o{node}")
        riding = []
        for c in range(self.capacity[node]):  # the computation the offload rides on
            a = m.NewBoolVar("")
            m.AddImplication(a, self.present[node][c])
            m.Add(self.start[node][c] < slot).OnlyEnforceIf(a)
            m.Add(self.last[node][c] == slot).OnlyEnforceIf(a)
            riding.append(a)
        m.Add(sum(riding) == offloaded)
        present, start, last = [], [], []
        for k in range(self.most[node] if self.capacity[node] else 0):
            q = m.NewBoolVar(f"q{node}_{k}")
            p, f = m.NewIntVar(2, top, f"p{node}_{k}"), m.NewIntVar(3, top, f"f{node}_{k}")
            m.AddImplication(q, offloaded)
            m.Add(p > slot).OnlyEnforceIf(q)
            m.Add(f > p).OnlyEnforceIf(q)
            if k:
                m.AddImplication(q, present[-1])
                m.Add(p > last[-1]).OnlyEnforceIf(q)
            present.append(q); start.append(p); last.append(f)
        self.moves[node] = {"offloaded": offloaded, "slot": slot, "riding": riding,
                            "present": present, "start": start, "last": last}
        return self.moves[node]

    def _covered(self, node: int, slot, when, reader: tuple) -> None:
        """Some device copy of ``node`` (a computation, or a prefetch that has arrived) is
        resident at ``slot`` whenever ``when`` holds."""
        m, moves = self.model, self._moves(node)
        copies = list(zip(self.present[node], self.start[node], self.last[node]))
        copies += list(zip(moves["present"], moves["start"], moves["last"]))
        choices = []
        for present, start, last in copies:
            y = m.NewBoolVar("")
            m.AddImplication(y, present)
            m.Add(start < slot).OnlyEnforceIf(y)
            m.Add(last >= slot).OnlyEnforceIf(y)
            choices.append(y)
        m.AddBoolOr(choices).OnlyEnforceIf(when)
        self.copies_choices.append((node, reader, choices))

    def _no_gaps(self) -> None:
        """Every event and transfer comes before the last backward step (slots after it would
        be of no use); empty slots may come between (wait steps, or nothing)."""
        m, last = self.model, self.step[-1]
        for v in self.costs.op_nodes:
            for x, s in zip(self.present[v], self.start[v]):
                m.Add(s < last).OnlyEnforceIf(x)
        for moves in self.moves.values():
            m.Add(moves["slot"] < last).OnlyEnforceIf(moves["offloaded"])
            for q, p in zip(moves["present"], moves["start"]):
                m.Add(p < last).OnlyEnforceIf(q)

    def _memory(self, budget: float) -> None:
        m = self.model
        for v, moves in self.moves.items():
            own = [m.NewOptionalIntervalVar(s, m.NewIntVar(1, self.horizon, ""), e + 1, x, "")
                   for x, s, e in zip(self.present[v], self.start[v], self.last[v])]
            for q, p, f in zip(moves["present"], moves["start"], moves["last"]):
                size = m.NewIntVar(2, self.horizon, "")
                interval = m.NewOptionalIntervalVar(p, size, f + 1, q, f"pf{v}")
                self.value_intervals.append((interval, self._units(v)))
                own.append(interval)
            if len(own) > 1:
                m.AddNoOverlap(own)
        super()._memory(budget)
        self._times()
        if math.isfinite(self.host_budget):
            self._host_memory()

    def _times(self) -> None:
        """The slot times ``T[k]`` and the three Cumulatives bounding them from below."""
        m, costs = self.model, self.costs
        events = [self._units_of_time(costs.costs[v]) for v in costs.op_nodes
                  for _ in range(self.capacity[v])]
        events += [self._units_of_time(costs.backward_costs[b]) for b in self.order]
        outgoing, incoming = [], []
        for v, moves in self.moves.items():
            moved = self._units_of_time(costs.sizes[v] / self.bandwidth)
            outgoing.append((m.NewOptionalFixedSizeIntervalVar(
                moves["slot"], 1, moves["offloaded"], ""), moved))
            incoming += [(m.NewOptionalFixedSizeIntervalVar(p, 1, q, ""), moved)
                         for q, p in zip(moves["present"], moves["start"])]
        most = max([max(events)] + [sum(d for _, d in outgoing), sum(d for _, d in incoming)])
        self.slot_time = [m.NewIntVar(0, most, f"T{k}") for k in range(self.horizon)]
        fillers = [m.NewFixedSizeIntervalVar(k, 1, "") for k in range(self.horizon)]
        room = [most - t for t in self.slot_time]
        for intervals, demands in ((self.events, events),
                                   ([i for i, _ in outgoing], [d for _, d in outgoing]),
                                   ([i for i, _ in incoming], [d for _, d in incoming])):
            if intervals:
                m.AddCumulative(list(intervals) + fillers, list(demands) + room, most)

    def _host_memory(self) -> None:
        """Host copies over ``[o, h]``, ``h`` at least every prefetch's slot, within the host
        budget (in the device model's byte units, rounded down)."""
        m, entries = self.model, []
        for v, moves in self.moves.items():
            held = m.NewIntVar(1, self.horizon - 1, f"h{v}")
            m.Add(held >= moves["slot"])
            for q, p in zip(moves["present"], moves["start"]):
                m.Add(held >= p).OnlyEnforceIf(q)
            moves["held"] = held
            size = m.NewIntVar(1, self.horizon, "")
            entries.append((m.NewOptionalIntervalVar(moves["slot"], size, held + 1,
                                                     moves["offloaded"], f"host{v}"),
                            self._units(v)))
        if entries:
            m.AddCumulative([i for i, _ in entries], [u for _, u in entries],
                            int(self.host_budget) // self.unit)

    def _objective(self, floor: float) -> None:
        """Minimise the plan's time: the sum of the slot times, at least the time of the
        events (a redundant constraint: it gives the solver a bound to prove optima with)."""
        costs, total = self.costs, sum(self.slot_time)
        events = sum(self._units_of_time(costs.costs[v]) * x
                     for v in costs.op_nodes for x in self.present[v])
        self.model.Add(total >= events + sum(self._units_of_time(costs.backward_costs[b])
                                             for b in self.order))
        self.model.Minimize(total)

    def time_of(self, solver: object) -> float:
        """The objective of the solver's best solution, in cost units."""
        return solver.ObjectiveValue() / self.time_units  # type: ignore[attr-defined]

    # -- hints and decoding ------------------------------------------------------------------

    def hint(self, steps: Sequence[GraphStep]) -> bool:
        """Hint the solver with ``steps`` (a replayed plan, transfers allowed): each step takes
        the next slot. False (and no hint) when the plan does not fit the model's restrictions
        (capacities, one offload per op of a computed copy, prefetches, wait slots)."""
        layout = _Layout.of(self.costs, steps, self.bandwidth)
        ops = self.costs.op_nodes
        if layout is None or len(layout.waits) > self.waits or any(
                len(layout.computed[v]) > self.capacity[v] or len(layout.fetched[v]) >
                self.most[v] for v in ops) or any(
                v not in self.moves for v in ops if v in layout.offload or layout.fetched[v]):
            return False
        m = self.model
        self._hint_events(layout.computed, layout.backward)
        for v, moves in self.moves.items():
            self._hint_moves(v, moves, layout)
        for k, variable in enumerate(self.slot_time):
            m.AddHint(variable, self._units_of_time(layout.times.get(k, 0.0)))
        self._hint_copies(layout)
        return True

    def _hint_moves(self, v: int, moves: dict, layout: _Layout) -> None:
        m, slot = self.model, layout.offload.get(v)
        m.AddHint(moves["offloaded"], slot is not None)
        m.AddHint(moves["slot"], slot if slot is not None else 1)
        for c, a in enumerate(moves["riding"]):
            m.AddHint(a, slot is not None and c == layout.rides.get(v))
        fetched = layout.fetched[v]
        for k, (q, p, f) in enumerate(zip(moves["present"], moves["start"], moves["last"])):
            start, last = fetched[k] if k < len(fetched) else (2, 3)
            m.AddHint(q, k < len(fetched))
            m.AddHint(p, start)
            m.AddHint(f, last)
        if "held" in moves:
            m.AddHint(moves["held"], max([slot or 1] + [p for p, _ in fetched]))

    def _hint_copies(self, layout: _Layout) -> None:
        """Hint the covering literals: the copy of the node resident at the reader's slot."""
        for node, (kind, who, c), literals in self.copies_choices:
            if kind == "backward":
                slot = layout.backward[who]
            else:
                slot = (layout.computed[who][c][0] if c < len(layout.computed[who])
                        else None)
            records = layout.computed[node] + [None] * (self.capacity[node]
                                                        - len(layout.computed[node]))
            records += layout.fetched[node]
            for k, literal in enumerate(literals):
                record = records[k] if k < len(records) else None
                self.model.AddHint(literal, slot is not None and record is not None
                                   and record[0] < slot <= record[1])

    def decode(self, solver: object) -> list[GraphStep]:
        """The plan of the solver's best solution: per slot, its transfers, then its event (a
        ``wait`` when it has transfers alone), then the frees of the copies whose last slot it
        is (a copy offloaded in the slot leaves by itself)."""
        value = solver.Value  # type: ignore[attr-defined]
        slots: dict[int, dict] = {}

        def at(k: int) -> dict:
            return slots.setdefault(k, {"moves": [], "event": None, "frees": []})
        for j, b in enumerate(self.order):
            at(value(self.step[j]))["event"] = GraphStep(BACKWARD, b)
        for v in self.costs.op_nodes:
            moves = self.moves.get(v)
            rides = (-1 if moves is None or not value(moves["offloaded"])
                     else [value(a) for a in moves["riding"]].index(1))
            for c, (x, s, e) in enumerate(zip(self.present[v], self.start[v], self.last[v])):
                if value(x):
                    at(value(s))["event"] = GraphStep(COMPUTE, v)
                    if c != rides:
                        at(value(e))["frees"].append(GraphStep(FREE, v))
            if rides >= 0:
                at(value(moves["slot"]))["moves"].append(GraphStep(OFFLOAD, v))
                for q, p, f in zip(moves["present"], moves["start"], moves["last"]):
                    if value(q):
                        at(value(p))["moves"].append(GraphStep(PREFETCH, v))
                        at(value(f))["frees"].append(GraphStep(FREE, v))
        steps: list[GraphStep] = []
        for k in sorted(slots):
            slot = slots[k]
            steps += slot["moves"]
            if slot["event"] is not None:
                steps.append(slot["event"])
            elif slot["moves"]:
                steps.append(GraphStep(WAIT, slot["moves"][0].node))
            steps += slot["frees"]
        return steps


class _Layout:
    """A plan laid out on slots (each compute, backward or wait step takes the next):
    per op its computations ``[start, last]``, its prefetches ``[slot, last]``, its offload's
    slot and the computation it rides on; the backward steps' slots, the wait slots and each
    slot's time (cost units)."""

    def __init__(self, costs: GraphCosts) -> None:
        self.computed: dict[int, list[list[int]]] = {v: [] for v in costs.op_nodes}
        self.fetched: dict[int, list[list[int]]] = {v: [] for v in costs.op_nodes}
        self.offload: dict[int, int] = {}
        self.rides: dict[int, int] = {}
        self.backward: list[int] = []
        self.waits: list[int] = []
        self.times: dict[int, float] = {}

    @classmethod
    def of(cls, costs: GraphCosts, steps: Sequence[GraphStep],
           bandwidth: float) -> _Layout | None:
        """The layout of ``steps`` (transfers at ``bandwidth`` bytes per cost unit), or None when an op is offloaded twice or a prefetched copy
        is offloaded."""
        found, slot = cls(costs), -1
        open_: dict[int, list[int]] = {}  # op -> its resident copy's record
        kind: dict[int, str] = {}
        moved = [0, 0]
        for action, node in steps:
            if action is FREE:
                open_.pop(node)[1] = slot
            elif action is OFFLOAD:
                if node in found.offload or kind.get(node) != "computed":
                    return None
                found.offload[node] = slot + 1
                found.rides[node] = len(found.computed[node]) - 1
                open_.pop(node)[1] = slot + 1
                moved[0] += costs.sizes[node]
            elif action is PREFETCH:
                record = [slot + 1, slot + 1]
                found.fetched[node].append(record)
                open_[node], kind[node] = record, "fetched"
                moved[1] += costs.sizes[node]
            else:
                slot += 1
                if action is COMPUTE:
                    record = [slot, slot]
                    found.computed[node].append(record)
                    open_[node], kind[node] = record, "computed"
                    own = costs.costs[node]
                elif action is BACKWARD:
                    found.backward.append(slot)
                    own = costs.backward_costs[node]
                else:
                    found.waits.append(slot)
                    own = 0.0
                found.times[slot] = max(own, moved[0] / bandwidth, moved[1] / bandwidth)
                moved = [0, 0]
        return found
