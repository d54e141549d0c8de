"""Small helpers shared by several test files (independent of the code under test)."""
from __future__ import annotations

from collections.abc import Iterator

from checkpoint_ad.chains.plans import Action, Plan

TINY_EXPERIMENT = """\
workload = "chain"
repeats = 1
sizes = { width = 40 }
grid = { n = [3, 5] }
policies = [{ policy = "store_all" }, { policy = "revolve", params = { slots = 2 } }]
"""


def stored_after_each_step(plan: Plan) -> Iterator[tuple[set[int], set[int]]]:
    """The stored checkpoints and held tapes after every step, walked apart from the checker."""
    checkpoints, held = {0}, set()
    for step in plan:
        if step.action is Action.SAVE:
            checkpoints.add(step.stage)
        elif step.action is Action.FREE:
            checkpoints.discard(step.stage)
        elif step.action is Action.TAPE:
            held.add(step.stage)
        elif step.action is Action.BACKWARD:
            held.discard(step.stage)
        yield checkpoints, held
