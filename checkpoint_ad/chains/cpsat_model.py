"""A CP-SAT model (OR-Tools) of the chain tape model of docs/cost_model.md, over every schedule,
not only the persistent ones of the ``optimal`` recursion (docs/chains.md, "Certifying
``optimal``").

Time is ``horizon`` **slots** p = 0, 1, ...; each holds at most one **event**, and the used
slots come first. The events of stage t (1..n) at slot p are Boolean variables:

* ``A[t][p]`` an advance (plain evaluation) and ``T[t][p]`` a taped evaluation whose tape is
  held: both read x_{t-1} and leave x_t as the working value;
* ``R[t][p]`` a turn (taped evaluation and backward(t) at once) and ``B[t][p]`` backward(t)
  from the held tape: both reverse stage t and leave no working value.

The state at **point** p (after event p and the save of its output, the frees of what event
p + 1 reads last already made) is ``ck[j][p]``, checkpoint x_j stored (1 <= j < n; x_0 is
always stored, x_n is never read), ``hd[t][p]``, stage t's tape held, and ``done[t][p]``,
stage t reversed. Constraints, one for each rule of the checker:

* ``hd[t][p] = hd[t][p-1] + T[t][p] - B[t][p]``, and no tape is held once its stage is
  reversed: a tape is held from its taped evaluation to its backward step;
* ``ck[j][p] <= ck[j][p-1] + A[j][p]``: a checkpoint is saved right after an advance to it
  (the only moment x_j is the working value and stored nowhere) and may be freed at any point;
  ``ck[j][p] + hd[j][p] <= 1`` (no state is stored twice);
* an evaluation of stage t >= 2 at p finds x_{t-1}: it is the working value (the event at
  p - 1 is an advance or taped evaluation of stage t - 1), a checkpoint or a held tape at
  p - 1; and stage t is not yet reversed;
* ``done[t][p] - done[t][p-1] = R[t][p] + B[t][p]``, every stage is reversed by the last slot,
  and stage t only once stage t + 1 is (``done[t][p] <= done[t+1][p-1]``): backward(n), ...,
  backward(1) in order;
* memory: ``a_0 + sum_j a_j ck[j][p] + sum_t b_t hd[t][p] <= budget`` at every point, the
  stored bytes the replay and the checker count (a turn's transient tape and the working value
  are not stored).

**Normal form.** Any schedule can be rewritten, at no cost in evaluations or memory, so that
no advance goes unused (its output neither read next nor saved), no checkpoint is kept past
its last reader or saved only for the next event, and backward(t) follows at once the reversal
of stage t + 1 when its tape is held; the model asks for this form, which removes equivalent
solutions, and states for the linear relaxation that each stage makes exactly one tape (its
taped evaluation or its turn).

The objective is the forward cost, ``sum u_t (A + T + R)``, with costs scaled to integers and
rounded **down** (exact when they are whole numbers), so the solver's bound divided by the
scale never exceeds the true cost of any schedule of the model.

**What it restricts.** Only the number of slots. A schedule of cost at most U evaluates each
stage at least once, so it makes at most ``n + (U - sum u) / min u`` evaluations and at most n
backward steps: with ``horizon`` at least :func:`complete_horizon` (U) the model holds every
schedule of cost at most U, written with each checkpoint freed right after its last reader's
restore, and its bound bounds every schedule. Stage t's tape may not keep its input
(``tape_input_bytes``, shared with a stored x_{t-1}): such chains are refused by the caller.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .actions import Action
from .costs import ChainCosts
from .plans import Plan, PlanBuilder

if TYPE_CHECKING:
    from ortools.sat.python import cp_model

COST_UNITS = 10**6  # fractional costs: the largest becomes about this many integer units
EVALUATIONS = (Action.ADVANCE, Action.TAPE, Action.TURN)


def cost_scale(compute: Sequence[float]) -> float:
    """Integer units per cost unit: 1 when every stage cost is a whole number, else a power
    of ten putting the largest near :data:`COST_UNITS`."""
    if all(float(u).is_integer() for u in compute):
        return 1.0
    return float(10 ** max(0, round(math.log10(COST_UNITS / max(compute)))))


def complete_horizon(costs: ChainCosts, upper: float) -> int:
    """The most events (evaluations and backward steps) of a schedule of forward cost at most
    ``upper``: ``2n + floor((upper - sum u) / min u)``."""
    spare = max(0.0, upper - sum(costs.compute))
    return 2 * costs.n + math.floor(spare / min(costs.compute) + 1e-9)


def single_events(plan: Plan) -> list[tuple[Action, int]]:
    """The plan's events in order, one per slot: each run of advances split into single
    stages; the zero-cost moves (save, restore, free) left out."""
    found = []
    for step in plan:
        if step.action is Action.ADVANCE:
            found += [(Action.ADVANCE, t) for t in range(step.stage, step.end + 1)]
        elif step.action in (Action.TAPE, Action.TURN, Action.BACKWARD):
            found.append((step.action, step.stage))
    return found


class ChainModel:
    """The model of the module docstring for ``costs`` with ``sizes`` (a_0..a_n), ``tapes``
    (b_1..b_n, or None: no held tape) and ``budget`` bytes, over ``horizon`` slots."""

    def __init__(self, costs: ChainCosts, sizes: Sequence[int], tapes: Sequence[int] | None,
                 budget: int, horizon: int) -> None:
        from ortools.sat.python import cp_model  # imported when used: it takes a second
        self.costs, self.n, self.horizon = costs, costs.n, horizon
        self.sizes, self.tapes = tuple(sizes), None if tapes is None else tuple(tapes)
        self.scale = cost_scale(costs.compute)
        self.model = m = cp_model.CpModel()
        n, slots = self.n, range(horizon)
        self.zero = zero = m.NewConstant(0)
        self.kinds = {Action.ADVANCE: "A", Action.TAPE: "T", Action.TURN: "R",
                      Action.BACKWARD: "B"}
        self.event: dict[Action, list[list]] = {}
        for action in self.kinds:
            usable = tapes is not None or action not in (Action.TAPE, Action.BACKWARD)
            self.event[action] = [[m.NewBoolVar("") if usable and (
                action is Action.BACKWARD or p >= t - 1) and not (
                action is Action.ADVANCE and t == n) else zero for p in slots]
                for t in range(n + 1)]  # x_n is read by nothing: stage n is never advanced
        self.ck = [[m.NewBoolVar("") if 0 < j < n else zero for _ in slots]
                   for j in range(n + 1)]
        self.hd = [[m.NewBoolVar("") if t and tapes is not None else zero for _ in slots]
                   for t in range(n + 1)]
        self.done = [[m.NewBoolVar("") if t else zero for _ in slots] for t in range(n + 1)]
        self._slots()
        self._states()
        self._memory(budget)
        units = [math.floor(u * self.scale + 1e-9) for u in costs.compute]
        self.model.Minimize(sum(units[t - 1] * self._evaluations(t, p)
                                for t in range(1, n + 1) for p in slots))

    def _evaluations(self, t: int, p: int):
        return sum(self.event[action][t][p] for action in EVALUATIONS)

    def _slots(self) -> None:
        """At most one event a slot; the used slots come first."""
        m, stages = self.model, range(1, self.n + 1)
        used = [sum(self.event[a][t][p] for a in self.kinds for t in stages)
                for p in range(self.horizon)]
        for p, count in enumerate(used):
            m.Add(count <= 1)
            if p:
                m.Add(count <= used[p - 1])

    def _states(self) -> None:
        m, n = self.model, self.n
        A, T, R, B = (self.event[a] for a in self.kinds)
        for p in range(self.horizon):
            for t in range(1, n + 1):
                hd_before = self.hd[t][p - 1] if p else 0
                done_before = self.done[t][p - 1] if p else 0
                m.Add(self.hd[t][p] == hd_before + T[t][p] - B[t][p])
                m.Add(self.hd[t][p] + self.done[t][p] <= 1)
                m.Add(self.done[t][p] - done_before == R[t][p] + B[t][p])
                if t < n:
                    m.Add(self.done[t][p] <= (self.done[t + 1][p - 1] if p else 0))
                if t < n and p:  # a held tape is used as soon as it can be
                    m.Add(B[t][p] >= self.hd[t][p - 1] + self.done[t + 1][p - 1] - 1)
                evaluations = A[t][p] + T[t][p] + R[t][p]
                m.Add(evaluations + done_before <= 1)
                if t >= 2:
                    found = (A[t - 1][p - 1] + T[t - 1][p - 1] + self.ck[t - 1][p - 1]
                             + self.hd[t - 1][p - 1]) if p else 0
                    m.Add(evaluations <= found)
                if 0 < t < n:
                    m.Add(self.ck[t][p] <= (self.ck[t][p - 1] if p else 0) + A[t][p])
                    m.Add(self.ck[t][p] + self.hd[t][p] <= 1)
                if t < n and p + 1 < self.horizon:  # no use: an advance or stored x_t
                    read = self._evaluations(t + 1, p + 1)
                    m.Add(self.ck[t][p] <= self.ck[t][p + 1] + read)
                    if 0 < t:  # a save that no restore reads
                        m.Add(self.ck[t][p] <= (self.ck[t][p - 1] if p else 0)
                              + self.ck[t][p + 1])
                    m.Add(A[t][p] <= self.ck[t][p] + read)
        for t in range(1, n + 1):
            m.Add(self.done[t][self.horizon - 1] == 1)
            # redundant, for the linear relaxation: one tape of each stage is made
            m.Add(sum(T[t][p] + R[t][p] for p in range(self.horizon)) == 1)

    def _memory(self, budget: int) -> None:
        free = budget - self.sizes[0]
        for p in range(self.horizon):
            stored = sum(self.sizes[j] * self.ck[j][p] for j in range(1, self.n))
            if self.tapes is not None:
                stored += sum(self.tapes[t - 1] * self.hd[t][p] for t in range(1, self.n + 1))
            self.model.Add(stored <= free)

    # -- hints and decoding ------------------------------------------------------------------

    def hint(self, plan: Plan) -> bool:
        """Hint every variable with ``plan`` (a checked plan of the model's chain): its events
        slot by slot, checkpoint x_j stored at point p when it is stored after event p or saved
        before event p + 1. False (no hint) when the plan has more events than slots."""
        events = single_events(plan)
        if len(events) > self.horizon:
            return False
        points: list[set[int]] = []  # the checkpoints of each point
        checkpoints: set[int] = set()
        for step in plan:
            if step.action is Action.SAVE:
                checkpoints.add(step.stage)
                points[-1].add(step.stage)
            elif step.action is Action.FREE:
                checkpoints.discard(step.stage)
            elif step.action in EVALUATIONS or step.action is Action.BACKWARD:
                points += [set(checkpoints) for _ in range(step.evaluations or 1)]
        self._trim(points, events)
        held: set[int] = set()
        done: set[int] = set()
        for p in range(self.horizon):
            action, t = events[p] if p < len(events) else (None, 0)
            if action is Action.TAPE:
                held.add(t)
            elif action is Action.BACKWARD:
                held.discard(t)
            if action in (Action.TURN, Action.BACKWARD):
                done.add(t)
            for s in range(1, self.n + 1):
                for kind in self.kinds:
                    self._hint(self.event[kind][s][p], kind is action and s == t)
                self._hint(self.hd[s][p], s in held)
                self._hint(self.done[s][p], s in done)
                self._hint(self.ck[s][p], p < len(points) and s in points[p])
        return True

    @staticmethod
    def _trim(points: list[set[int]], events: list[tuple[Action, int]]) -> None:
        """Drop from ``points`` what the model's normal form drops: a checkpoint at a point
        after which no event reads it, and a save read only by the next event."""
        for p in range(len(points) - 2, -1, -1):
            action, t = events[p + 1]
            read = t - 1 if action is not Action.BACKWARD else None
            points[p] &= points[p + 1] | {read}
        for p, (action, t) in enumerate(events):
            if (action is Action.ADVANCE and t in points[p]
                    and (p == 0 or t not in points[p - 1])
                    and (p + 1 == len(points) or t not in points[p + 1])):
                points[p].discard(t)

    def _hint(self, variable, value: bool) -> None:
        if variable is not self.zero:
            self.model.AddHint(variable, value)

    def decode(self, solver: cp_model.CpSolver) -> PlanBuilder:
        """The steps of the solver's best solution: before event p, a restore of its input
        when it is not the working value, then the frees of the checkpoints the model drops at
        p; after an advance, the save the model makes; at the end, the frees left."""
        value = solver.boolean_value
        builder, n = PlanBuilder(self.n), self.n
        stored, working = set(), 0
        for p in range(self.horizon):
            found = [(kind, t) for kind in self.kinds for t in range(1, n + 1)
                     if self.event[kind][t][p] is not self.zero
                     and value(self.event[kind][t][p])]
            if not found:
                break
            (action, t), = found
            if action is not Action.BACKWARD and working != t - 1:
                builder.restore(t - 1)
            for j in sorted(stored):
                if not value(self.ck[j][p]):
                    builder.free(j)
                    stored.discard(j)
            builder.add(action, t)
            working = t if action in (Action.ADVANCE, Action.TAPE) else None
            if action is Action.ADVANCE and 0 < t < n and value(self.ck[t][p]) \
                    and t not in stored:
                builder.save(t)
                stored.add(t)
        for j in sorted(stored):
            builder.free(j)
        return builder
