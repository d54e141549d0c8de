"""``dtr`` with a ``bandwidth`` (docs/offload_model.md): DTR's run of the program, where an
eviction may copy the value to host memory and a later read may copy it back, when the
transfer hides behind compute.

The run keeps its steps as **groups**: the transfers listed in a step, the action that ends it,
then the frees after it. That lets a transfer be placed in a step already emitted, as long as
the plan stays valid and the step's time does not grow:

* **evict to the host**: when DTR evicts a value v that the program still reads, it is
  offloaded in the latest past step that (a) comes after the step that made v resident and not
  before the last step that read it, and (b) has room on the device → host channel: the step's
  offloaded bytes plus ``sizes[v]``, divided by the bandwidth, are at most the step's time. The
  value's device bytes are gone by now (they left as that step ended). With no such step it is
  freed and recomputed when needed, as without a bandwidth. A value that already has a host
  copy is just freed: the copy stays (the model keeps it until its last prefetch).
* **prefetch ahead**: when a step reads a value that is not resident but has a host copy, it is
  prefetched in the latest past step after the value left the device whose host → device
  channel has room (as above) and in whose window the device peak plus ``sizes[v]`` stays
  within the budget (the value then holds its bytes from there on). With no such step, the
  run stalls — ``prefetch v`` then ``wait v``, ``sizes[v] / bandwidth`` cost units — when that
  is no longer than computing v again (v and its ancestors that are neither resident nor on
  the host, once each); else it recomputes v.

* **host budget**: with ``host_budget_bytes``, an offload is placed only where the host copies
  counted from its step on, plus the value's bytes, stay within it. The run counts a copy from
  its offload until the program reads the value no more (it does not know the copy's last
  prefetch in advance; the model drops it then, never later), and a value whose copy it
  stopped counting is recomputed, never prefetched: so the plan's host peak is at most the
  budget.

So a hidden transfer never lengthens a step, and a stall is taken only where it is shorter
than the recomputation it replaces. Evicting to the host changes which values DTR evicts
next, so the run can still end slower than the recompute-only one: :func:`plan_dtr` keeps
the faster of the two.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..plans import GraphAction, GraphStep
from ...plans.transfers import step_time
from .dtr_run import DtrRun

OFFLOAD, PREFETCH, WAIT = GraphAction.OFFLOAD, GraphAction.PREFETCH, GraphAction.WAIT


@dataclass
class _Group:
    """One step of the plan: its transfers, its action (None: before the first step), the
    frees after it; its action's time (cost units), the bytes it moves each way, its device
    peak and the host bytes counted during it (bytes)."""

    action: GraphStep | None = None
    action_time: float = 0.0
    peak: int = 0
    transfers: list[GraphStep] = field(default_factory=list)
    frees: list[GraphStep] = field(default_factory=list)
    out_bytes: int = 0
    in_bytes: int = 0
    host: int = 0

    def time(self, bandwidth: float) -> float:
        """The step's time in cost units."""
        return step_time(self.action_time, self.out_bytes, self.in_bytes, bandwidth)

    def hides(self, bandwidth: float, out_bytes: int = 0, in_bytes: int = 0) -> bool:
        """Whether moving ``out_bytes`` more to the host and ``in_bytes`` more to the device
        during this step leaves its time unchanged."""
        return self.action is not None and step_time(
            self.action_time, self.out_bytes + out_bytes, self.in_bytes + in_bytes,
            bandwidth) <= self.time(bandwidth)


class OffloadRun(DtrRun):
    """A DTR run that may evict to the host and prefetch back (module docstring);
    ``bandwidth`` in bytes per cost unit, ``host_budget`` in bytes."""

    def __init__(self, *args: object, bandwidth: float, host_budget: float = math.inf,
                 **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        count = len(self.costs)
        self.bandwidth, self.host_budget = bandwidth, host_budget
        self.host_live = 0  # host bytes counted now (module docstring)
        self.groups = [_Group()]
        self.ready = [0] * count      # the group in which each value last became resident
        self.read_in = [0] * count    # the last group whose action read it
        self.gone = [0] * count       # the group after which it last left the device
        self.on_host = [False] * count
        self.offloaded: list[int] = []

    def plan_steps(self) -> list[GraphStep]:
        return [step for group in self.groups
                for step in (*group.transfers, *(() if group.action is None
                                                 else (group.action,)), *group.frees)]

    def emit(self, step: GraphStep, peak: int = 0) -> None:
        if step.action is GraphAction.FREE:
            self.groups[-1].frees.append(step)
            self.gone[step.node] = len(self.groups) - 1
            return
        costs, node = self.costs, step.node
        compute = step.action is GraphAction.COMPUTE
        action_time = costs.costs[node] if compute else costs.backward_costs[node]
        self.groups.append(_Group(step, action_time, peak, host=self.host_live))
        here = len(self.groups) - 1
        for read in costs.op_parents[node] if compute else costs.op_residuals[node]:
            self.read_in[read] = here
        if compute:
            self.ready[node] = here

    def evict(self, node: int) -> None:
        """Offload ``node`` in a past step where it hides (module docstring), else free it."""
        size = self.costs.sizes[node]
        if not self.reads[node] or self.on_host[node]:
            self.free(node)
            return
        highest = self.host_live
        for k in range(len(self.groups) - 1, max(self.ready[node] + 1, self.read_in[node]) - 1,
                       -1):
            group = self.groups[k]
            highest = max(highest, group.host)
            if highest + size > self.host_budget:
                break
            if group.hides(self.bandwidth, out_bytes=size):
                group.transfers.append(GraphStep(OFFLOAD, node))
                group.out_bytes += size
                for later in self.groups[k:]:
                    later.host += size
                self.host_live += size
                self.on_host[node], self.gone[node] = True, k
                self.offloaded.append(node)
                self.forget(node)
                return
        self.free(node)

    def program_step(self, action: GraphAction, node: int, needs: tuple[int, ...]) -> None:
        """As :meth:`DtrRun.program_step`; under a host budget, a host copy stops being
        counted once the program reads its value no more (and is not prefetched again)."""
        super().program_step(action, node, needs)
        if self.host_budget < math.inf:
            for read in needs:
                if self.on_host[read] and not self.reads[read]:
                    self.on_host[read] = False
                    self.host_live -= self.costs.sizes[read]

    def fetched(self, node: int) -> bool:
        """Bring ``node`` back from the host: prefetched where it hides, else by a stall when
        that is shorter than recomputing it; False when it is to be recomputed."""
        if not self.on_host[node]:
            return False
        group = self.ahead(node)
        if group is None:
            size = self.costs.sizes[node]
            if size / self.bandwidth > self.recompute_cost(node):
                return False
            self.make_room(size, f"prefetching v{node}")
            self.groups.append(_Group(GraphStep(WAIT, node), 0.0, self.live + size,
                                      [GraphStep(PREFETCH, node)], in_bytes=size,
                                      host=self.host_live))
            group = len(self.groups) - 1
        self.ready[node] = group
        self.resident.add(node)
        self.live += self.costs.sizes[node]
        self.classes.leave(node)
        self.touch((node,))
        return True

    def ahead(self, node: int) -> int | None:
        """Prefetch ``node`` in the latest past step where it hides and fits the budget from
        there on (raising the peaks it then counts in); its group, or None."""
        size, highest = self.costs.sizes[node], -math.inf
        for j in range(len(self.groups) - 1, self.gone[node], -1):
            group = self.groups[j]
            highest = max(highest, group.peak)
            if highest + size > self.budget:
                return None
            if group.hides(self.bandwidth, in_bytes=size):
                group.transfers.append(GraphStep(PREFETCH, node))
                group.in_bytes += size
                for later in self.groups[j:]:
                    later.peak += size
                return j
        return None

    def recompute_cost(self, node: int) -> float:
        """Cost units of computing ``node`` again: it and each op ancestor it needs that is
        neither resident nor on the host, once each."""
        costs, seen, stack = self.costs, {node}, [node]
        while stack:
            for parent in costs.op_parents[stack.pop()]:
                if (parent not in seen and parent not in self.resident
                        and not self.on_host[parent] and not costs.is_input(parent)):
                    seen.add(parent)
                    stack.append(parent)
        return math.fsum(costs.costs[i] for i in seen)
