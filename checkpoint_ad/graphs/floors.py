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
import time

import numpy as np

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
    if not math.isfinite(budget):
        return costs.total_cost
    return costs.total_cost + max(knapsack_terms(costs, budget), default=0.0)


def knapsack_terms(costs: GraphCosts, budget: float,
                   deadline: float = math.inf) -> list[float]:
    """Per backward step j, the fractional knapsack's least cost of the later residuals left
    out of the room at step j (0 where no plan fits the step, and for the steps not reached
    by ``deadline``)."""
    order, sizes = costs.backward_order, costs.sizes
    at_step = cotangent_bytes(costs)
    ranked = sorted(costs.op_nodes, key=lambda v: costs.costs[v] / max(sizes[v], 1),
                    reverse=True)  # the fractional knapsack keeps the most cost per byte first
    later = [False] * len(costs)  # v is in N_j: an op residual of a step after j
    terms = [0.0] * len(order)
    for done, j in enumerate(reversed(range(len(order)))):
        if done % 64 == 63 and time.perf_counter() > deadline:
            break
        here = set(costs.op_residuals[order[j]])
        room = budget - at_step[j] - sum(sizes[r] for r in here)
        if room >= 0:  # else no plan fits this step at all; the budget is refused elsewhere
            wanted = [v for v in ranked if later[v] and v not in here]
            terms[j] = _unkept_cost(costs, wanted, room)
        for r in here:
            later[r] = True
    return terms


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


# -- the closure bound: the retention bound with what recomputation itself needs -----------------

CLOSURE_STEPS = 12  # backward steps whose LP is solved: the knapsack's best, then spread ones
CLOSURE_OPS_LIMIT = 1_500  # the closure bound's knapsacks take about 0.6 s at 1,500 ops


def closure_bound(costs: GraphCosts, budget: float, deadline: float = math.inf) -> float:
    """The retention bound strengthened by what recomputing needs, valid for every plan.

    At backward step j, let K be the values resident then (beside step j's residuals, within
    the room of the retention bound) and R the values computed after step j. Every residual
    of a later step is in K or R; a value in R has each op parent in K or R (at its first
    computation after step j the parent is resident: computed after step j, or resident ever
    since); every plan costs at least ``total + cost(R)``. The linear relaxation of the least
    cost(R) (HiGHS) is no larger than the least cost(R), so ``total`` plus it is a bound. It
    is solved for :data:`CLOSURE_STEPS` steps (those whose knapsack term is largest, and steps
    spread over the order) until ``deadline``. With whole-number op costs every plan's cost is
    a whole number, so the bound is rounded up. Never below :func:`retention_bound`, except on
    graphs of more than :data:`CLOSURE_OPS_LIMIT` ops, whose knapsacks (quadratic time) also
    stop at ``deadline``: each step's term bounds every plan alone, so those not reached are
    left out."""
    if not math.isfinite(budget):
        return costs.total_cost
    large = len(costs.op_nodes) > CLOSURE_OPS_LIMIT
    terms = knapsack_terms(costs, budget, deadline if large else math.inf)
    best = costs.total_cost + max(terms, default=0.0)
    at_step = cotangent_bytes(costs)
    for j in _closure_steps(terms):
        if time.perf_counter() > deadline:
            break
        best = max(best, costs.total_cost + _closure_lp(costs, budget - at_step[j], j))
    if all(float(costs.costs[v]).is_integer() for v in costs.op_nodes):
        best = math.ceil(best - 1e-6)
    return best


def _closure_steps(terms: list[float]) -> list[int]:
    """The backward steps to solve the closure LP at: half of them the ones whose knapsack
    term is largest, half spread evenly over the order."""
    count = len(terms)
    scored = sorted(range(count), key=lambda j: -terms[j])
    spread = [round(k * (count - 1) / max(CLOSURE_STEPS // 2 - 1, 1))
              for k in range(CLOSURE_STEPS // 2)]
    return list(dict.fromkeys(scored[:CLOSURE_STEPS // 2] + spread))


def _later_residuals(costs: GraphCosts, j: int) -> tuple[set[int], set[int], int]:
    """(N_j: the op residuals of the steps after j that are not step j's, step j's op
    residuals, their bytes)."""
    order = costs.backward_order
    here = set(costs.op_residuals[order[j]])
    later = {r for b in order[j + 1:] for r in costs.op_residuals[b]} - here
    return later, here, sum(costs.sizes[r] for r in here)


def _closure_lp(costs: GraphCosts, values_room: float, j: int) -> float:
    """The LP of :func:`closure_bound` at backward step j, where resident values may take
    ``values_room`` bytes: the least cost(R), fractional."""
    later, here, held = _later_residuals(costs, j)
    room = values_room - held
    if room < 0 or not later:
        return 0.0
    nodes = _ancestors(costs, later) - here  # values that can matter; step j's are kept free
    index = {v: i for i, v in enumerate(sorted(nodes))}
    n = len(index)  # columns: k_v (kept) 0..n-1, r_v (recomputed) n..2n-1
    rows, cols, data, upper = [], [], [], []
    for v in later:  # k_v + r_v >= 1, as -k_v - r_v <= -1
        rows += [len(upper)] * 2; cols += [index[v], n + index[v]]; data += [-1.0, -1.0]
        upper.append(-1.0)
    for v in nodes:  # r_v <= k_p + r_p for each op parent p that is not kept free
        for p in costs.op_parents[v]:
            if p in here:
                continue
            rows += [len(upper)] * 3; cols += [n + index[v], index[p], n + index[p]]
            data += [1.0, -1.0, -1.0]
            upper.append(0.0)
    rows += [len(upper)] * n; cols += list(range(n))
    data += [float(costs.sizes[v]) for v in sorted(nodes)]
    upper.append(float(room))
    objective = np.zeros(2 * n)
    objective[n:] = [costs.costs[v] for v in sorted(nodes)]
    from scipy.optimize import linprog  # imported when used: it takes a second
    from scipy.sparse import coo_array
    matrix = coo_array((data, (rows, cols)), shape=(len(upper), 2 * n)).tocsr()
    result = linprog(objective, A_ub=matrix, b_ub=upper, bounds=(0, 1), method="highs")
    # HiGHS's optimum of a minimisation: its value less a tolerance stays a bound
    return max(0.0, result.fun - 1e-6 * max(1.0, abs(result.fun))) if result.status == 0 else 0.0


def _ancestors(costs: GraphCosts, nodes: set[int]) -> set[int]:
    """``nodes`` and their op ancestors."""
    found, stack = set(), list(nodes)
    while stack:
        v = stack.pop()
        if v not in found:
            found.add(v)
            stack.extend(costs.op_parents[v])
    return found
