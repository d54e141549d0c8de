"""``chen``: segment checkpointing of Chen et al. 2016 ("Training Deep Nets with Sublinear
Memory Cost", §4) on a graph.

**Candidates.** A checkpoint must split the graph into a sequence of blocks: the ops after it
read nothing computed before it except itself. They are the articulation points (networkx) of
the undirected graph of the ops plus one source node standing for all the inputs, joined to
the ops that read only inputs (inputs are pinned: a weight read by many ops splits nothing),
kept when no op edge jumps over them in index order (the backward order is fixed to
decreasing index, so a segment is a range of indices). The output is never a candidate.

**The plan** for checkpoints c_1 < ... < c_{k-1}: one forward pass keeping only the
checkpoints and the output; then for each segment in reverse, the values its backward steps
read are recomputed from its first checkpoint, kept (store-all within the segment) until their
last use in the segment's backward steps, and freed
(:func:`~.steps.keep_and_recompute` with one group of backward steps per segment).

**Parameters.** ``segments=k`` places k-1 checkpoints among the candidates so that the bytes
of the segments are as even as the candidates allow. ``budget_bytes=B`` runs the paper's
greedy placement (walk the ops in order accumulating their bytes; at a candidate where the
running sum exceeds a threshold b, place a checkpoint and restart the sum) for thresholds b
on a grid (a linear grid over [0, total bytes] and a geometric one around sqrt(total bytes ·
mean op bytes), the paper's sqrt rule), and keeps the cheapest plan whose peak fits (least
cost, then least peak); the even placements of a range of segment counts are tried too.
Not both. Neither: segments = round(sqrt(ops)), at most the
candidates + 1. A graph without candidates can only be planned as one segment (forward, then
store-all recomputation), and ``segments > 1`` says so.
"""
from __future__ import annotations

import math
import time
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from dataclasses import replace

from ...errors import BudgetError, PolicyError, TimeLimitError
from ...plans.registry import Parameter, PolicySpec, budget_value, positive_int, positive_seconds
from .. import solvers
from ..costs import GraphCosts
from ..plans import GraphPlan, GraphStep
from .steps import keep_and_recompute

SOURCE = -1  # one node for all the inputs
GRID = 64  # points of the linear threshold grid; the geometric grid has 2 * 8 + 1


def candidate_checkpoints(costs: GraphCosts) -> tuple[int, ...]:
    """The ops at which the graph splits into a sequence of blocks (see module docstring)."""
    import networkx as nx  # imported when used: the package imports faster
    graph = nx.Graph()
    graph.add_nodes_from(costs.op_nodes)
    graph.add_edges_from((p, i) for i in costs.op_nodes for p in costs.op_parents[i])
    graph.add_edges_from((SOURCE, i) for i in costs.op_nodes if not costs.op_parents[i])
    points = set(nx.articulation_points(graph)) - {SOURCE}
    found, reach = [], 0  # reach: the largest consumer of the ops before the current one
    for node in costs.op_nodes[:-1]:
        if node in points and reach <= node:
            found.append(node)
        reach = max(reach, max(costs.consumers[node]))
    return tuple(found)


def segment_steps(costs: GraphCosts, checkpoints: Sequence[int]) -> list[GraphStep]:
    """The plan's steps for these checkpoints (ascending candidates)."""
    bounds = list(checkpoints) + [costs.output]
    groups: list[list[int]] = []
    current = None
    for b in costs.backward_order:
        segment = bisect_left(bounds, b)
        if segment != current:
            groups.append([])
            current = segment
        groups[-1].append(b)
    return keep_and_recompute(costs, set(checkpoints), groups)


def even_checkpoints(costs: GraphCosts, candidates: Sequence[int],
                     segments: int) -> tuple[int, ...]:
    """``segments - 1`` candidates whose running bytes are nearest to even shares (the
    first of equally near ones; by bisection: the running bytes never decrease)."""
    running, prefix = 0, {}
    for node in costs.op_nodes:
        running += costs.sizes[node]
        prefix[node] = running
    shares = [prefix[c] for c in candidates]
    chosen, low, count = [], 0, len(candidates)
    for j in range(1, segments):
        high = count - (segments - 1 - j)  # leave enough candidates for the rest
        pick = _nearest(shares, running * j / segments, low, high)
        chosen.append(candidates[pick])
        low = pick + 1
    return tuple(chosen)


def _nearest(values: Sequence[int], goal: float, low: int, high: int) -> int:
    """The least k in [low, high) with ``values[k]`` nearest to ``goal`` (values sorted)."""
    above = bisect_left(values, goal, low, high)
    below = bisect_left(values, values[above - 1], low, high) if above > low else None
    if above == high:
        return below
    if below is None or values[above] - goal < goal - values[below]:
        return above
    return below


def greedy_checkpoints(costs: GraphCosts, candidates: Sequence[int],
                       threshold: float) -> tuple[int, ...]:
    """Chen et al.'s greedy placement for threshold b (bytes)."""
    allowed, chosen, running = set(candidates), [], 0
    for node in costs.op_nodes[:-1]:
        running += costs.sizes[node]
        if node in allowed and running > threshold:
            chosen.append(node)
            running = 0
    return tuple(chosen)


def thresholds(costs: GraphCosts) -> list[float]:
    """The grid of thresholds the budget search tries (bytes)."""
    sizes = [costs.sizes[i] for i in costs.op_nodes]
    total = sum(sizes)
    centre = total / math.sqrt(len(sizes))  # sqrt(total bytes * mean op bytes)
    linear = [total * j / GRID for j in range(GRID + 1)]
    geometric = [centre * 2 ** (k / 2) for k in range(-8, 9)]
    return sorted(set(linear + geometric + [math.inf]))


def segment_counts(candidates: Sequence[int]) -> list[int]:
    """The segment counts whose even placements the budget search also tries: all up to
    ``GRID // 4``, then a geometric sample up to one segment per candidate."""
    most = len(candidates) + 1
    geometric = {round(most ** (j / GRID)) for j in range(GRID + 1)}
    return sorted(set(range(1, min(most, GRID // 4) + 1)) | geometric)


def plan_chen(costs: GraphCosts, segments: int | None = None,
              budget_bytes: int | None = None, time_limit: float | None = None) -> GraphPlan:
    """Segment checkpointing with ``segments`` segments, or the cheapest greedy placement
    whose peak fits ``budget_bytes`` (see module docstring), among those tried within
    ``time_limit`` seconds (None: all of them)."""
    seconds = None if time_limit is None else positive_seconds("chen", "time_limit", time_limit)
    if segments is not None and budget_bytes is not None:
        raise PolicyError("policy 'chen': give segments or budget_bytes, not both "
                          f"(got segments={segments!r}, budget_bytes={budget_bytes!r})")
    solvers.load(solvers.NETWORKX)
    started = time.perf_counter()
    candidates = candidate_checkpoints(costs)
    if budget_bytes is not None:
        budget = budget_value("chen", budget_bytes)
        plan = _cheapest_under(costs, candidates, budget, budget_bytes,
                               math.inf if seconds is None else started + seconds, seconds)
    else:
        if segments is None:
            segments = min(len(candidates) + 1, max(1, round(math.sqrt(len(costs.op_nodes)))))
        segments = positive_int("chen", "segments", segments)
        _check_segments(segments, len(candidates))
        plan = _build(costs, even_checkpoints(costs, candidates, segments), {
            "segments": segments})
    return replace(plan, solve_s=time.perf_counter() - started,
                   details=dict(plan.details, candidates=len(candidates)))


def _check_segments(segments: int, available: int) -> None:
    needed = segments - 1
    if needed <= available:
        return
    wanted = f"segments={segments} needs {needed} checkpoint{'s' * (needed != 1)}"
    if not available:
        raise PolicyError(f"policy 'chen': {wanted}, but this graph has no articulation point "
                          "that splits it into blocks; only segments=1 is possible")
    raise PolicyError(f"policy 'chen': {wanted}, but this graph has only {available} "
                      f"candidates (articulation points that split it into blocks); segments "
                      f"must be at most {available + 1}")


def _build(costs: GraphCosts, checkpoints: tuple[int, ...],
           params: dict[str, object]) -> GraphPlan:
    return GraphPlan.build(costs, segment_steps(costs, checkpoints), "chen", params,
                           method="heuristic", details={"checkpoints": checkpoints})


def _cheapest_under(costs: GraphCosts, candidates: Sequence[int], budget: float,
                    budget_bytes: int, deadline: float, seconds: float | None) -> GraphPlan:
    """The cheapest plan of the placements (least cost, then peak, then checkpoints) whose peak
    fits; at ``deadline`` the best found so far (a refusal if none fits yet). Only the best
    plan is held: the placements are many and each plan has about 6 steps per op."""
    tried, best, least = set(), None, math.inf
    for checkpoints in _placements(costs, candidates):
        if checkpoints in tried:
            continue
        tried.add(checkpoints)
        plan = _build(costs, checkpoints, {"budget_bytes": budget_bytes})
        least = min(least, plan.peak_bytes)
        if plan.peak_bytes <= budget and (best is None or _rank(plan) < _rank(best)):
            best = plan
        if time.perf_counter() > deadline:
            break
    if best is not None:
        return best
    if time.perf_counter() > deadline:
        raise TimeLimitError(f"policy 'chen': time_limit={seconds:g} s ran out after "
                             f"{len(tried)} placements, none within budget_bytes={budget_bytes} "
                             f"(their least peak: {least} bytes); raise time_limit")
    raise BudgetError(f"policy 'chen': budget_bytes={budget_bytes} is below the least peak "
                      f"of its plans on this graph ({least} bytes; {len(candidates)} "
                      "candidate checkpoints)")


def _placements(costs: GraphCosts, candidates: Sequence[int]) -> Iterator[tuple[int, ...]]:
    """The placements the budget search tries, in order, made one at a time."""
    for threshold in thresholds(costs):
        yield greedy_checkpoints(costs, candidates, threshold)
    for segments in segment_counts(candidates):
        yield even_checkpoints(costs, candidates, segments)


def _rank(plan: GraphPlan) -> tuple[float, int, int]:
    return plan.cost, plan.peak_bytes, len(plan.details["checkpoints"])


SPEC = PolicySpec("chen", "segment checkpointing at articulation points (Chen et al. 2016): "
                  "keep segment boundaries, recompute one segment at a time", plan_chen,
                  (Parameter("segments", int, None, "number of segments (default: about "
                             "sqrt(ops)); not with budget_bytes"),
                   Parameter("budget_bytes", int, None, "byte budget: the cheapest greedy "
                             "placement whose peak fits; not with segments"),
                   Parameter("time_limit", float, None, "seconds the budget search may take: "
                             "then the cheapest placement found so far that fits; default: "
                             "no limit")))
