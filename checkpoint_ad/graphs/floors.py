"""Combinatorial lower bounds that hold for **every** plan of docs/graph_model.md: the least
peak any plan needs, and a retention bound on the cost under a byte budget.

**Retention bound.** Every op lies on a path to the output and backward(output) needs the
output resident, so every op is computed at least once before the first backward step: cost
``total`` (``costs.total_cost``). Take any backward step j. At that moment the resident values
hold at most ``A_j = budget - (cotangent bytes live at step j, its new ones included)`` bytes,
and they include the op residuals of step j. Let ``N_j`` be the op residuals of the steps after
j: each must be resident at its step, so each that is not resident at step j is computed again
after step j, a computation beyond the first ones. So every plan costs at least ``total +
min cost(N_j \\ S)`` over the sets S of values that fit ``A_j`` beside step j's residuals. The
minimum is a knapsack (keep the values of most cost in the room); its fractional relaxation,
solved greedily by cost per byte, is no larger, so ``total + max_j (cost(N_j) - fractional
knapsack_j)`` is a valid bound. Values that are residuals of step j are resident anyway and
cost nothing to keep.
"""
from __future__ import annotations

import math

from .costs import GraphCosts


def cotangent_bytes(costs: GraphCosts) -> list[int]:
    """Bytes of cotangents live at each backward step of ``costs.backward_order``, the seed
    and the step's new cotangents included (the step's peak is this plus the resident
    values)."""
    sizes, live, found = costs.sizes, set(), []
    for b in costs.backward_order:
        seed = sizes[b] if b == costs.output else 0
        fresh = costs.new_cotangents[b]
        found.append(sum(sizes[p] for p in live) + seed + sum(sizes[p] for p in fresh))
        live.discard(b)
        live.update(fresh)
    return found


def least_peak_floor(costs: GraphCosts) -> int:
    """A lower bound of every plan's peak, in bytes: the forward computation of each op holds
    its op parents and itself (every op is computed before the first backward step, when no
    cotangent exists yet), and each backward step holds its op residuals and the cotangents
    live then."""
    sizes = costs.sizes
    computing = max(sizes[v] + sum(sizes[p] for p in costs.op_parents[v]) for v in costs.op_nodes)
    stepping = max((sum(sizes[r] for r in costs.op_residuals[b]) + at
                    for b, at in zip(costs.backward_order, cotangent_bytes(costs))), default=0)
    return max(computing, stepping)


def retention_bound(costs: GraphCosts, budget: float) -> float:
    """The retention bound of the module docstring on the cost of every plan whose peak is at
    most ``budget`` bytes (``math.inf``: ``costs.total_cost``). Time O(V^2) for V ops."""
    total = costs.total_cost
    if not math.isfinite(budget):
        return total
    order, sizes = costs.backward_order, costs.sizes
    at_step = cotangent_bytes(costs)
    ranked = sorted(costs.op_nodes, key=lambda v: costs.costs[v] / max(sizes[v], 1),
                    reverse=True)  # the fractional knapsack keeps the most cost per byte first
    later = [False] * len(costs)  # v is in N_j: an op residual of a step after j
    best = 0.0
    for j in reversed(range(len(order))):
        here = set(costs.op_residuals[order[j]])
        room = budget - at_step[j] - sum(sizes[r] for r in here)
        if room >= 0:  # else no plan fits this step at all; the budget is refused elsewhere
            wanted = [v for v in ranked if later[v] and v not in here]
            best = max(best, _unkept_cost(costs, wanted, room))
        for r in here:
            later[r] = True
    return total + best


def _unkept_cost(costs: GraphCosts, ranked: list[int], room: float) -> float:
    """The least cost of the values of ``ranked`` (most cost per byte first) left out of
    ``room`` bytes, by the fractional knapsack (an under-estimate of the whole-value one)."""
    left = 0.0
    for v in ranked:
        size = costs.sizes[v]
        kept = 1.0 if size <= room else room / size
        room -= kept * size
        left += (1 - kept) * costs.costs[v]
    return left
