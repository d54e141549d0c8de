"""The window bound: a lower bound on the cost of **every** plan of docs/graph_model.md under a
byte budget, from a 0-1 relaxation over the windows between backward steps.

The backward steps run in a fixed order ``b_0, b_1, ...`` (``costs.backward_order``); window 0
is everything before step 0 (it computes every op at least once: cost ``total``), window j >= 1
lies between steps j-1 and j. For any plan set, per backward step j and op v,

* ``k[v, j]`` = 1 when v is resident during step j, and, for j >= 1,
* ``c[v, j]`` = 1 when v is computed at least once in window j.

These satisfy, for every plan:

1. ``k[r, j] = 1`` for each op residual r of step j (the output's value at step 0 included);
2. memory at step j: ``sum(sizes[v] * k[v, j]) <= budget - (cotangent bytes live at step j,
   its new ones included)`` (the step's peak counts them all);
3. ``k[v, j] <= k[v, j-1] + c[v, j]``: a value resident at step j and not at step j-1 was
   computed in between;
4. ``c[v, j] <= k[p, j-1] + c[p, j]`` for each op parent p of v: at the first computation of
   v in window j, p is resident, so it was computed earlier in the window or has been
   resident since step j-1 (no computation happens during a backward step);
5. ``c[v, j] = 0`` when ``sizes[v]`` and v's op parents do not fit beside the cotangents live
   in window j (the computation's own peak would exceed the budget).

Each plan costs at least ``total + sum(costs[v] * c[v, j] for j >= 1)`` (a computation is
counted once per window, however often it happens there), so the least value of that sum
over 0-1 solutions of 1-5 bounds every plan, and so does any lower bound of it: HiGHS's MILP
dual bound (its LP relaxation's value at least) within the time given. Only the ops that are
op ancestors of a residual of step j or later get variables at step j (setting the others'
to 0 keeps a solution). It generalises the closure bound of :mod:`.floors`, which looks at one
step at a time (a window bound with the memory rows of one step): here the recomputation of
every window is paid at once. With whole-number op costs the bound is rounded up.
"""
from __future__ import annotations

import math
import time

import numpy as np

from .costs import GraphCosts
from .floors import cotangent_bytes

WINDOW_OPS_LIMIT = 100  # past this its root node takes too long (133 ops: unfinished in 15 s)
ROOT_ONLY = 1  # branch-and-bound nodes HiGHS explores by default: the root, with its cuts


def window_bound(costs: GraphCosts, budget: float, deadline: float = math.inf,
                 nodes: int | None = ROOT_ONLY) -> float:
    """The window bound of the module docstring on the cost of every plan within ``budget``
    bytes, its MILP solved by HiGHS until ``deadline`` (a ``time.perf_counter()`` value) and
    ``nodes`` branch-and-bound nodes (None: no limit; by default the root node alone, whose
    cuts give most of the bound, so the bound does not depend on the clock when the deadline
    is not reached); ``costs.total_cost`` when the budget is unlimited, no plan fits a
    backward step, the graph has more than :data:`WINDOW_OPS_LIMIT` ops, or no bound came in
    time."""
    total = costs.total_cost
    if not math.isfinite(budget) or len(costs.op_nodes) > WINDOW_OPS_LIMIT:
        return total
    built = _relaxation(costs, budget)
    if built is None:
        return total
    objective, matrix, upper, low, high = built
    left = deadline - time.perf_counter()
    if left <= 0 or not np.any(objective):
        return total
    from scipy.optimize import Bounds, LinearConstraint, milp  # imported when used
    options = {"time_limit": left, "disp": False}
    if nodes is not None:
        options["node_limit"] = nodes
    result = milp(objective, constraints=LinearConstraint(matrix, -np.inf, upper),
                  integrality=np.ones(len(objective)), bounds=Bounds(low, high), options=options)
    if result.status == 2:  # no 0-1 solution: no plan fits (refused elsewhere)
        return total
    # the dual bound, not the objective: HiGHS stops at a small relative gap
    value = getattr(result, "mip_dual_bound", None)
    if value is None or not math.isfinite(value):
        return total
    # HiGHS's bound of a minimisation, less a tolerance, stays a bound
    best = total + max(0.0, float(value) - 1e-6 * max(1.0, abs(float(value))))
    if all(float(costs.costs[v]).is_integer() for v in costs.op_nodes):
        best = math.ceil(best - 1e-6)
    return best


def _relevant(costs: GraphCosts) -> list[list[int]]:
    """Per backward step j, the op ancestors (themselves included) of the op residuals of
    step j and the steps after it, in index order."""
    order, found, seen = costs.backward_order, [], set()
    for j in reversed(range(len(order))):
        stack = list(costs.op_residuals[order[j]])
        while stack:
            v = stack.pop()
            if v not in seen:
                seen.add(v)
                stack.extend(costs.op_parents[v])
        found.append(sorted(seen))
    return found[::-1]


def _window_cotangents(costs: GraphCosts) -> list[int]:
    """Bytes of cotangents live in each window j >= 1 (after step j-1, before step j); 0 for
    window 0 (none exists before the first backward step)."""
    sizes, live, found = costs.sizes, set(), [0]
    for b in costs.backward_order[:-1]:
        live.discard(b)
        live.update(costs.new_cotangents[b])
        found.append(sum(sizes[p] for p in live))
    return found


def _relaxation(costs: GraphCosts, budget: float):
    """(objective, sparse rows, their upper sides, variable lower and upper bounds) of rows
    2-4 (row 1 and 5 as variable bounds); None when no plan fits some backward step."""
    order, sizes = costs.backward_order, costs.sizes
    relevant, at_step, between = _relevant(costs), cotangent_bytes(costs), _window_cotangents(costs)
    index: dict[tuple[str, int, int], int] = {}
    for j, nodes in enumerate(relevant):
        for v in nodes:
            index["k", v, j] = len(index)
            if j:
                index["c", v, j] = len(index)
    count = len(index)
    objective, low, high = np.zeros(count), np.zeros(count), np.ones(count)
    rows: list[int] = []
    cols: list[int] = []
    data: list[float] = []
    upper: list[float] = []

    def row(terms: list[tuple[int, float]], bound: float) -> None:
        for col, value in terms:
            rows.append(len(upper)); cols.append(col); data.append(value)
        upper.append(bound)

    for j, nodes in enumerate(relevant):
        room = budget - at_step[j]
        if room < sum(sizes[r] for r in costs.op_residuals[order[j]]):
            return None
        for r in costs.op_residuals[order[j]]:
            low[index["k", r, j]] = 1
        row([(index["k", v, j], float(sizes[v])) for v in nodes], float(room))
        if not j:
            continue
        for v in nodes:
            c = index["c", v, j]
            objective[c] = costs.costs[v]
            if sizes[v] + sum(sizes[p] for p in costs.op_parents[v]) + between[j] > budget:
                high[c] = 0
            row([(index["k", v, j], 1.0), (index["k", v, j - 1], -1.0), (c, -1.0)], 0.0)
            for p in costs.op_parents[v]:
                row([(c, 1.0), (index["c", p, j], -1.0), (index["k", p, j - 1], -1.0)], 0.0)
    from scipy.sparse import coo_array  # imported when used
    matrix = coo_array((data, (rows, cols)), shape=(len(upper), count)).tocsr()
    return objective, matrix, np.array(upper), low, high
