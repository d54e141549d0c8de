"""Replay: what a plan costs and holds as it runs, known before anything runs.

:func:`forward_cost` sums the stage costs of its evaluations; :func:`hold_last_tape` makes the
plan of a chain that returns its output before its cotangent is known; and the plan runs on
sized placeholders for the bytes it will hold.

The executor runs the plan over a :class:`SymbolicRunner`, which evaluates nothing and returns
placeholders sized from :class:`~.costs.ChainCosts`, so the Meter sees the very holds and
releases of a real run: its peak is the **whole activation peak** of docs/cost_model.md (stored
checkpoints and held tapes, the working value, a turn's transient tape, the cotangents; x_0's
copy included; parameters apart), in bytes. That peak is what ``budget_bytes`` bounds, for
every chain policy and the torch bridge.

A tape's bytes are read from the costs: stage t's held tape of ``b_t`` bytes is its private
residuals (``b_t − a_t − c_t``), its input ``x_{t-1}`` when it keeps it (``c_t`` bytes, shared
with a stored ``x_{t-1}``) and its output ``x_t`` (``a_t`` bytes); a turn holds the private
residuals and, when ``tape_keeps_output``, the output. Costs whose tapes are smaller than that
(``b_t < a_t + c_t``, possible in hand-made costs) describe no real run: they are refused.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import PlanError
from ..plans.memory import Meter, Symbol
from ..plans.transfers import bandwidth_value, step_time
from .actions import STEP_ENDS
from .costs import ChainCosts
from .executor import HOST_KINDS, Executor
from .plans import Action, Plan, PlanBuilder


def forward_cost(plan: Plan, costs: ChainCosts) -> float:
    """Sum of the stage costs ``u_t`` over every evaluation in the plan."""
    prefix = [0.0]
    for u in costs.compute:
        prefix.append(prefix[-1] + u)
    return sum(prefix[step.end] - prefix[step.stage - 1] for step in plan if step.evaluations)


def hold_last_tape(plan: Plan) -> Plan:
    """The same plan with its turn of stage n split into a held tape and a backward step.

    Used when the chain's output must be returned before its cotangent is known (a chain
    inside a larger differentiated function): ``x_n`` then lives in the held tape. This may
    store one more item than ``plan``; the evaluation count is unchanged.
    """
    builder = PlanBuilder(plan.n)
    for step in plan:
        if step.action is Action.TURN and step.stage == plan.n:
            builder.tape(step.stage)
            builder.backward(step.stage)
        else:
            builder.add(step.action, step.stage, step.end)
    return builder.build(plan.policy, dict(plan.params))


@dataclass
class _SymbolicTape:
    output: Symbol
    residuals: list[Symbol]


def private_tape_bytes(costs: ChainCosts) -> tuple[int, ...]:
    """Each stage's tape bytes besides its input and output, ``b_t − a_t − c_t``; costs where
    that is negative describe no real run (:class:`PlanError` names the first such stage)."""
    private = tuple(b - a - c for b, a, c in
                    zip(costs.tape_bytes, costs.state_bytes[1:], costs.tape_input_bytes))
    if min(private) < 0:
        t = next(t for t, size in enumerate(private, 1) if size < 0)
        raise PlanError(f"the whole activation peak needs each held tape to hold its output: "
                        f"stage {t}'s tape_bytes {costs.tape_bytes[t - 1]:,} is below its "
                        f"state_bytes {costs.state_bytes[t]:,} plus tape_input_bytes "
                        f"{costs.tape_input_bytes[t - 1]:,}; such hand-made sizes can bound "
                        f"checkpoints and held tapes alone (optimal's store_budget_bytes)")
    return private


class SymbolicRunner:
    """Evaluates nothing: returns placeholders sized from a chain's :class:`ChainCosts`."""

    def __init__(self, costs: ChainCosts) -> None:
        self.costs = costs
        self.sizes = costs.state_bytes
        self.private = private_tape_bytes(costs)

    def own_input(self, x0: Any) -> Symbol:
        return Symbol(self.sizes[0])

    def advance(self, t: int, x: Any) -> Symbol:
        return Symbol(self.sizes[t])

    def tape(self, t: int, x: Symbol, keep_output: bool = True) -> _SymbolicTape:
        output = Symbol(self.sizes[t])
        residuals = [Symbol(self.private[t - 1])]
        residuals += [x] if self.costs.tape_input_bytes[t - 1] else []
        residuals += [output] if self.costs.tape_keeps_output[t - 1] else []
        return _SymbolicTape(output, residuals)

    def output(self, taped: _SymbolicTape) -> Symbol:
        return taped.output

    def residuals(self, taped: _SymbolicTape) -> list[Symbol]:
        return taped.residuals

    def backward(self, t: int, taped: _SymbolicTape, cotangent: Any) -> Symbol:
        return Symbol(self.sizes[t - 1])

    def copy(self, value: Symbol) -> Symbol:
        return Symbol(value.nbytes)

    def offload_tape(self, taped: _SymbolicTape) -> _SymbolicTape:
        copies: dict[int, Symbol] = {}

        def copied(symbol: Symbol) -> Symbol:
            return copies.setdefault(id(symbol), Symbol(symbol.nbytes))
        return _SymbolicTape(copied(taped.output), [copied(r) for r in taped.residuals])

    def host_arrays(self, host_tape: _SymbolicTape) -> list[Symbol]:
        return host_tape.residuals + [host_tape.output]

    def release_tape(self, taped: _SymbolicTape) -> None:
        pass

    def prefetch_tape(self, taped: _SymbolicTape, host_tape: _SymbolicTape) -> _SymbolicTape:
        return self.offload_tape(host_tape)


class RunSummingRunner(SymbolicRunner):
    """A :class:`SymbolicRunner` whose runs of advances the executor sums up at once (the same
    peak, fewer Meter events): ``pair_max(first, last)`` is the most bytes two consecutive
    states ``x_{t-1}``, ``x_t`` take, t in first..last, from a sparse table (O(1) a query)."""

    def __init__(self, costs: ChainCosts) -> None:
        super().__init__(costs)
        pairs = [0] + [a + b for a, b in zip(self.sizes, self.sizes[1:])]  # pairs[t], t >= 1
        self._table = [pairs]
        while 2 ** len(self._table) <= len(pairs):
            half, last = 2 ** (len(self._table) - 1), self._table[-1]
            self._table.append([max(last[i], last[i + half])
                                for i in range(len(pairs) - 2 * half + 1)])

    def pair_max(self, first: int, last: int) -> int:
        row = (last - first + 1).bit_length() - 1
        values = self._table[row]
        return max(values[first], values[last - 2 ** row + 1])


def as_run(plan: Plan, costs: ChainCosts) -> Plan:
    """The plan as it runs on this chain: stage n's tape held when the chain returns its
    output before its cotangent is known (``costs.returns_output``)."""
    return hold_last_tape(plan) if costs.returns_output else plan


def predict_meter(plan: Plan, costs: ChainCosts, record_timeline: bool = True,
                  host_meter: Meter | None = None) -> Meter:
    """Run ``plan`` symbolically; the returned Meter holds the predicted peak and timeline (of
    device bytes); ``host_meter``, if given, receives the host copies' bytes."""
    meter = Meter(record_timeline=record_timeline)
    executor = Executor(plan, SymbolicRunner(costs), meter, host_meter)
    executor.forward(None)
    executor.reverse(lambda x_n: Symbol(costs.state_bytes[-1]))
    return meter


def host_peak_bytes(plan: Plan, costs: ChainCosts) -> int:
    """The peak bytes of the host copies ``plan`` holds on the chain of ``costs``
    (docs/chain_offload.md); 0 for a plan without transfers."""
    if not any(step.action is Action.OFFLOAD for step in plan):
        return 0
    host = Meter(False, HOST_KINDS)
    predict_meter(as_run(plan, costs), costs, record_timeline=False, host_meter=host)
    return host.peak


def plan_time(plan: Plan, costs: ChainCosts, bandwidth: object = None) -> float:
    """The time of ``plan`` on the chain of ``costs``, in cost units (docs/chain_offload.md):
    the sum of its steps' times, transfers timed at ``bandwidth`` bytes per cost unit (default:
    the plan's own ``bandwidth`` parameter). A plan without transfers takes its forward cost
    plus the sum of the backward costs."""
    if bandwidth is None:
        bandwidth = dict(plan.params).get("bandwidth")
    rate = bandwidth_value(bandwidth, "plan_time")
    prefix = [0.0]
    for u in costs.compute:
        prefix.append(prefix[-1] + u)
    backward, held, on_host = costs.backward_costs, set(), {}
    total, offloaded, prefetched = 0.0, 0, 0
    for step in as_run(plan, costs):
        action, t = step.action, step.stage
        if action is Action.OFFLOAD or action is Action.PREFETCH:
            if action is Action.OFFLOAD:
                on_host[t] = t in held
            size = costs.tape_bytes[t - 1] if on_host[t] else costs.state_bytes[t]
            offloaded += size if action is Action.OFFLOAD else 0
            prefetched += size if action is Action.PREFETCH else 0
            continue
        if action not in STEP_ENDS:
            continue
        held.add(t) if action is Action.TAPE else held.discard(t)
        action_time = (prefix[step.end] - prefix[t - 1] if step.evaluations else 0.0) + (
            backward[t - 1] if action in (Action.TURN, Action.BACKWARD) else 0.0)
        total += step_time(action_time, offloaded, prefetched, rate)
        offloaded = prefetched = 0
    return total


def peak_bytes(plan: Plan, costs: ChainCosts) -> int:
    """The whole activation peak (bytes) of ``plan`` as it runs on the chain of ``costs``
    (:func:`predict_meter`'s peak, runs of advances summed up at once)."""
    meter = Meter(record_timeline=False)
    executor = Executor(as_run(plan, costs), RunSummingRunner(costs), meter)
    executor.forward(None)
    executor.reverse(lambda x_n: Symbol(costs.state_bytes[-1]))
    return meter.peak
