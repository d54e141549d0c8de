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

**Coarse windows.** Its variables are ops x backward steps: past about 100 ops HiGHS's root
node does not finish in a minute. Take instead boundary steps ``0 = s_0 < s_1 < ... < s_G``
(the last step included); group window i is everything after step ``s_{i-1}`` and before step
``s_i`` (the backward steps in between and the windows around them). With ``k[v, s]`` for the
boundary steps and ``c[v, i]`` = 1 when v is computed at least once in group window i, every
plan satisfies rows 1 and 2 at the boundary steps, and

3. ``k[v, s_i] <= k[v, s_{i-1}] + c[v, i]``;
4. ``c[v, i] <= k[p, s_{i-1}] + c[p, i]`` for each op parent p of v;
5'. ``k[r, s_{i-1}] + c[r, i] >= 1`` for each op residual r of a backward step t strictly
   between ``s_{i-1}`` and ``s_i``;
6. ``c[v, i] = 0`` when ``sizes[v]`` and v's op parents do not fit beside the fewest cotangent
   bytes live in any window between steps ``s_{i-1}`` and ``s_i``,

by the argument of rows 3-5: a value is resident only after a computation, and a backward
step computes nothing, so a value resident at some moment of group window i (at v's first
computation there, or at step t, or at step ``s_i``) and not computed in it before then has
been resident since step ``s_{i-1}``; each computation in group window i happens in one of
its windows, beside at least the fewest cotangent bytes. Group windows do not overlap, so a
plan costs at least ``total + sum(costs[v] * c[v, i])``, and the least such sum over 0-1
solutions bounds every plan. With every step a boundary this is the program above; a
grouping's optimum is never above that of a grouping refining it (a solution of the finer
one gives one of the coarser, ``c`` the largest over the merged windows, no dearer), but
with few groups HiGHS solves the program itself (its root node, often to the end, in under
a second at 200 ops), where the fine program's root node is unfinished. Which boundaries
pay is hard to foretell (on the 202-op U-Net at 50%: 301 with 4 groups spread evenly, 324
with 5, 316 with 8), so :func:`window_bound` tries 2, 3, ... groups spread evenly, each with
the step of the largest retention term of :mod:`.floors` added as a boundary (its group
window then starts where that bound looks), and keeps the largest: each bounds every plan.
"""
from __future__ import annotations

import math
import time

import numpy as np

from .costs import GraphCosts
from .floors import knapsack_terms, cotangent_bytes

WINDOW_OPS_LIMIT = 100  # past this the fine windows' root node takes too long (133 ops: 15 s)
GROUPED_OPS_LIMIT = 1_500  # past this even two groups are slow to build and solve
MOST_GROUPS = 16  # the coarse windows: 2, 3, ... up to this many groups, while time is left
STALE = 3  # groupings in a row that raise no bound: the scan stops
ROOT_ONLY = 1  # branch-and-bound nodes HiGHS explores by default: the root, with its cuts


def window_bound(costs: GraphCosts, budget: float, deadline: float = math.inf,
                 nodes: int | None = ROOT_ONLY, enough: float = math.inf,
                 known: float = -math.inf) -> float:
    """The window bound of the module docstring on the cost of every plan within ``budget``
    bytes: the larger of the fine windows (every backward step a boundary; graphs of at most
    :data:`WINDOW_OPS_LIMIT` ops), solved first, and the coarse windows
    (:func:`grouped_boundaries` of 2 to :data:`MOST_GROUPS` groups, fewer first; graphs of
    at most :data:`GROUPED_OPS_LIMIT` ops) in the time left, each 0-1 program solved by HiGHS until ``deadline`` (a ``time.perf_counter()``
    value) and ``nodes`` branch-and-bound nodes (None: no limit; by default the root node
    alone, so the bound does not depend on the clock when the deadline is not reached), and
    only until the bound reaches ``enough`` (a plan's cost: nothing above it is needed) or
    :data:`STALE` groupings in a row raise neither it nor ``known`` (a bound known already,
    such as the closure bound: then more groups seldom pay).
    ``costs.total_cost`` when the budget is unlimited, no plan fits a backward step, or no
    bound came in time."""
    total = costs.total_cost
    ops = len(costs.op_nodes)
    if not math.isfinite(budget) or ops > GROUPED_OPS_LIMIT or time.perf_counter() >= deadline:
        return total
    steps, last = len(costs.backward_order), _last_steps(costs)
    best, tried = total, set()
    if ops <= WINDOW_OPS_LIMIT:  # the fine windows first: below 100 ops they pay most
        found = _solved(costs, budget, list(range(steps)), last, deadline, nodes)
        if found is None:  # no plan fits some backward step (refused elsewhere)
            return total
        best, tried = found, {tuple(range(steps))}
        if best >= enough:
            return best
    found = _scan(costs, budget, last, deadline, nodes, enough, max(known, best), tried)
    return total if found is None else max(best, found)


def _scan(costs: GraphCosts, budget: float, last: list[int], deadline: float,
          nodes: int | None, enough: float, known: float,
          tried: set[tuple[int, ...]]) -> float | None:
    """The largest bound of the coarse windows of 2, 3, ... groups (see
    :func:`window_bound`) but the groupings in ``tried``; None when no plan fits some
    boundary step."""
    steps, best, stale = len(costs.backward_order), costs.total_cost, 0
    pressed = _pressed_step(costs, budget, deadline)
    for groups in range(2, min(MOST_GROUPS, steps - 1) + 1):
        bounds = tuple(grouped_boundaries(steps, groups, pressed))
        if best >= enough or stale >= STALE or time.perf_counter() >= deadline:
            break
        if bounds in tried:
            continue
        tried.add(bounds)
        found = _solved(costs, budget, list(bounds), last, deadline, nodes)
        if found is None:
            return None
        stale = 0 if found > max(best, known) else stale + 1
        best = max(best, found)
    return best


def grouped_boundaries(steps: int, groups: int, pressed: int | None = None) -> list[int]:
    """The boundary steps of ``groups`` coarse windows over ``steps`` backward steps: steps
    spread evenly from the first to the last, and ``pressed`` (the step of most memory
    pressure, whose window then starts where the closure bound looks), in order."""
    spread = {round(k * (steps - 1) / groups) for k in range(groups + 1)}
    return sorted(spread | ({pressed} if pressed is not None else set()))


def _pressed_step(costs: GraphCosts, budget: float, deadline: float) -> int | None:
    """The backward step whose retention term (:mod:`.floors`) is largest; None when none
    is positive."""
    terms = knapsack_terms(costs, budget, deadline)
    best = max(range(len(terms)), key=lambda j: terms[j], default=None)
    return best if best is not None and terms[best] > 0 else None


def grouped_window_bound(costs: GraphCosts, budget: float, bounds: list[int],
                         deadline: float = math.inf, nodes: int | None = None) -> float:
    """The bound of the windows between the boundary steps ``bounds`` (indices in
    ``costs.backward_order``, the first and the last included, in order) alone, its 0-1
    program solved by HiGHS until ``deadline`` and ``nodes`` nodes (None: to the end);
    ``costs.total_cost`` when no plan fits some boundary step or no bound came in time."""
    found = _solved(costs, budget, list(bounds), _last_steps(costs), deadline, nodes)
    return costs.total_cost if found is None else found


def _solved(costs: GraphCosts, budget: float, bounds: list[int], last: list[int],
            deadline: float, nodes: int | None) -> float | None:
    """``total`` plus HiGHS's dual bound of the windows between the boundary steps
    ``bounds``, rounded up with whole-number op costs; ``total`` when time ran out or HiGHS
    gave no bound; None when no plan fits some boundary step."""
    total = costs.total_cost
    built = _relaxation(costs, budget, bounds, last)
    if built is None:
        return None
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
        return None
    # the dual bound, not the objective: HiGHS stops at a small relative gap
    value = getattr(result, "mip_dual_bound", None)
    if value is None or not math.isfinite(value):
        return total
    # HiGHS's bound of a minimisation, less a tolerance, stays a bound
    best = total + max(0.0, float(value) - 1e-6 * max(1.0, abs(float(value))))
    if all(float(costs.costs[v]).is_integer() for v in costs.op_nodes):
        best = math.ceil(best - 1e-6)
    return best


def _last_steps(costs: GraphCosts) -> list[int]:
    """Per node, the last backward step (index in ``costs.backward_order``) that reads it or
    one of its op descendants as an op residual; -1 for none. An op is **relevant** at step
    j (has variables there) when this is j or later."""
    last = [-1] * len(costs)
    for j, b in enumerate(costs.backward_order):
        for r in costs.op_residuals[b]:
            last[r] = max(last[r], j)
    for v in reversed(costs.op_nodes):  # parents come before their children
        for p in costs.op_parents[v]:
            last[p] = max(last[p], last[v])
    return last


def _window_cotangents(costs: GraphCosts) -> list[int]:
    """Bytes of cotangents live in each window j >= 1 (after step j-1, before step j); 0 for
    window 0 (none exists before the first backward step)."""
    sizes, live, found = costs.sizes, set(), [0]
    for b in costs.backward_order[:-1]:
        live.discard(b)
        live.update(costs.new_cotangents[b])
        found.append(sum(sizes[p] for p in live))
    return found


def _relaxation(costs: GraphCosts, budget: float, bounds: list[int], last: list[int]):
    """(objective, sparse rows, their upper sides, variable lower and upper bounds) of rows
    2-4 and 5' over the boundary steps ``bounds`` (rows 1 and 6 as variable bounds); None
    when no plan fits some boundary step."""
    order, sizes = costs.backward_order, costs.sizes
    at_step, between = cotangent_bytes(costs), _window_cotangents(costs)
    index: dict[tuple[str, int, int], int] = {}
    for s in bounds:
        for v in costs.op_nodes:
            if last[v] >= s:
                index["k", v, s] = len(index)
    for i in range(1, len(bounds)):
        for v in costs.op_nodes:
            if last[v] > bounds[i - 1]:
                index["c", v, i] = len(index)
    objective, low, high = np.zeros(len(index)), np.zeros(len(index)), np.ones(len(index))
    rows: list[list[tuple[int, float]]] = []
    upper: list[float] = []
    for s in bounds:
        room = budget - at_step[s]
        if room < sum(sizes[r] for r in costs.op_residuals[order[s]]):
            return None
        for r in costs.op_residuals[order[s]]:
            low[index["k", r, s]] = 1
        rows.append([(index["k", v, s], float(sizes[v])) for v in costs.op_nodes
                     if last[v] >= s])
        upper.append(float(room))
    for i in range(1, len(bounds)):
        s, e = bounds[i - 1], bounds[i]
        least = min(between[s + 1:e + 1])  # cotangent bytes live at any computation here
        for v in costs.op_nodes:
            if last[v] <= s:
                continue
            c = index["c", v, i]
            objective[c] = costs.costs[v]
            if sizes[v] + sum(sizes[p] for p in costs.op_parents[v]) + least > budget:
                high[c] = 0
            for p in costs.op_parents[v]:  # row 4
                rows.append([(c, 1.0), (index["c", p, i], -1.0), (index["k", p, s], -1.0)])
                upper.append(0.0)
            if last[v] >= e:  # row 3
                rows.append([(index["k", v, e], 1.0), (index["k", v, s], -1.0), (c, -1.0)])
                upper.append(0.0)
        for t in range(s + 1, e):  # row 5'
            for r in costs.op_residuals[order[t]]:
                rows.append([(index["k", r, s], -1.0), (index["c", r, i], -1.0)])
                upper.append(-1.0)
    return objective, _matrix(rows, len(index)), np.array(upper), low, high


def _matrix(rows: list[list[tuple[int, float]]], columns: int):
    """The sparse matrix of ``rows``, each a list of (column, value)."""
    from scipy.sparse import coo_array  # imported when used
    coordinates = [(i, col, value) for i, terms in enumerate(rows) for col, value in terms]
    found, cols, data = zip(*coordinates) if coordinates else ((), (), ())
    return coo_array((data, (found, cols)), shape=(len(rows), columns)).tocsr()
