"""The hierarchical ``optimal``: a graph too large for exact search, planned as a chain of
blocks (:mod:`.blocks`) by the chain ``optimal`` (the rotor dynamic program with held tapes),
its plan expanded into graph steps and replayed.

Expansion (each graph value is resident while anything holds it: the working value, a
checkpoint, a held tape, or the block being computed until the value's last use in it):

* ``advance t`` computes block t keeping only c_t (the new working value); ``tape t`` keeps
  what block t's backward steps read, and c_t; ``turn t`` is a tape followed by its backward;
* ``backward t`` runs the backward steps of block t's ops, then releases its tape;
* ``save``/``restore``/``free`` hold and release c_t as a checkpoint or the working value.

The chain model counts stored states and tapes, not the working value's temporaries nor the
cotangents, so the replayed peak differs from the chain DP's; the planner searches the chain
budget for the cheapest expanded plan whose *replayed* peak fits the graph budget. Inside a
block everything is kept (one option per block); the plan reports the trivial lower bound
(every op computed once) and its gap to it.
"""
from __future__ import annotations

from collections import Counter

from ...chains.plans import Action, Plan
from ...chains.policies import make_plan
from ...errors import BudgetError
from ..costs import GraphCosts
from ..plans import GraphAction, GraphPlan, GraphStep, replay
from .blocks import Blocks


class _Expansion:
    """Turns a chain plan over blocks into graph steps (see the module docstring)."""

    def __init__(self, blocks: Blocks) -> None:
        self.blocks, self.costs = blocks, blocks.costs
        self.refs: Counter[int] = Counter()
        self.steps: list[GraphStep] = []
        self.working: int | None = None
        self.held: dict[int, frozenset[int]] = {}
        self.restart_points: set[int] = set()
        self.position = 0

    def run(self, plan: Plan) -> list[GraphStep]:
        handlers = {Action.ADVANCE: self._advance, Action.TAPE: self._tape,
                    Action.TURN: self._turn, Action.BACKWARD: self._backward,
                    Action.SAVE: self._save, Action.RESTORE: self._restore,
                    Action.FREE: self._free}
        self.restart_points = _restarted_tapes(plan)
        for position, step in enumerate(plan):
            self.position = position
            handlers[step.action](step.stage, step.end)
        self._set_working(None)
        return self.steps

    def _hold(self, node: int | None) -> None:
        if node is not None:
            self.refs[node] += 1

    def _release(self, node: int | None) -> None:
        if node is None:
            return
        self.refs[node] -= 1
        if not self.refs[node]:
            del self.refs[node]
            self.steps.append(GraphStep(GraphAction.FREE, node))

    def _set_working(self, node: int | None) -> None:
        self._hold(node)
        self._release(self.working)
        self.working = node

    def _evaluate(self, t: int, kept: frozenset[int]) -> None:
        """Compute block t from c_{t-1}; hold ``kept`` (for a tape) and c_t (working)."""
        costs, ops = self.costs, self.blocks.ops[t]
        members = set(ops) | {self.blocks.cut[t - 1]} - {None}
        uses = Counter(p for i in ops for p in costs.op_parents[i] if p in members)
        for p in members - set(ops):
            self.refs[p] += uses[p]
        for p in kept - set(ops):
            self._hold(p)
        self.held[t] = kept
        for i in ops:
            self.steps.append(GraphStep(GraphAction.COMPUTE, i))
            self.refs[i] += uses[i] + (i in kept)
            if i == self.blocks.cut[t]:
                self._set_working(i)
            for p in costs.op_parents[i]:
                self._release(p)

    def _advance(self, first: int, last: int) -> None:
        for t in range(first, last + 1):
            self._evaluate(t, frozenset())

    def _tape(self, t: int, _: int) -> None:
        self._evaluate(t, self._tape_of(t))

    def _tape_of(self, t: int) -> frozenset[int]:
        """Block t's tape; its c_t only when its backward reads it or the plan restores
        from this tape (else c_t stays resident only while something else holds it)."""
        tape = self.blocks.tapes[t]
        if (self.position in self.restart_points or
                self.blocks.cut[t] in self.blocks.read_by_backward[t]):
            return tape
        return tape - {self.blocks.cut[t]}

    def _turn(self, t: int, _: int) -> None:
        self._tape(t, t)
        self._backward(t, t)

    def _backward(self, t: int, _: int) -> None:
        self.steps += [GraphStep(GraphAction.BACKWARD, i) for i in reversed(self.blocks.ops[t])
                       if self.costs.has_cotangent[i]]
        self._set_working(None)
        for node in self.held.pop(t):
            self._release(node)

    def _save(self, t: int, _: int) -> None:
        self._hold(self.blocks.cut[t])

    def _restore(self, t: int, _: int) -> None:
        self._set_working(self.blocks.cut[t])

    def _free(self, t: int, _: int) -> None:
        self._release(self.blocks.cut[t])


def _restarted_tapes(plan: Plan) -> set[int]:
    """Positions of the TAPE and TURN steps whose tape the plan later restores from (a
    RESTORE t before BACKWARD t, with no checkpoint of x_t in between)."""
    found, open_tapes, saved = set(), {}, set()
    for position, step in enumerate(plan):
        action, t = step.action, step.stage
        if action is Action.TAPE:
            open_tapes[t] = position
        elif action is Action.BACKWARD:
            open_tapes.pop(t, None)
        elif action is Action.SAVE:
            saved.add(t)
        elif action is Action.FREE:
            saved.discard(t)
        elif action is Action.RESTORE and t in open_tapes and t not in saved:
            found.add(open_tapes[t])
    return found


def expand(blocks: Blocks, plan: Plan) -> list[GraphStep]:
    """The graph steps of a chain plan over ``blocks``."""
    return _Expansion(blocks).run(plan)


def plan_hierarchical(costs: GraphCosts, budget: float, policy: str = "optimal",
                      params: dict | None = None) -> GraphPlan:
    """The cheapest expansion of a chain plan over the blocks of ``costs`` whose replayed peak
    fits ``budget``, searching the chain DP's byte budget."""
    blocks = Blocks.of(costs)
    chain = blocks.chain_costs()
    tried: dict[int, tuple[float, int, list[GraphStep]] | None] = {}

    def attempt(chain_budget: int) -> tuple[float, int, list[GraphStep]] | None:
        if chain_budget not in tried:
            try:
                chain_plan = make_plan("optimal", chain, budget_bytes=chain_budget)
            except BudgetError:
                tried[chain_budget] = None
                return None
            steps = expand(blocks, chain_plan)
            counted = replay(costs, steps)
            tried[chain_budget] = (counted.cost, counted.peak_bytes, steps)
        return tried[chain_budget]

    low, high = 0, sum(chain.tape_bytes) + sum(chain.state_bytes)  # chain store-all
    while low < high:  # the largest chain budget whose expansion fits
        middle = (low + high + 1) // 2
        found = attempt(middle)
        if found is not None and found[1] <= budget:
            low = middle
        else:
            high = middle - 1
    fitting = [found for found in tried.values() if found is not None and found[1] <= budget]
    if not fitting:
        raise BudgetError(f"policy {policy!r}: budget_bytes={int(budget)} is below what the "
                          "hierarchical plan can reach on this graph (every block's tape and "
                          "its cotangents must fit)")
    cost, _, steps = min(fitting, key=lambda found: (found[0], found[1]))
    return GraphPlan.build(costs, steps, policy, params or {}, method="hierarchical",
                           status="feasible", lower_bound=costs.total_cost,
                           details={"blocks": blocks.n})
