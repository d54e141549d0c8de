"""The simulation behind ``dtr`` (the policy and its eviction heuristics: :mod:`.dtr`):
residency, pins, remaining reads, staleness and the steps it emits, under a byte budget.
:mod:`.dtr_offload` extends it with transfers to host memory.

Units: bytes for sizes and the budget, cost units for costs, seconds for ``time_limit``.
"""
from __future__ import annotations

import math
import time

from ...errors import BudgetError, TimeLimitError
from ..costs import GraphCosts
from ..floors import least_peak_floor
from ..plans import GraphAction, GraphStep

COMPUTE, FREE, BACKWARD = GraphAction.COMPUTE, GraphAction.FREE, GraphAction.BACKWARD
THRASH_FACTOR = 50  # op evaluations per op beyond which a run is declared thrashing


class _Classes:
    """Union-find over evicted values (h_DTR_eq): each root holds the cost of its class."""

    def __init__(self, costs: GraphCosts) -> None:
        self.costs = costs
        self.neighbours = [costs.op_parents[i] + costs.consumers[i] for i in range(len(costs))]
        self.member: list[int | None] = [None] * len(costs)  # value -> its class element
        self.up: list[int] = []
        self.cost: list[float] = []

    def root(self, element: int) -> int:
        while self.up[element] != element:
            self.up[element] = self.up[self.up[element]]
            element = self.up[element]
        return element

    def evict(self, node: int) -> None:
        element = len(self.up)
        self.up.append(element)
        self.cost.append(self.costs.costs[node])
        self.member[node] = element
        for other in self.neighbours[node]:
            if self.member[other] is not None:
                a, b = self.root(element), self.root(self.member[other])
                if a != b:
                    self.up[b] = a
                    self.cost[a] += self.cost[b]

    def leave(self, node: int) -> None:
        """``node`` is resident again, or can never be read again."""
        element = self.member[node]
        if element is not None:
            self.cost[self.root(element)] -= self.costs.costs[node]
            self.member[node] = None

    def neighbourhood_cost(self, node: int) -> float:
        roots = {self.root(self.member[o]) for o in self.neighbours[node]
                 if self.member[o] is not None}
        return math.fsum(self.cost[r] for r in roots)


class DtrRun:
    """The simulation's state: residency, pins, remaining reads, staleness, emitted steps."""

    def __init__(self, costs: GraphCosts, budget: float, budget_bytes: object,
                 heuristic: str, seconds: float | None, deadline: float = math.inf) -> None:
        self.costs, self.budget, self.budget_bytes, self.heuristic = (costs, budget,
                                                                      budget_bytes, heuristic)
        self.seconds = seconds
        self.deadline = deadline
        count = len(costs)
        self.resident: set[int] = set()
        self.pins = [0] * count
        self.reads = [0] * count  # remaining program steps that read each value
        self.read_at: list[list[int]] = [[] for _ in range(count)]  # their program positions
        program = [*(costs.op_parents[i] for i in costs.op_nodes),
                   *(costs.op_residuals[b] for b in costs.backward_order)]
        self.length = len(program)
        for position, needs in enumerate(program):
            for p in needs:
                self.reads[p] += 1
                self.read_at[p].append(position)
        self.position = 0  # the program step running
        self.last = [0] * count
        self.clock = 1
        self.live = 0
        self.steps: list[GraphStep] = []
        self.evaluations = 0
        self.limit = THRASH_FACTOR * len(costs.op_nodes)
        self.evicted: list[int] = []
        self.classes = _Classes(costs)
        self.horizon = count  # values at or above it can never be read again

    def run(self) -> list[GraphStep]:
        costs = self.costs
        for i in costs.op_nodes:
            self.program_step(COMPUTE, i, costs.op_parents[i])
        order = costs.backward_order
        for k, b in enumerate(order):
            self.program_step(BACKWARD, b, costs.op_residuals[b])
            self.retire_above(order[k + 1] if k + 1 < len(order) else -1)
        return self.plan_steps()

    def plan_steps(self) -> list[GraphStep]:
        """The plan's steps, in order."""
        return self.steps

    def emit(self, step: GraphStep, peak: int = 0) -> None:
        """Append ``step`` (``peak``: the device bytes at its peak, for a compute or backward
        step)."""
        self.steps.append(step)

    def fetched(self, node: int) -> bool:
        """Bring ``node`` back other than by computing it, if this run can (here: never)."""
        return False

    def evict(self, node: int) -> None:
        """Make room by releasing the resident ``node`` (here: free it)."""
        self.free(node)

    def program_step(self, action: GraphAction, node: int, needs: tuple[int, ...]) -> None:
        self.position += 1
        for p in needs:
            self.pins[p] += 1
        for p in needs:
            if p not in self.resident:
                self.rematerialise(p)
        if action is COMPUTE:
            self.compute(node)
        else:
            self.backward(node)
        for p in needs:
            self.pins[p] -= 1
            self.reads[p] -= 1
            self.release_if_dead(p)

    def rematerialise(self, target: int) -> None:
        """Compute ``target`` and its evicted op ancestors, parents first (explicit stack);
        the parents of a value being recomputed stay pinned until it is computed."""
        parents, touched = self.costs.op_parents, []
        stack = [(target, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                self.compute(node)
                for p in parents[node]:
                    self.pins[p] -= 1
                touched.append(node)
            elif node not in self.resident and not self.fetched(node):
                stack.append((node, True))
                for p in parents[node]:
                    self.pins[p] += 1
                stack.extend((p, False) for p in parents[node] if p not in self.resident)
        for node in touched:
            for p in parents[node]:
                self.release_if_dead(p)

    def compute(self, node: int) -> None:
        size = self.costs.sizes[node]
        self.make_room(size, f"computing v{node}")
        self.emit(GraphStep(COMPUTE, node), self.live + size)
        self.resident.add(node)
        self.live += size
        self.classes.leave(node)
        self.evaluations += 1
        if self.evaluations > self.limit:
            raise BudgetError(f"policy 'dtr': budget_bytes={self.budget_bytes} thrashes: more "
                              f"than {THRASH_FACTOR} evaluations per op ({self.limit} for "
                              f"{len(self.costs.op_nodes)} ops) before the end; raise the budget "
                              f"(no plan fits below {least_peak_floor(self.costs):,} bytes)")
        self.touch((node,) + self.costs.op_parents[node])

    def backward(self, node: int) -> None:
        costs = self.costs
        seed = costs.sizes[node] if node == costs.output else 0
        added = sum(costs.sizes[p] for p in costs.new_cotangents[node])
        self.make_room(seed + added, f"backward v{node}")
        self.emit(GraphStep(BACKWARD, node), self.live + seed + added)
        self.live += added - (0 if seed else costs.sizes[node])
        self.touch(costs.op_residuals[node])

    def touch(self, nodes: tuple[int, ...]) -> None:
        for p in nodes:
            self.last[p] = self.clock
        self.clock += 1

    def make_room(self, extra: int, what: str) -> None:
        while self.live + extra > self.budget:
            self.check_clock()
            victim = self.choose()
            if victim is None:
                raise BudgetError(
                    f"policy 'dtr': budget_bytes={self.budget_bytes} is too small: {what} needs "
                    f"{self.live + extra} bytes at once (the values it and any pending "
                    f"recomputation read, the live cotangents and the new bytes)")
            self.evicted.append(victim)
            self.evict(victim)

    def check_clock(self) -> None:
        """Refuse once past the deadline: a run cut short is not a plan."""
        if time.perf_counter() > self.deadline:
            raise TimeLimitError(f"policy 'dtr': time_limit={self.seconds:g} s ran out at program "
                              f"step {self.position:,} of {self.length:,} ({len(self.evicted):,} "
                              f"evictions); raise time_limit")

    def choose(self) -> int | None:
        sizes, best, best_key = self.costs.sizes, None, None
        for node in self.resident:
            if self.pins[node] or not sizes[node]:
                continue
            key = (self.score(node), self.last[node], node)
            if best_key is None or key < best_key:
                best, best_key = node, key
        return best

    def score(self, node: int) -> float:
        """Lower is evicted first; a value the program reads no more goes first."""
        if not self.reads[node]:
            return -math.inf
        size, staleness = self.costs.sizes[node], self.clock - self.last[node]
        if self.heuristic == "lru":
            return -staleness
        if self.heuristic == "size":
            return -size
        cost = self.costs.costs[node]
        if self.heuristic == "next_use":
            reads = self.read_at[node]
            # read_at counts steps from 0 and position the running one from 1: the next
            # step's read is at distance 2, one more than the steps to it
            distance = reads[len(reads) - self.reads[node]] - self.position + 2
            return (cost + self.classes.neighbourhood_cost(node)) / (size * distance)
        if self.heuristic == "dtr":
            cost += self.classes.neighbourhood_cost(node)
        return cost / (size * staleness)

    def release_if_dead(self, node: int) -> None:
        if node in self.resident and not self.reads[node] and not self.pins[node]:
            self.free(node)

    def free(self, node: int) -> None:
        self.emit(GraphStep(FREE, node))
        self.forget(node)

    def forget(self, node: int) -> None:
        """``node`` leaves the device: no longer resident, its bytes released."""
        self.resident.discard(node)
        self.live -= self.costs.sizes[node]
        if node < self.horizon:
            self.classes.evict(node)

    def retire_above(self, node: int) -> None:
        """After a backward step: values above the next one (``node``) are never read again."""
        for i in range(node + 1, self.horizon):
            self.classes.leave(i)
        self.horizon = min(self.horizon, node + 1)
