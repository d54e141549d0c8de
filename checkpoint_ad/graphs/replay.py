"""The one replay of a graph plan: it applies the rules of :mod:`.plans` (docs/graph_model.md,
docs/offload_model.md) step by step, refusing a step that breaks one, and counts what the plan
does (evaluations, cost, device and host peaks, time). The planners, the checker and the tests
all go through :func:`replay`."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..checks import shown
from ..errors import PlanError
from ..plans.transfers import bandwidth_value, host_drops, step_time
from .actions import TRANSFER_ACTIONS, GraphAction, GraphStep
from .costs import GraphCosts


@dataclass(frozen=True)
class Replay:
    """What replaying a plan gives: evaluations, cost, device peak bytes, and per-node detail
    (``computed[i]`` computations of node i, ``resident_steps[i]`` steps it stayed resident);
    ``time`` in cost units and ``host_peak_bytes`` (docs/offload_model.md); for each node the
    positions after which it was offloaded (``offloaded[i]``: its device copy left as that
    action's step ended) and before which it was prefetched (``prefetched[i]``: readable from
    that action on)."""

    forward_evals: int
    cost: float
    peak_bytes: int
    computed: tuple[int, ...]
    resident_steps: tuple[int, ...]
    timeline: tuple[int, ...]
    time: float = 0.0
    host_peak_bytes: int = 0
    offloaded: tuple[tuple[int, ...], ...] = ()
    prefetched: tuple[tuple[int, ...], ...] = ()


def replay(costs: GraphCosts, steps: Iterable[GraphStep],
           bandwidth: float | None = None) -> Replay:
    """Apply ``steps`` under the rules of the module docstring (transfers timed at
    ``bandwidth`` bytes per cost unit; None: a transfer is refused); raise :class:`PlanError`
    at the first step that breaks one, naming it."""
    if isinstance(steps, (str, bytes)) or not isinstance(steps, Iterable):
        raise PlanError(f"the steps of a plan must be a sequence of (action, node) steps, "
                        f"got {shown(steps)}")
    steps = steps if isinstance(steps, (list, tuple)) else list(steps)
    drops: dict[int, list[int]] = {}
    if any(isinstance(step, tuple) and len(step) == 2 and step[0] in TRANSFER_ACTIONS
           for step in steps):  # only then are host copies to follow (it takes memory)
        steps = [_unpack(step, number, len(costs)) for number, step in enumerate(steps)]
        drops = host_drops(steps)
    return _Replayer(costs, steps, bandwidth_value(bandwidth, "replay"), drops).run()


class _Replayer:
    """One replay: the device and host state, applied action by action."""

    def __init__(self, costs: GraphCosts, steps: Sequence[object], bandwidth: float | None,
                 drops: dict[int, list[int]]) -> None:
        count = len(costs)
        self.costs, self.steps, self.bandwidth = costs, steps, bandwidth
        self.resident = [costs.is_input(i) for i in range(count)]
        self.arriving: dict[int, None] = {}  # prefetched in the open step (ordered)
        self.leaving: dict[int, None] = {}   # offloaded in the open step
        self.on_host = [False] * count       # a finished host copy exists
        self.drops = drops
        self.computed, self.since, self.stayed = [0] * count, [0] * count, [0] * count
        self.offloaded: dict[int, list[int]] = {}
        self.prefetched: dict[int, list[int]] = {}
        self.position = 0  # backward steps taken
        self.live = self.peak = self.host_live = self.host_peak = self.evaluations = 0
        self.cost = self.time = 0.0
        self.handlers = {GraphAction.COMPUTE: self.compute, GraphAction.FREE: self.free,
                         GraphAction.BACKWARD: self.backward, GraphAction.OFFLOAD: self.offload,
                         GraphAction.PREFETCH: self.prefetch, GraphAction.WAIT: self.wait}

    def run(self) -> Replay:
        costs, timeline, count = self.costs, [], len(self.costs)
        for number, step in enumerate(self.steps):
            action, i = _unpack(step, number, count)
            self.number, self.where = number, f"step {number} ({action.value} v{i})"
            if costs.is_input(i):
                raise PlanError(f"{self.where}: v{i} is an input; inputs are pinned")
            self.handlers[action](i)
            timeline.append(self.live)
        self.finish()
        return Replay(self.evaluations, self.cost, self.peak, tuple(self.computed),
                      tuple(self.stayed), tuple(timeline), self.time, self.host_peak,
                      tuple(tuple(self.offloaded.get(i, ())) for i in range(count)),
                      tuple(tuple(self.prefetched.get(i, ())) for i in range(count)))

    def readable(self, nodes: Iterable[int]) -> None:
        """Refuse the step unless every node is resident and not arriving."""
        for node in nodes:
            if not self.resident[node]:
                raise PlanError(f"{self.where}: needs v{node}, which is not resident")
            if node in self.arriving:
                raise PlanError(f"{self.where}: needs v{node}, whose prefetch is still in "
                                f"flight (it is readable from the next step on)")

    def settled(self, node: int) -> None:
        """Refuse an action on a value whose transfer of this step is still in flight."""
        if node in self.arriving or node in self.leaving:
            moving = "prefetch" if node in self.arriving else "offload"
            raise PlanError(f"{self.where}: v{node}'s {moving} is still in flight (it ends "
                            f"with this step)")

    def compute(self, i: int) -> None:
        if self.resident[i]:
            self.settled(i)
            raise PlanError(f"{self.where}: v{i} is already resident")
        self.readable(self.costs.op_parents[i])
        size = self.costs.sizes[i]
        self.peak = max(self.peak, self.live + size)
        self.live += size
        self.resident[i], self.since[i] = True, self.number
        self.computed[i] += 1
        self.evaluations += 1
        self.cost += self.costs.costs[i]
        self.end_step(self.costs.costs[i])

    def free(self, i: int) -> None:
        if not self.resident[i]:
            raise PlanError(f"{self.where}: v{i} is not resident")
        self.settled(i)
        self.release(i)

    def release(self, i: int) -> None:
        self.resident[i] = False
        self.live -= self.costs.sizes[i]
        self.stayed[i] += self.number - self.since[i]

    def backward(self, i: int) -> None:
        costs, sizes, order = self.costs, self.costs.sizes, self.costs.backward_order
        if self.position == len(order) or order[self.position] != i:
            expected = ("none (all done)" if self.position == len(order)
                        else f"v{order[self.position]}")
            raise PlanError(f"{self.where}: the next backward step is {expected}")
        self.readable(costs.op_residuals[i])
        if i == costs.output:
            self.live += sizes[i]
        fresh = costs.new_cotangents[i]
        added = sum(sizes[p] for p in fresh)
        self.peak = max(self.peak, self.live + added)
        self.live += added - sizes[i]
        self.position += 1
        self.end_step(costs.backward_costs[i])

    def offload(self, i: int) -> None:
        self.transfer_allowed()
        if not self.resident[i]:
            raise PlanError(f"{self.where}: v{i} is not resident on the device")
        self.settled(i)
        self.leaving[i] = None
        self.host_live += self.costs.sizes[i]
        self.host_peak = max(self.host_peak, self.host_live)

    def prefetch(self, i: int) -> None:
        self.transfer_allowed()
        if self.resident[i]:
            self.settled(i)
            raise PlanError(f"{self.where}: v{i} is already resident")
        if not self.on_host[i]:
            raise PlanError(f"{self.where}: v{i} has no host copy (offload it in an earlier "
                            f"step)")
        size = self.costs.sizes[i]
        self.peak = max(self.peak, self.live + size)
        self.live += size
        self.resident[i], self.since[i] = True, self.number
        self.arriving[i] = None

    def wait(self, i: int) -> None:
        if i not in self.arriving and i not in self.leaving:
            raise PlanError(f"{self.where}: v{i} is not transferred in this step")
        self.end_step(0.0)

    def transfer_allowed(self) -> None:
        if self.bandwidth is None:
            raise PlanError(f"{self.where}: a transfer needs a bandwidth > 0 (bytes per cost "
                            f"unit); none was given")

    def end_step(self, action_time: float) -> None:
        """The step ends: its time is counted, offloaded values leave the device, prefetched
        ones become readable, and host copies no later step reads are dropped."""
        sizes = self.costs.sizes
        self.time += step_time(action_time, sum(sizes[i] for i in self.leaving),
                               sum(sizes[i] for i in self.arriving), self.bandwidth)
        for i in self.leaving:
            self.release(i)
            self.on_host[i] = True
            self.offloaded.setdefault(i, []).append(self.number)
        for i in self.arriving:
            self.prefetched.setdefault(i, []).append(self.number + 1)
        self.leaving.clear()
        self.arriving.clear()
        for i in self.drops.get(self.number, ()):
            self.on_host[i] = False
            self.host_live -= sizes[i]

    def finish(self) -> None:
        order = self.costs.backward_order
        in_flight = list(self.arriving) + list(self.leaving)
        if in_flight:
            raise PlanError(f"the plan ends with the transfer of v{in_flight[0]} in flight; "
                            f"end its step (wait v{in_flight[0]})")
        if self.position != len(order):
            raise PlanError(f"the plan ends before backward v{order[self.position]}")
        left = [i for i in self.costs.op_nodes if self.resident[i]]
        if left:
            raise PlanError(f"the plan ends with v{left[0]} still resident; free it")


def _unpack(step: object, number: int, count: int) -> tuple[GraphAction, int]:
    try:
        action, node = step  # type: ignore[misc]
    except (TypeError, ValueError):
        raise PlanError(f"step {number}: expected (action, node), got {step!r:.60}") from None
    if not isinstance(action, GraphAction):
        raise PlanError(f"step {number}: unknown action {action!r}; actions: "
                        f"{', '.join(a.value for a in GraphAction)}")
    if isinstance(node, bool) or not isinstance(node, int) or not 0 <= node < count:
        raise PlanError(f"step {number}: node {node!r} is not a node of this {count}-node graph")
    return action, node
