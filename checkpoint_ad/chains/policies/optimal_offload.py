"""``optimal(bandwidth=...)`` on chains: the plan of least time within the budget among the
recompute-only plan and the block DP's plans (docs/chain_offload.md).

With ``store_budget_bytes`` S the block DP (:mod:`.offload_dp`) answers S itself, exact among
the block family. With ``budget_bytes`` B (the whole peak) the family is every plan on the
DP's front (one per store need) at each bandwidth of a ladder that does not depend on the
bandwidth asked (:func:`ladder`), each replayed once for its whole peak (kept per chain); at
bandwidth β every member is timed at β (a plan designed for another bandwidth may be the
fastest at β), and the one of least time whose whole peak is at most B wins, the
recompute-only plan on a tie. A higher β shortens every member's time, a larger B admits
more: neither ever takes longer.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace

from ...errors import BudgetError
from ..costs import ChainCosts
from ..plans import Plan
from ..replay import peak_bytes, plan_time
from .offload_dp import START, BlockProblem, blocks_plan, front_blocks, fronts, solve_blocks

CACHE = 8  # families kept (per chain) for sweeps of budgets and bandwidths
_FAMILIES: OrderedDict[ChainCosts, list[tuple[float, int, Plan]]] = OrderedDict()


def ladder(costs: ChainCosts) -> list[float]:
    """The design bandwidths (bytes per cost unit), highest first: from the one at which any
    item's transfer hides behind any step (the largest item over the shortest step) down by
    halves to the one at which the smallest item takes the whole store_all time to move."""
    sizes = [size for size in costs.state_bytes[1:] + costs.tape_bytes if size > 0]
    steps = [time for time in costs.compute + costs.backward_costs if time > 0]
    if not sizes or not steps:
        return []
    high = max(sizes) / min(steps)
    low = min(sizes) / (sum(costs.compute) + sum(costs.backward_costs))
    rates = [high]
    while rates[-1] > low and len(rates) < 48:
        rates.append(rates[-1] / 2)
    return rates


def family(costs: ChainCosts) -> list[tuple[float, int, Plan]]:
    """The DP's plans on the start's front at every :func:`ladder` bandwidth, as (the
    bandwidth they were planned at, whole peak, plan), distinct plans once (the lowest
    bandwidth that planned them)."""
    if costs in _FAMILIES:
        _FAMILIES.move_to_end(costs)
        return _FAMILIES[costs]
    members, seen = [], set()
    for rate in reversed(ladder(costs)):
        found = fronts(BlockProblem(costs, rate))
        for point in found[(0, START, 0)]:
            blocks = tuple(front_blocks(found, point))
            if blocks not in seen:
                seen.add(blocks)
                plan = blocks_plan(costs, list(blocks)).build("optimal")
                members.append((rate, peak_bytes(plan, costs), plan))
    _FAMILIES[costs] = members
    while len(_FAMILIES) > CACHE:
        _FAMILIES.popitem(last=False)
    return members


def _rank(member: tuple[float, int, Plan]) -> tuple[float, int]:
    """Least time first (to 1e-9 cost units: sums in another order may differ in the last
    bits), then the smaller peak."""
    return round(member[0], 9), member[1]


def plan_with_transfers(costs: ChainCosts, bandwidth: float, params: dict[str, object],
                        budget_bytes: float | None, store_budget_bytes: float | None,
                        recompute_only: Callable[[], Plan],
                        least_recompute: Callable[[], int]) -> Plan:
    """The plan of least time (module docstring), as ``optimal``'s plan with ``params``:
    ``recompute_only()`` plans without transfers, ``least_recompute()`` is the least budget
    it meets (bytes)."""
    try:
        alone: Plan | None = recompute_only()
    except BudgetError as error:
        alone, refusal = None, error
    best: tuple[float, int, Plan] | None = None
    if alone is not None:
        best = (plan_time(alone, costs, bandwidth), peak_bytes(alone, costs), alone)
    if store_budget_bytes is not None:
        try:
            _, blocks = solve_blocks(BlockProblem(costs, bandwidth), store_budget_bytes)
            plan = blocks_plan(costs, blocks).build("optimal")
            members = [(plan_time(plan, costs, bandwidth), peak_bytes(plan, costs), plan)]
        except BudgetError:
            members = []
        limit = float("inf")
    else:
        members = [(plan_time(plan, costs, bandwidth), peak, plan)
                   for _, peak, plan in family(costs)]
        limit = budget_bytes
    for member in members:
        if member[1] <= limit and (best is None or _rank(member) < _rank(best)):
            best = member
    if best is None:
        if store_budget_bytes is not None or not members:
            raise refusal
        least = min([least_recompute()] + [member[1] for member in members])
        raise BudgetError(f"policy 'optimal': budget_bytes={budget_bytes} is below the minimum "
                          f"of {least:,} bytes, the least whole activation peak of its plans on "
                          f"this chain at bandwidth {bandwidth:g} (checkpoints, held tapes, the "
                          f"working value and the cotangents)")
    return replace(best[2], policy="optimal", params=tuple(sorted(params.items())), slots=None)
