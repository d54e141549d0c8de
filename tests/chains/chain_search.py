"""An exhaustive search over every schedule the chain plan checker accepts, written apart from
the planners from the action semantics of plans.py (the oracle of test_optimal.py and
test_certify.py), with the random heterogeneous chains and budgets they search."""
from __future__ import annotations

import heapq
import itertools
import math
import random

from checkpoint_ad.chains.costs import ChainCosts
from checkpoint_ad.chains.plans import Plan
from helpers import stored_after_each_step


def random_chain(rng: random.Random, n: int) -> ChainCosts:
    """Integer costs 1..5 and sizes 1..3, as bytes."""
    return ChainCosts(n, tuple(rng.randint(1, 5) for _ in range(n)),
                      tuple(rng.randint(1, 3) for _ in range(n + 1)),
                      tuple(rng.randint(1, 3) for _ in range(n)))


def exhaustive_cost(costs: ChainCosts, budget: int, state_size: tuple[int, ...],
                    tape_size: tuple[int, ...], tapes: bool = True,
                    persistent: bool = False) -> float:
    """Least forward cost over all valid schedules (Dijkstra over the checker's state space).

    A state is (checkpoints, held tapes, working value or None, next stage to reverse); moves are
    single-stage advances, tapes, turns, backwards, saves, restores and frees, with the
    checker's preconditions; stored size (checkpoints + held tapes, x_0 included) must stay
    within ``budget`` after every move.

    ``persistent`` keeps only schedules that never free a checkpoint x_j while it is still
    needed, i.e. before stage j+1 is reversed or its tape held; freeing x_j right before taping
    stage j+1 from it is one move, as that tape replaces x_j.
    """
    n = costs.n

    def size(checkpoints: frozenset[int], held: frozenset[int]) -> int:
        return sum(state_size[j] for j in checkpoints) + sum(tape_size[t - 1] for t in held)

    def moves(checkpoints, held, working, reverse):
        if working is not None and working < reverse:
            stage, u = working + 1, costs.compute[working]
            yield u, (checkpoints, held, stage, reverse)  # advance
            if tapes and stage not in held:
                yield u, (checkpoints, held | {stage}, stage, reverse)  # tape
            if stage == reverse:
                yield u, (checkpoints, held, None, reverse - 1)  # turn
        if reverse in held:
            yield 0, (checkpoints, held - {reverse}, None, reverse - 1)  # backward
        if (working is not None and working < reverse and working not in checkpoints
                and working not in held):
            yield 0, (checkpoints | {working}, held, working, reverse)  # save
        for stored in checkpoints | held:
            yield 0, (checkpoints, held, stored, reverse)  # restore
        for stored in checkpoints - {0}:
            if not persistent or stored >= reverse or stored + 1 in held:
                yield 0, (checkpoints - {stored}, held, working, reverse)  # free
        if (persistent and tapes and working in checkpoints - {0} and working < reverse
                and working + 1 not in held):
            yield (costs.compute[working],  # free, then tape from the working copy
                   (checkpoints - {working}, held | {working + 1}, working + 1, reverse))

    start = (frozenset({0}), frozenset(), 0, n)
    best = {start: 0.0}
    queue = [(0.0, 0, start)]
    order = itertools.count(1)
    while queue:
        cost, _, state = heapq.heappop(queue)
        checkpoints, held, _, reverse = state
        if reverse == 0 and checkpoints == {0} and not held:
            return cost
        if cost > best[state]:
            continue
        for step_cost, successor in moves(*state):
            if size(successor[0], successor[1]) > budget:
                continue
            total = cost + step_cost
            if total < best.get(successor, math.inf):
                best[successor] = total
                heapq.heappush(queue, (total, next(order), successor))
    return math.inf


def stored_bytes_peak(plan: Plan, costs: ChainCosts) -> int:
    """The largest bytes of checkpoints plus held tapes over the plan, x_0 included."""
    peak = costs.state_bytes[0]
    for checkpoints, held in stored_after_each_step(plan):
        peak = max(peak, sum(costs.state_bytes[j] for j in checkpoints)
                   + sum(costs.tape_bytes[t - 1] for t in held))
    return peak


def random_budgets(rng: random.Random, costs: ChainCosts, count: int) -> list[int]:
    """x_0 alone, one unit more, and ``count`` random budgets up to storing everything."""
    least, total = costs.state_bytes[0], sum(costs.state_bytes) + sum(costs.tape_bytes)
    return sorted({least, least + 1, *(rng.randint(least, total) for _ in range(count))})
