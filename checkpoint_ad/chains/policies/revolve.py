"""revolve: Griewank & Walther's binomial checkpointing (ACM TOMS Algorithm 799), offline.

With ``s`` checkpoint slots (``x_0``'s slot included) an n-stage chain is reversed with
Griewank's least number of plain advances, T_G(n, s) = r·n − beta(s+1, r−1), plus the n taped
evaluations of the turns; beta(s, t) = C(s+t, s) (0 for a negative argument) and the repetition
number r is the smallest r >= 0 with beta(s, r) >= n. Peak stored: min(s, n-1), or 1 when n = 1.
No tape is ever held (revolve has no such notion).

revolve's actions become plan steps: a run of advances → one ADVANCE step, takeshot → SAVE,
restore → RESTORE, firsturn/youturn → TURN; ``x_0`` is stored from the start, and a snapshot
``x_j`` is freed right after the turn of stage j+1, which ends its use.

The schedule is revolve's own state machine (``Offline::revolve`` in revolve.cpp), driven by a
loop over an explicit stack of snapshots — no recursion — so a million-stage chain plans in
linear time and the plan has O(n) steps. Each advance length comes from Griewank's closed-form
optimal split (:func:`advance_length`), not from a search.
"""
from __future__ import annotations

from math import comb

from ...plans.limits import Footprint, plan_bytes, require
from ..costs import ChainCosts
from ..plans import Plan, PlanBuilder
from ...plans.registry import Parameter, PolicySpec, positive_int
from .sqrt_n import ceil_sqrt


def beta(slots: int, repetitions: int) -> int:
    """beta(s, t) = C(s+t, s): the longest chain s slots reverse with t repetitions; 0 if s or t < 0."""
    if slots < 0 or repetitions < 0:
        return 0
    return comb(slots + repetitions, slots)


def repetition_number(steps: int, slots: int) -> int:
    """The smallest r >= 0 with beta(slots, r) >= steps (exponential, then binary search)."""
    if steps <= 1:
        return 0
    low, high = 0, 1  # invariant: beta(slots, low) < steps <= beta(slots, high) once found
    while beta(slots, high) < steps:
        low, high = high, 2 * high
    while high - low > 1:
        middle = (low + high) // 2
        if beta(slots, middle) >= steps:
            high = middle
        else:
            low = middle
    return high


def advance_length(steps: int, free: int) -> int:
    """How many stages to advance from the snapshot at ``capo`` when ``steps`` >= 2 stages remain.

    ``free`` counts the slots available from that snapshot's slot on (its own included), as
    revolve's ``snaps - check``. This is revolve's closed form: with r the repetition number of
    (steps, free) and the binomials below, the split lands the next snapshot so that both parts
    are reversed optimally.
    """
    reps = repetition_number(steps, free)
    whole = beta(free, reps)
    shorter = beta(free, reps - 1)
    fewer = beta(free - 1, reps - 1)
    fewest = beta(free - 2, reps - 1)
    if steps <= shorter + fewest:
        length = beta(free, reps - 2)
    elif steps >= whole - beta(free - 3, reps):
        length = shorter
    else:
        length = steps - fewer - fewest
    return max(length, 1)


def footprint(n: int, slots: object = None) -> Footprint:
    """What planning n stages takes: at most 5n steps (each stage turned once, at most one
    restore, advance, save and free per turn) and min(slots, n) stored items."""
    slots = slots if isinstance(slots, int) and slots > 0 else ceil_sqrt(n)
    return Footprint(plan_bytes(n, 5 * n, min(slots, n)), 5 * n)
def check_revolve(slots: int | None = None) -> int | None:
    """``slots``: None (the default) or a positive integer."""
    return None if slots is None else positive_int("revolve", "slots", slots)


def plan_revolve(costs: ChainCosts, slots: int | None = None) -> Plan:
    n = costs.n
    slots = check_revolve(slots)
    slots = ceil_sqrt(n) if slots is None else slots
    require("revolve", f"n={n:,} with slots={slots:,}", n, lambda m: footprint(m, slots))
    builder = PlanBuilder(n)
    snapshots = [0]  # positions of the stored states, x_0 at the bottom
    position, end = 0, n  # the working value is x_position; stage `end` is next to reverse
    while end > 0:
        if end - position > 1:
            if position != snapshots[-1]:
                builder.save(position)
                snapshots.append(position)
            target = position + advance_length(end - position, slots - len(snapshots) + 1)
            builder.advance(position + 1, target)
            position = target
            continue
        builder.turn(end)
        end -= 1
        if end == 0:
            break
        if snapshots[-1] == end:
            builder.free(snapshots.pop())
        position = snapshots[-1]
        builder.restore(position)
    return builder.build("revolve", {"slots": slots}, slots=slots)


SPEC = PolicySpec(
    "revolve", "Griewank's binomial checkpointing: optimal compute for s slots, no held tapes",
    plan_revolve,
    (Parameter("slots", int, None,
               "checkpoint slots, x_0's included (default ceil(sqrt(n)))"),),
    check_revolve)
