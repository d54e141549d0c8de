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

Activation bytes = resident op values + live op cotangents. :func:`.replay.replay` is the only
place that applies these rules; the planners, the checker and the tests all go through it. The
vocabulary lives in :mod:`.actions` (its names importable from here too, as from the package)
and the replay in :mod:`.replay`.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from ..checks import real_number, whole_number
from ..errors import PlanError
from ..plans.plan_json import (dump_plan, json_able, load_plan, mapping_field, read_field,
                               reading, steps_field, text_field)
from ..plans.transfers import bandwidth_value, check_host_budget
from .actions import TRANSFER_ACTIONS, GraphAction, GraphStep
from .costs import GraphCosts, checked_costs
from .replay import Replay, replay

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
