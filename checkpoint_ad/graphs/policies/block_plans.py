"""Plans of one block's graph, from which :mod:`.block_options` takes the block's options:
store_all, tapes with fewer values kept, and the cheapest plans at several budgets (exact search,
or ``dtr``, online and offline ``next_use``, on blocks out of its reach). Budgets and peaks in
bytes, as in docs/graph_model.md. Identical blocks (a residual stack's) are planned once.
"""
from __future__ import annotations

import math
import time

from ...errors import PolicyError, TimeLimitError
from ..costs import GraphCosts
from ..plans import GraphStep
from . import exact
from .fixed import plan_store_all
from .steps import keep_and_recompute, recompute

BUDGETS = 8  # block budgets of exact search, from the block's least peak to its store-all peak
DTR_BUDGETS = 16  # block budgets of dtr, from 0 to the block's store-all peak
DROPS = 16  # tapes of a block with fewer values kept, from one value dropped to all
CACHE_SIZE = 256  # block graphs whose plans are remembered (identical blocks repeat)
EXACT_BLOCK_OPS = 24  # larger blocks take their options from dtr
BLOCK_MAX_STATES = 5_000  # per exact search of a block (no time limit: deterministic)


_SUB_PLANS: dict[tuple, list[list[GraphStep]]] = {}


def block_plans(graph: GraphCosts, deadline: float = math.inf) -> list[list[GraphStep]]:
    """The plans of a block's graph (:func:`_sub_plans`), remembered by the graph's identity;
    TimeLimitError (and nothing remembered) when they are not all found by ``deadline`` (a
    ``time.perf_counter()`` value)."""
    key = graph.key()
    if key not in _SUB_PLANS:
        plans = _sub_plans(graph, deadline)
        if time.perf_counter() > deadline:
            raise TimeLimitError("the time limit ran out while planning a block")
        if len(_SUB_PLANS) >= CACHE_SIZE:
            _SUB_PLANS.clear()
        _SUB_PLANS[key] = plans
    return _SUB_PLANS[key]


def _sub_plans(graph: GraphCosts, deadline: float) -> list[list[GraphStep]]:
    """Plans of a block's graph: store_all, smaller tapes, and the cheapest at several budgets
    by exact search (a budget whose search runs out of its limits is skipped), or by dtr where
    exact search cannot even find the block's least peak (both heuristics); the searches stop
    at ``deadline``."""
    from .dtr import plan_dtr  # dtr validates budgets with optimal, which imports this module
    store_all = plan_store_all(graph)
    plans = [list(store_all.steps)] + _smaller_tapes(graph, deadline)
    least = _least_peak(graph, deadline)
    for budget in _budgets(least or 0, store_all.peak_bytes, BUDGETS if least else DTR_BUDGETS):
        for make in ([lambda: exact.search(graph, budget, BLOCK_MAX_STATES,
                                           deadline=deadline)[0]] if least else
                     [lambda: plan_dtr(graph, budget_bytes=budget,
                                       time_limit=_seconds_to(deadline)).steps,
                      lambda: plan_dtr(graph, budget_bytes=budget, heuristic="next_use",
                                       time_limit=_seconds_to(deadline)).steps]):
            try:
                plans.append(list(make()))
            except PolicyError:  # a search past its limits, or dtr below its reach
                pass
    return plans


def _seconds_to(deadline: float) -> float | None:
    """The seconds left before ``deadline`` (None: no deadline; a tiny positive number once
    it has passed, so that a planner given them stops at once)."""
    return None if deadline == math.inf else max(deadline - time.perf_counter(), 1e-9)


def _least_peak(graph: GraphCosts, deadline: float) -> int | None:
    """The least peak of the block's plans by exact search; None if out of its reach."""
    if len(graph.op_nodes) > EXACT_BLOCK_OPS:
        return None
    try:
        return exact.search(graph, math.inf, BLOCK_MAX_STATES, minimise_peak=True,
                            deadline=deadline)[2]
    except exact.SearchLimit:
        return None


def _smaller_tapes(graph: GraphCosts, deadline: float = math.inf) -> list[list[GraphStep]]:
    """Plans that keep less than store_all for the backward steps after the first: the values
    those steps read, dropped in order (the cheapest to recompute per byte first; up to
    :data:`DROPS` prefixes), each dropped set recomputed all at once after the first backward
    step, or (on blocks small enough for exact search) before each step that reads it. None
    once ``deadline`` passes (pricing a block of hundreds of ops takes a second)."""
    first, *rest = graph.backward_order
    read = sorted({r for b in rest for r in graph.op_residuals[b]} - {graph.output})
    price = {}
    for count, node in enumerate(read):
        if count % 64 == 63 and time.perf_counter() > deadline:
            return []
        price[node] = (sum(graph.costs[i] for i in recompute(graph, [node], set())) /
                       max(graph.sizes[node], 1))
    dropped = sorted(read, key=lambda node: price[node])
    plans = []
    for count in _budgets(1, len(dropped), DROPS) if dropped else ():
        if time.perf_counter() > deadline:
            return plans
        kept = set(read) - set(dropped[:count])
        plans.append(keep_and_recompute(graph, kept, [(first,), tuple(rest)]))
        if len(graph.op_nodes) <= EXACT_BLOCK_OPS:
            plans.append(keep_and_recompute(graph, kept, [(first,)] + [(b,) for b in rest]))
    return plans


def _budgets(low: int, high: int, count: int) -> list[int]:
    """Up to ``count`` whole budgets spread from ``low`` to ``high`` (both included)."""
    return sorted({round(low + (high - low) * k / (count - 1)) for k in range(count)})
