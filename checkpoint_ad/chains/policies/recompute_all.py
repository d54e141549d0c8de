"""recompute_all: keep only x_0 and recompute from it (n(n+1)/2 evaluations, peak_stored 1).

For t = n, n-1, ..., 1: restore x_0, advance through stages 1..t-1 (one ADVANCE step), then
turn stage t. Nothing but ``x_0`` is ever stored and no tape is held, so this is the least
memory any plan can use, at quadratic compute.
"""
from __future__ import annotations

from ...plans.limits import Footprint, plan_bytes, require
from ..costs import ChainCosts
from ..plans import Plan, PlanBuilder
from ...plans.registry import PolicySpec


def footprint(n: int) -> Footprint:
    """What planning n stages takes: 3n − 1 steps, x_0 alone stored."""
    return Footprint(plan_bytes(n, 3 * n, 1), 3 * n)


def plan_recompute_all(costs: ChainCosts) -> Plan:
    n = costs.n
    require("recompute_all", f"n={n:,}", n, footprint)
    builder = PlanBuilder(n)
    for stage in range(n, 0, -1):
        builder.restore(0)
        builder.advance(1, stage - 1)
        builder.turn(stage)
    return builder.build("recompute_all", slots=1)


SPEC = PolicySpec("recompute_all", "keep only x_0: least memory, O(n^2) compute",
                  plan_recompute_all)
