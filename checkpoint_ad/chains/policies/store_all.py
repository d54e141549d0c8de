"""store_all: tape every stage once and keep every tape (n evaluations, peak_stored n).

Stages 1..n-1 are taped and held; stage n is turned (its tape is transient), then the held
tapes are consumed from n-1 down to 1.
"""
from __future__ import annotations

from ...plans.limits import Footprint, plan_bytes, require
from ..costs import ChainCosts
from ..plans import Plan, PlanBuilder
from ...plans.registry import PolicySpec


def footprint(n: int) -> Footprint:
    """What planning n stages takes: 2n − 1 steps, n items stored."""
    return Footprint(plan_bytes(n, 2 * n, n), 2 * n)


def plan_store_all(costs: ChainCosts) -> Plan:
    n = costs.n
    require("store_all", f"n={n:,}", n, footprint)
    builder = PlanBuilder(n)
    for stage in range(1, n):
        builder.tape(stage)
    builder.turn(n)
    for stage in range(n - 1, 0, -1):
        builder.backward(stage)
    return builder.build("store_all")


SPEC = PolicySpec("store_all", "keep every tape: fastest, O(n) memory", plan_store_all)
