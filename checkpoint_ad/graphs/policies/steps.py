"""Building blocks the graph planners share: recomputation of what a backward step reads,
and freeing each value after its last use."""
from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..costs import GraphCosts
from ..plans import GraphAction, GraphStep

COMPUTE, FREE, BACKWARD = GraphAction.COMPUTE, GraphAction.FREE, GraphAction.BACKWARD


def recompute(costs: GraphCosts, targets: Iterable[int], resident: set[int]) -> list[int]:
    """The ops to compute, in index order, so that every target is resident: the targets and
    their op ancestors, stopping at ``resident`` values (inputs are always resident)."""
    needed: set[int] = set()
    stack = [t for t in targets if t not in resident]
    while stack:
        node = stack.pop()
        if node in needed:
            continue
        needed.add(node)
        stack.extend(p for p in costs.op_parents[node] if p not in resident and p not in needed)
    return sorted(needed)


def free_after_last_use(costs: GraphCosts, steps: Iterable[GraphStep]) -> list[GraphStep]:
    """``steps`` with a ``free`` inserted right after the last use of every value the steps
    leave resident (a use: the computation of a consumer, or a backward step that reads it).

    A value computed again while still resident is freed after its last use before that.
    """
    steps = list(steps)
    last_use: dict[int, int] = {}  # resident value -> position of its last use so far
    frees_after: dict[int, list[int]] = {}
    for position, (action, node) in enumerate(steps):
        if action is COMPUTE:
            for parent in costs.op_parents[node]:
                last_use[parent] = position
            if node in last_use:
                frees_after.setdefault(last_use.pop(node), []).append(node)
            last_use[node] = position
        elif action is FREE:
            last_use.pop(node, None)
        else:
            for residual in costs.op_residuals[node]:
                last_use[residual] = position
    for node, position in last_use.items():
        frees_after.setdefault(position, []).append(node)
    out: list[GraphStep] = []
    for position, step in enumerate(steps):
        out.append(step)
        out.extend(GraphStep(FREE, node) for node in frees_after.get(position, ()))
    return out


def keep_and_recompute(costs: GraphCosts, kept: set[int],
                       groups: Sequence[Sequence[int]] | None = None) -> list[GraphStep]:
    """One forward pass keeping the values in ``kept`` (the output always), then, before every
    backward step, the recomputation of the residuals that are not kept from the kept values
    and the inputs. Every value is freed right after its last use.

    ``groups`` splits ``costs.backward_order`` into consecutive runs (default: one run per
    step); the residuals of a whole run are recomputed, once each, before its first step and
    stay until their last use in the run (store-all within a run, as in segment checkpointing).
    """
    kept = set(kept) | {costs.output}
    steps = [GraphStep(COMPUTE, i) for i in costs.op_nodes]
    # a value that is not kept must not live past the forward pass: it is recomputed
    steps = _free_unkept_after_forward(costs, steps, kept)
    runs = groups if groups is not None else [(b,) for b in costs.backward_order]
    for run in runs:
        targets = [r for b in run for r in costs.op_residuals[b]]
        steps += [GraphStep(COMPUTE, i) for i in recompute(costs, targets, kept)]
        steps += [GraphStep(BACKWARD, b) for b in run]
    return free_after_last_use(costs, steps)


def _free_unkept_after_forward(costs: GraphCosts, steps: list[GraphStep],
                               kept: set[int]) -> list[GraphStep]:
    last_consumer = {i: max(costs.consumers[i]) for i in costs.op_nodes if i not in kept}
    frees_after: dict[int, list[int]] = {}
    for node, consumer in last_consumer.items():
        frees_after.setdefault(consumer, []).append(node)
    out: list[GraphStep] = []
    for step in steps:
        out.append(step)
        out.extend(GraphStep(FREE, node) for node in frees_after.get(step.node, ()))
    return out
