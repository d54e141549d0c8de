"""Graph plans: the three actions, the plan, and the one replay that checks and counts them.

A plan is a sequence of :class:`GraphStep` (docs/graph_model.md):

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
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from ..checks import real_number, shown, whole_number
from ..errors import PlanError
from ..plans.plan_json import (dump_plan, json_able, load_plan, mapping_field, read_field,
                               reading, steps_field, text_field)
from .costs import GraphCosts, checked_costs


class GraphAction(enum.Enum):
    COMPUTE = "compute"
    FREE = "free"
    BACKWARD = "backward"


class GraphStep(NamedTuple):
    action: GraphAction
    node: int

    def __str__(self) -> str:
        return f"{self.action.value} v{self.node}"


@dataclass(frozen=True)
class Replay:
    """What replaying a plan gives: evaluations, cost, peak bytes, and per-node detail
    (``computed[i]`` computations of node i, ``resident_steps[i]`` steps it stayed resident)."""

    forward_evals: int
    cost: float
    peak_bytes: int
    computed: tuple[int, ...]
    resident_steps: tuple[int, ...]
    timeline: tuple[int, ...]


def replay(costs: GraphCosts, steps: Iterable[GraphStep]) -> Replay:
    """Apply ``steps`` under the rules of the module docstring; raise :class:`PlanError` at the
    first step that breaks one, naming it."""
    if isinstance(steps, (str, bytes)) or not isinstance(steps, Iterable):
        raise PlanError(f"the steps of a plan must be a sequence of (action, node) steps, "
                        f"got {shown(steps)}")
    sizes, count = costs.sizes, len(costs)
    resident = [costs.is_input(i) for i in range(count)]
    cotangent = [False] * count
    computed, since, stayed = [0] * count, [0] * count, [0] * count
    order, position = costs.backward_order, 0
    live = peak = evaluations = 0
    total = 0.0
    timeline = []
    number = -1
    for number, step in enumerate(steps):
        action, i = _unpack(step, number, count)
        where = f"step {number} ({action.value} v{i})"
        if costs.is_input(i):
            raise PlanError(f"{where}: v{i} is an input; inputs are pinned")
        if action is GraphAction.COMPUTE:
            if resident[i]:
                raise PlanError(f"{where}: v{i} is already resident")
            missing = [p for p in costs.op_parents[i] if not resident[p]]
            if missing:
                raise PlanError(f"{where}: needs v{missing[0]}, which is not resident")
            peak = max(peak, live + sizes[i])
            live += sizes[i]
            resident[i], since[i] = True, number
            computed[i] += 1
            evaluations += 1
            total += costs.costs[i]
        elif action is GraphAction.FREE:
            if not resident[i]:
                raise PlanError(f"{where}: v{i} is not resident")
            resident[i] = False
            live -= sizes[i]
            stayed[i] += number - since[i]
        else:
            if position == len(order) or order[position] != i:
                expected = "none (all done)" if position == len(order) else f"v{order[position]}"
                raise PlanError(f"{where}: the next backward step is {expected}")
            missing = [r for r in costs.op_residuals[i] if not resident[r]]
            if missing:
                raise PlanError(f"{where}: needs v{missing[0]}, which is not resident")
            if i == costs.output:
                live += sizes[i]
                cotangent[i] = True
            fresh = costs.new_cotangents[i]
            added = sum(sizes[p] for p in fresh)
            peak = max(peak, live + added)
            for p in fresh:
                cotangent[p] = True
            live += added - sizes[i]
            cotangent[i] = False
            position += 1
        timeline.append(live)
    if position != len(order):
        raise PlanError(f"the plan ends before backward v{order[position]}")
    left = [i for i in costs.op_nodes if resident[i]]
    if left:
        raise PlanError(f"the plan ends with v{left[0]} still resident; free it")
    return Replay(evaluations, total, peak, tuple(computed), tuple(stayed), tuple(timeline))


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

    @classmethod
    def build(cls, costs: GraphCosts, steps: Iterable[GraphStep], policy: str,
              params: Mapping[str, object], **info: object) -> GraphPlan:
        """Replay ``steps`` (raising :class:`PlanError` if they break a rule) and record the
        numbers the replay gives."""
        steps = tuple(steps)
        counted = replay(costs, steps)
        return cls(policy, dict(params), steps, counted.forward_evals, counted.cost,
                   counted.peak_bytes, **info)  # type: ignore[arg-type]

    def to_json(self) -> str:
        """The plan as JSON text that :meth:`from_json` reads back: ``schema_version`` 1,
        ``family`` "graph", the policy and its params, the steps as ``[action, node]``, the
        numbers its replay gave (forward evaluations, cost, peak bytes), how it was found
        (method, status, lower_bound, solve_s in seconds) and the details JSON can hold."""
        return dump_plan("graph", {
            "policy": self.policy, "params": dict(self.params),
            "steps": [[step.action.value, step.node] for step in self.steps],
            "forward_evals": self.forward_evals, "cost": self.cost,
            "peak_bytes": self.peak_bytes, "method": self.method, "status": self.status,
            "lower_bound": self.lower_bound, "solve_s": self.solve_s,
            "details": json_able(self.details)})

    @classmethod
    def from_json(cls, text: str | bytes) -> GraphPlan:
        """The plan :meth:`to_json` wrote. Malformed JSON, another family, another schema
        version, a bad field or step: :class:`PlanError`. Whether its steps fit a graph only
        that graph's costs can tell: :func:`check_graph_plan` (which ``backprop_graph`` runs
        before anything else) replays them and compares the numbers written."""
        with reading("graph"):
            data = load_plan(text, "graph", GRAPH_PLAN_FIELDS)
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
                       mapping_field(data, "details"))

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
        head = (f"graph plan {self.label()}: {len(self.steps)} steps, {self.forward_evals} "
                f"forward evaluations, cost {self.cost:g}, peak {self.peak_bytes} bytes "
                f"[{self.method}, {self.status}]")
        width = len(str(len(self.steps)))
        return "\n".join([head] + [f"  {k:>{width}}  {step}" for k, step in enumerate(self.steps)])


GRAPH_PLAN_FIELDS = ("policy", "params", "steps", "forward_evals", "cost", "peak_bytes", "method",
                     "status", "lower_bound", "solve_s", "details")


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
    """Validate ``plan`` against ``costs``: every step legal, and the evaluations, cost and
    peak it reports equal to its replay. Returns the replay; raises :class:`PlanError`."""
    checked_costs(costs, "check_graph_plan")
    if not isinstance(plan, GraphPlan):
        raise PlanError(f"expected a GraphPlan, got {type(plan).__name__}")
    counted = replay(costs, plan.steps)
    reported = (plan.forward_evals, plan.cost, plan.peak_bytes)
    if reported != (counted.forward_evals, counted.cost, counted.peak_bytes):
        raise PlanError(f"plan {plan.label()} reports (evaluations, cost, peak) = {reported}, "
                        f"but its replay gives {(counted.forward_evals, counted.cost, counted.peak_bytes)}")
    return counted


# -- why each value was kept: a per-value account of a plan (the per-value answer that a policy
# given as a predicate cannot show before anything runs) ------------------------------------------


@dataclass(frozen=True)
class ValueAccount:
    """One op value under a plan: its op and bytes, how many times it was computed, how many
    plan steps it stayed resident in all, and which backward steps read it (as a residual)."""

    node: int
    op: str | None
    nbytes: int
    computed: int
    resident_steps: int
    read_by: tuple[int, ...]

    @property
    def verdict(self) -> str:
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
                         f"{v.resident_steps:>10}  {readers}  ({v.verdict})")
        return "\n".join(lines)


def explain(costs: GraphCosts, plan: GraphPlan) -> Explanation:
    """The per-value account of ``plan`` on ``costs`` (replayed, so checked too)."""
    counted = replay(checked_costs(costs, "explain"), plan.steps)
    readers: dict[int, list[int]] = {i: [] for i in costs.op_nodes}
    for b in costs.backward_order:
        for r in costs.op_residuals[b]:
            readers[r].append(b)
    return Explanation(plan, tuple(
        ValueAccount(i, costs.ops[i], costs.sizes[i], counted.computed[i],
                     counted.resident_steps[i], tuple(readers[i])) for i in costs.op_nodes))
