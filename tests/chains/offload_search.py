"""An exhaustive search over the block family of docs/chain_offload.md, apart from the DP:
every block sequence of a small chain, its store peak walked step by step from the plan (an
oracle apart from the DP's accounting), its time and whole peak from the replay."""
from __future__ import annotations

from collections.abc import Iterator

from checkpoint_ad.chains.actions import STEP_ENDS, Action
from checkpoint_ad.chains.costs import ChainCosts
from checkpoint_ad.chains.plans import Plan
from checkpoint_ad.chains.policies.offload_dp import (KEEP, MOVE, MOVED_SEGMENT, SEGMENT, Block,
                                                      blocks_plan)
from checkpoint_ad.chains.replay import peak_bytes, plan_time


def sequences(n: int, moves: bool) -> Iterator[list[Block]]:
    """Every block sequence of an n-stage chain (with moves, or without any transfer)."""
    pending = [(0, None, [])]
    while pending:
        i, previous, blocks = pending.pop()
        if i == n:
            yield blocks
            continue
        t = i + 1
        kinds = [KEEP] + ([MOVE] if moves and t < n - 1 else [])
        for kind in kinds:
            pending.append((t, kind, blocks + [Block(kind, t, t)]))
        if previous == MOVE:  # a segment restarting from the moved tape, not ending the chain
            for k in range(t, n):
                pending.append((k, SEGMENT, blocks + [Block(SEGMENT, t, k)]))
            continue
        for k in range(t, n + 1):
            pending.append((k, SEGMENT, blocks + [Block(SEGMENT, t, k)]))
            if moves and previous in (SEGMENT, MOVED_SEGMENT) and k < n:
                pending.append((k, MOVED_SEGMENT, blocks + [Block(MOVED_SEGMENT, t, k)]))


def store_peak(plan: Plan, costs: ChainCosts) -> int:
    """The most bytes of checkpoints and held tapes on the device at once (arriving and leaving
    ones included), each counted whole: x_t takes a_t, a held tape b_t."""
    checkpoints, tapes, leaving = {0}, set(), set()

    def stored() -> int:
        return (sum(costs.state_bytes[j] for j in checkpoints)
                + sum(costs.tape_bytes[t - 1] for t in tapes))
    peak = stored()
    for step in plan:
        action, t = step.action, step.stage
        if action is Action.SAVE:
            checkpoints.add(t)
        elif action is Action.FREE:
            checkpoints.discard(t)
        elif action is Action.TAPE:
            tapes.add(t)
        elif action is Action.OFFLOAD:
            leaving.add(t)
        elif action is Action.PREFETCH:
            (tapes if t in on_host_tapes(plan, t) else checkpoints).add(t)
        peak = max(peak, stored())
        if action is Action.BACKWARD:
            tapes.discard(t)
        if action in STEP_ENDS:
            for gone in leaving:
                checkpoints.discard(gone)
                tapes.discard(gone)
            leaving.clear()
    return peak


def on_host_tapes(plan: Plan, stage: int) -> set[int]:
    """{stage} when the item of ``stage`` that is offloaded is a held tape, else empty."""
    taped = False
    for step in plan:
        if step.stage == stage and step.action is Action.TAPE:
            taped = True
        if step.stage == stage and step.action is Action.OFFLOAD:
            return {stage} if taped else set()
    return set()


def least_time(costs: ChainCosts, bandwidth: float | None, *, store_budget: float | None = None,
               budget_bytes: float | None = None) -> float | None:
    """The least time of any block sequence within the budget (None if none fits)."""
    best = None
    for blocks in sequences(costs.n, bandwidth is not None):
        plan = blocks_plan(costs, blocks).build("search")
        if store_budget is not None and store_peak(plan, costs) > store_budget:
            continue
        if budget_bytes is not None and peak_bytes(plan, costs) > budget_bytes:
            continue
        time = plan_time(plan, costs, bandwidth)
        best = time if best is None else min(best, time)
    return best
