"""Graph plans: the three actions, the plan, and the one replay that checks and counts them.

A plan is a sequence of :class:`GraphStep` (docs/graph_model.md; the transfers ``offload``,
``prefetch`` and ``wait`` and a plan's time: docs/offload_model.md):

* ``compute i`` needs every op parent of i resident and i not resident; i becomes resident.
  One forward evaluation, cost ``costs[i]``; the peak during the step is current + sizes[i].
* ``free i`` needs i resident; i is no longer resident.
* ``backward i`` must be the next op of ``costs.backward_order``; every op residual of i (and
  the output itself at backward(output)) must be resident. It allocates the cotangents of the
  parents that have none yet (``costs.new_cotangents[i]``; the output's seed first), then frees
  i's cotangent. A plan ends with every backward step taken and nothing resident.

Activation bytes = resident op values + live op cotangents. :func:`replay` is the only place
that applies these rules; the planners, the checker and the tests all go through it.
"""
from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from ..checks import real_number, shown, whole_number
from ..errors import PlanError
from ..plans.plan_json import (dump_plan, json_able, load_plan, mapping_field, read_field,
                               reading, steps_field, text_field)
from .costs import GraphCosts, checked_costs
from ..plans.transfers import bandwidth_value, check_host_budget, host_drops, step_time


class GraphAction(enum.Enum):
    COMPUTE = "compute"
    FREE = "free"
    BACKWARD = "backward"
    OFFLOAD = "offload"    # device -> host copy (docs/offload_model.md)
    PREFETCH = "prefetch"  # host -> device copy
    WAIT = "wait"          # ends a step that holds transfers alone


class GraphStep(NamedTuple):
    action: GraphAction
    node: int

    def __str__(self) -> str:
        return f"{self.action.value} v{self.node}"


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


@dataclass(frozen=True)
class GraphPlan:
    """An immutable, checked graph plan and the numbers its replay gives.

    ``method`` says how it was found ("exact", "fixed", "heuristic", "milp", ...); ``status``
    whether it is proven optimal ("optimal") or not; ``lower_bound`` is a proven lower bound of
    the cost (None if none is known) and ``solve_s`` the planner's time in seconds.

    docs/offload_model.md: ``time`` is the predicted time in cost units (None only for a plan
    read from JSON written before plans had times; :func:`check_graph_plan` gives it);
    ``host_peak_bytes`` the peak of the host copies; ``bandwidth`` (bytes per cost unit) the one
    the transfers were timed at (None: the plan has none).
    """

    policy: str
    params: Mapping[str, object]
    steps: tuple[GraphStep, ...]
    forward_evals: int
    cost: float
    peak_bytes: int
    method: str = "fixed"
    status: str = "feasible"
    lower_bound: float | None = None
    solve_s: float = 0.0
    details: Mapping[str, object] = field(default_factory=dict)
    time: float | None = None
    host_peak_bytes: int = 0
    bandwidth: float | None = None

    @classmethod
    def build(cls, costs: GraphCosts, steps: Iterable[GraphStep], policy: str,
              params: Mapping[str, object], bandwidth: float | None = None,
              **info: object) -> GraphPlan:
        """Replay ``steps`` (transfers timed at ``bandwidth`` bytes per cost unit), raising
        :class:`PlanError` if they break a rule, and record the numbers the replay gives."""
        steps = tuple(steps)
        bandwidth = bandwidth_value(bandwidth, f"policy {policy!r}")
        counted = replay(costs, steps, bandwidth)
        check_host_budget(counted.host_peak_bytes, params, policy)
        if not any(step.action in TRANSFER_ACTIONS for step in steps):
            bandwidth = None  # timed without one: the plan reads the same at any bandwidth
        return cls(policy, dict(params), steps, counted.forward_evals, counted.cost,
                   counted.peak_bytes, **info, time=counted.time,  # type: ignore[arg-type]
                   host_peak_bytes=counted.host_peak_bytes, bandwidth=bandwidth)

    @property
    def transfers(self) -> int:
        """The number of offloads and prefetches in the plan."""
        return sum(step.action in TRANSFER_ACTIONS for step in self.steps)

    def to_json(self) -> str:
        """The plan as JSON text that :meth:`from_json` reads back: ``schema_version`` 1,
        ``family`` "graph", the policy and its params, the steps as ``[action, node]``, the
        numbers its replay gave (forward evaluations, cost, peak bytes), how it was found
        (method, status, lower_bound, solve_s in seconds) and the details JSON can hold; and
        (docs/offload_model.md) its time, host peak and bandwidth. Plans written before those
        three fields existed are read too."""
        return dump_plan("graph", {
            "policy": self.policy, "params": dict(self.params),
            "steps": [[step.action.value, step.node] for step in self.steps],
            "forward_evals": self.forward_evals, "cost": self.cost,
            "peak_bytes": self.peak_bytes, "method": self.method, "status": self.status,
            "lower_bound": self.lower_bound, "solve_s": self.solve_s,
            "details": json_able(self.details), "time": self.time,
            "host_peak_bytes": self.host_peak_bytes, "bandwidth": self.bandwidth})

    @classmethod
    def from_json(cls, text: str | bytes) -> GraphPlan:
        """The plan :meth:`to_json` wrote. Malformed JSON, another family, another schema
        version, a bad field or step: :class:`PlanError`. Whether its steps fit a graph only
        that graph's costs can tell: :func:`check_graph_plan` (which ``backprop_graph`` runs
        before anything else) replays them and compares the numbers written."""
        with reading("graph"):
            data = load_plan(text, "graph", GRAPH_PLAN_FIELDS, OFFLOAD_FIELDS)
            steps = tuple(_json_step(number, step)
                          for number, step in enumerate(steps_field(data, "graph")))
            return cls(text_field(data, "policy"), mapping_field(data, "params"), steps,
                       read_field(data, "forward_evals", whole_number),
                       read_field(data, "cost", real_number, positive=False),
                       read_field(data, "peak_bytes", whole_number),
                       text_field(data, "method"), text_field(data, "status"),
                       read_field(data, "lower_bound", real_number, optional=True,
                                  positive=False),
                       read_field(data, "solve_s", real_number, positive=False),
                       mapping_field(data, "details"),
                       read_field(data, "time", real_number, optional=True, positive=False),
                       read_field(data, "host_peak_bytes", whole_number),
                       read_field(data, "bandwidth", real_number, optional=True))

    @property
    def gap(self) -> float | None:
        """cost / lower_bound - 1, where a positive bound is known."""
        if not self.lower_bound:
            return None
        return self.cost / self.lower_bound - 1

    def __iter__(self) -> Iterator[GraphStep]:
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    def explain(self, costs: GraphCosts) -> Explanation:
        """Why each value was kept: see :func:`explain`."""
        return explain(costs, self)

    def label(self) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.policy}({shown})" if shown else self.policy

    def __str__(self) -> str:
        moved = (f", time {self.time:g}, {self.transfers} transfers at bandwidth "
                 f"{self.bandwidth:g}, host peak {self.host_peak_bytes} bytes"
                 if self.transfers and self.time is not None and self.bandwidth else "")
        head = (f"graph plan {self.label()}: {len(self.steps)} steps, {self.forward_evals} "
                f"forward evaluations, cost {self.cost:g}, peak {self.peak_bytes} bytes"
                f"{moved} [{self.method}, {self.status}]")
        width = len(str(len(self.steps)))
        return "\n".join([head] + [f"  {k:>{width}}  {step}" for k, step in enumerate(self.steps)])


GRAPH_PLAN_FIELDS = ("policy", "params", "steps", "forward_evals", "cost", "peak_bytes", "method",
                     "status", "lower_bound", "solve_s", "details")
OFFLOAD_FIELDS = {"time": None, "host_peak_bytes": 0, "bandwidth": None}  # absent in older plans
TRANSFER_ACTIONS = (GraphAction.OFFLOAD, GraphAction.PREFETCH)


def _json_step(number: int, step: list) -> GraphStep:
    """A step of :meth:`GraphPlan.from_json`, ``[action, node]``: a known action and a whole
    number (whether the node is one of a graph's, its costs tell)."""
    name, node = step
    try:
        action = GraphAction(name)
    except ValueError:
        raise PlanError(f"step {number}: unknown action {name!r}; actions: "
                        f"{', '.join(a.value for a in GraphAction)}") from None
    return GraphStep(action, whole_number(node, f"step {number}: node", error=PlanError))


def check_graph_plan(costs: GraphCosts, plan: GraphPlan) -> Replay:
    """Validate ``plan`` against ``costs``: every step legal (transfers timed at
    ``plan.bandwidth``), its host peak within its ``host_budget_bytes`` param (if any), and the
    evaluations, cost, peak, host peak and time (unless None) it reports equal to its replay.
    Returns the replay; raises :class:`PlanError`."""
    checked_costs(costs, "check_graph_plan")
    if not isinstance(plan, GraphPlan):
        raise PlanError(f"expected a GraphPlan, got {type(plan).__name__}")
    counted = replay(costs, plan.steps, plan.bandwidth)
    reported = (plan.forward_evals, plan.cost, plan.peak_bytes)
    if reported != (counted.forward_evals, counted.cost, counted.peak_bytes):
        raise PlanError(f"plan {plan.label()} reports (evaluations, cost, peak) = {reported}, "
                        f"but its replay gives {(counted.forward_evals, counted.cost, counted.peak_bytes)}")
    moved = (plan.host_peak_bytes, counted.time if plan.time is None else plan.time)
    if moved != (counted.host_peak_bytes, counted.time):
        raise PlanError(f"plan {plan.label()} reports (host peak, time) = {moved}, but its "
                        f"replay gives {(counted.host_peak_bytes, counted.time)}")
    check_host_budget(counted.host_peak_bytes, plan.params, plan.label())
    return counted


# -- why each value was kept: a per-value account of a plan (the per-value answer that a policy
# given as a predicate cannot show before anything runs) ------------------------------------------


@dataclass(frozen=True)
class ValueAccount:
    """One op value under a plan: its op and bytes, how many times it was computed, how many
    plan steps it stayed resident in all, which backward steps read it (as a residual), and
    the plan steps after which it was offloaded (its device copy gone) and before which it was
    prefetched (readable again)."""

    node: int
    op: str | None
    nbytes: int
    computed: int
    resident_steps: int
    read_by: tuple[int, ...]
    offloaded_after: tuple[int, ...] = ()
    prefetched_before: tuple[int, ...] = ()

    @property
    def verdict(self) -> str:
        if self.offloaded_after and self.computed > 1:
            return "offloaded and recomputed"
        if self.offloaded_after:
            return "offloaded"
        if self.computed > 1:
            return "recomputed"
        if self.read_by:
            return "kept for backward"
        return "freed after use"


@dataclass(frozen=True)
class Explanation:
    """The accounts of every op value of a plan; prints as a table."""

    plan: GraphPlan
    values: tuple[ValueAccount, ...]

    def __str__(self) -> str:
        head = f"{'value':>6}  {'op':<14}{'bytes':>10}{'computed':>10}{'resident':>10}  read by"
        lines = [f"why each value was kept: {self.plan.label()}", head]
        for v in self.values:
            readers = ", ".join(f"backward v{b}" for b in v.read_by) or "-"
            lines.append(f"{'v' + str(v.node):>6}  {str(v.op):<14}{v.nbytes:>10}{v.computed:>10}"
                         f"{v.resident_steps:>10}  {readers}  ({v.verdict}){_moves(v)}")
        return "\n".join(lines)


def _moves(value: ValueAccount) -> str:
    """"; offloaded after step k, prefetched before step m" (nothing for a value never moved)."""
    parts = [f"offloaded after step {k}" for k in value.offloaded_after]
    parts += [f"prefetched before step {m}" for m in value.prefetched_before]
    return "; " + ", ".join(parts) if parts else ""


def explain(costs: GraphCosts, plan: GraphPlan) -> Explanation:
    """The per-value account of ``plan`` on ``costs`` (replayed, so checked too)."""
    counted = replay(checked_costs(costs, "explain"), plan.steps, plan.bandwidth)
    readers: dict[int, list[int]] = {i: [] for i in costs.op_nodes}
    for b in costs.backward_order:
        for r in costs.op_residuals[b]:
            readers[r].append(b)
    return Explanation(plan, tuple(
        ValueAccount(i, costs.ops[i], costs.sizes[i], counted.computed[i],
                     counted.resident_steps[i], tuple(readers[i]), counted.offloaded[i],
                     counted.prefetched[i]) for i in costs.op_nodes))
