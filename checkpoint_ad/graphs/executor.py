"""The graph executor: the only stateful part of the graph family. It runs any checked graph
plan step by step through a runner and tells the Meter what it holds; it never decides what
to keep.

What the Meter counts (bytes, each buffer once): the resident op values (kind ``value``) and
the live op cotangents (kind ``cotangent``), as docs/graph_model.md defines. Inputs, their
gradients and the constants the graph holds are reported apart; the temporaries inside one
op's forward or VJP are not counted (tracemalloc sees them).

Transfers (docs/offload_model.md) really move values: ``offload i`` copies i's value into a
host pool (a separate buffer, counted by a second Meter, kind ``host``, never by the first)
and releases the device copy when its step ends; ``prefetch i`` copies it back, held by the
device Meter from that moment and readable once its step ends; a host copy is dropped as the
last step that could read it ends (:func:`~checkpoint_ad.plans.transfers.host_drops`).

Two runners: :class:`ArrayGraphRunner` computes with arrays; :class:`SymbolicGraphRunner`
returns sized placeholders, so the very same executor predicts the Meter before anything runs.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any, Protocol

from ..engine.backend import buffer_root, xp
from ..engine.ops import Node
from ..errors import NonFiniteError, OpError
from ..plans.memory import Meter, Symbol
from .plans import GraphAction, GraphPlan
from .program import Program
from ..plans.transfers import host_drops

KINDS = ("value", "cotangent")
HOST_KINDS = ("host",)
STEP_ENDS = (GraphAction.COMPUTE, GraphAction.BACKWARD, GraphAction.WAIT)


class GraphRunner(Protocol):
    """Computes nodes and backward steps for the executor (arrays or placeholders)."""

    def compute(self, node: int, values: dict[int, Any]) -> Any: ...
    def seed(self, output: Any) -> Any: ...
    def backward(self, node: int, values: dict[int, Any], cotangent: Any
                 ) -> Iterable[tuple[int, Any]]: ...
    def accumulate(self, total: Any, contribution: Any) -> None: ...
    def copy(self, value: Any) -> Any: ...


class GraphExecutor:
    """Runs ``plan`` for ``program`` over ``runner`` under ``meter`` (device bytes) and
    ``host_meter`` (host bytes; a fresh one if not given); ``run()`` returns the output's value
    (from its first computation)."""

    def __init__(self, program: Program, plan: GraphPlan, runner: GraphRunner,
                 meter: Meter, host_meter: Meter | None = None) -> None:
        self.program, self.plan, self.runner, self.meter = program, plan, runner, meter
        self.host_meter = host_meter if host_meter is not None else Meter(False, HOST_KINDS)
        self.costs = program.costs
        self.values: dict[int, Any] = {}
        self.cotangents: dict[int, Any] = {}
        self.host: dict[int, Any] = {}      # the host pool: one copy per offloaded value
        self.leaving: list[int] = []        # offloaded in the open step
        self.arriving: dict[int, Any] = {}  # prefetched in the open step, not yet readable
        self.output_value: Any = None

    def run(self) -> Any:
        handlers = {GraphAction.COMPUTE: self._compute, GraphAction.FREE: self._free,
                    GraphAction.BACKWARD: self._backward, GraphAction.OFFLOAD: self._offload,
                    GraphAction.PREFETCH: self._prefetch, GraphAction.WAIT: lambda node: None}
        drops = host_drops(self.plan.steps)
        for position, (action, node) in enumerate(self.plan.steps):
            handlers[action](node)
            if action in STEP_ENDS:
                self._end_step(drops.get(position, ()))
        return self.output_value

    def _compute(self, node: int) -> None:
        value = self.runner.compute(node, self.values)
        self.values[node] = value
        self.meter.hold(("value", node), "value", [value])
        if node == self.costs.output and self.output_value is None:
            self.output_value = value

    def _offload(self, node: int) -> None:
        self.host[node] = copied = self.runner.copy(self.values[node])
        self.host_meter.hold(("host", node), "host", [copied])
        self.leaving.append(node)

    def _prefetch(self, node: int) -> None:
        self.arriving[node] = copied = self.runner.copy(self.host[node])
        self.meter.hold(("value", node), "value", [copied])

    def _end_step(self, dropped: Iterable[int]) -> None:
        """The open step ends: offloaded device copies are released, prefetched copies become
        readable, and the host copies no later step reads are dropped."""
        for node in self.leaving:
            self._free(node)
        self.leaving.clear()
        self.values.update(self.arriving)
        self.arriving.clear()
        for node in dropped:
            del self.host[node]
            self.host_meter.release(("host", node))

    def _free(self, node: int) -> None:
        del self.values[node]
        self.meter.release(("value", node))

    def _backward(self, node: int) -> None:
        if node == self.costs.output:
            self.cotangents[node] = self.runner.seed(self.values[node])
            self.meter.hold(("cotangent", node), "cotangent", [self.cotangents[node]])
        for parent, contribution in self.runner.backward(node, self.values,
                                                         self.cotangents[node]):
            held = self.cotangents.get(parent)
            if held is None:
                self.cotangents[parent] = contribution
                self.meter.hold(("cotangent", parent), "cotangent", [contribution])
            else:
                self.runner.accumulate(held, contribution)
        del self.cotangents[node]
        self.meter.release(("cotangent", node))


class ArrayGraphRunner:
    """Computes with arrays. Every value and cotangent it hands over owns its buffer (a view or
    an alias is copied), so the Meter counts exactly ``sizes[i]`` per value. Gradients of
    the inputs accumulate into ``gradients`` (allocated before the run; reported apart).

    ``verify`` checks that every recomputation reproduces the first computation bit for bit;
    ``finite`` that every value is finite. ``evaluations`` counts op computations.
    """

    def __init__(self, program: Program, input_values: dict[int, Any], *,
                 verify: bool = False, finite: bool = False) -> None:
        self.program, self.costs = program, program.costs
        self.inputs = input_values
        self.gradients = {i: xp.zeros_like(v) for i, v in input_values.items()}
        self.verify, self.finite = verify, finite
        self.digests: dict[int, str] = {}
        self.evaluations = 0

    def _operand(self, operand: Any, constant: bool, values: dict[int, Any]) -> Any:
        if constant:
            return operand
        return self.inputs[operand] if operand in self.inputs else values[operand]

    def compute(self, node: int, values: dict[int, Any]) -> Any:
        application = self.program.applications[node]
        operands = [self._operand(o, c, values) for o, c in
                    zip(application.operands, application.constant)]
        value = application.op.forward(*operands, **application.params)
        self.evaluations += 1
        value = _owned(value, node in self.program.views)
        if self.verify:
            self._verify(node, value)
        if self.finite and value.dtype.kind == "f" and not xp.isfinite(value).all():
            raise NonFiniteError(f"v{node} ({application.op.name}) produced NaN or Inf")
        return value

    def _verify(self, node: int, value: Any) -> None:
        digest = hashlib.blake2b(xp.ascontiguousarray(value).tobytes(), digest_size=16).hexdigest()
        first = self.digests.setdefault(node, digest)
        if first != digest:
            raise OpError(f"v{node} ({self.program.applications[node].op.name}) recomputed "
                          "values that differ from its first computation; ops must be "
                          "deterministic and must not write into their inputs")

    def seed(self, output: Any) -> Any:
        return xp.ones_like(xp.asarray(output))

    def backward(self, node: int, values: dict[int, Any], cotangent: Any
                 ) -> list[tuple[int, Any]]:
        application = self.program.applications[node]
        op, shapes = application.op, self.program.shapes
        operands = tuple(operand if constant else self.inputs.get(operand, values.get(operand))
                         for operand, constant in zip(application.operands, application.constant))
        in_shapes = tuple(xp.shape(operand) if constant else shapes[operand]
                          for operand, constant in zip(application.operands, application.constant))
        traced = tuple(None if constant else operand
                       for operand, constant in zip(application.operands, application.constant))
        record = Node(op, traced, op.residuals(operands, values.get(node), application.params),
                      in_shapes, application.params, shapes[node], self.program.dtypes[node])
        out, taken = [], {id(buffer_root(cotangent))}
        taken.update(id(buffer_root(v)) for v in values.values())
        # one contribution per operand, in operand order, as the tape adds them (bit for bit)
        for operand, constant, part in zip(application.operands, application.constant,
                                           op.vjp(cotangent, record)):
            if constant or part is None:
                continue
            if operand in self.inputs:
                self.accumulate(self.gradients[operand], part)
            elif self.costs.has_cotangent[operand]:
                part = xp.asarray(part, dtype=self.program.dtypes[operand])
                part = _owned(part, id(buffer_root(part)) in taken)
                taken.add(id(part))
                out.append((operand, part))
        return out

    @staticmethod
    def accumulate(total: Any, contribution: Any) -> None:
        total += xp.reshape(contribution, total.shape)

    @staticmethod
    def copy(value: Any) -> Any:
        """A transfer: a separate buffer holding the same bits."""
        return xp.array(value, copy=True)


def _owned(value: Any, copy: bool) -> Any:
    """``value`` as an array that owns its buffer (copied when asked, or when it is a view,
    a numpy scalar or read-only)."""
    if copy or not isinstance(value, xp.ndarray) or buffer_root(value) is not value \
            or not value.flags.writeable:
        return xp.array(value, copy=True)
    return value


class SymbolicGraphRunner:
    """Computes nothing: placeholders of each node's exact size, and the cotangents the
    backward steps would create (docs/graph_model.md)."""

    def __init__(self, program: Program) -> None:
        self.costs = program.costs

    def compute(self, node: int, values: dict[int, Any]) -> Symbol:
        return Symbol(self.costs.sizes[node])

    def seed(self, output: Symbol) -> Symbol:
        return Symbol(output.nbytes)

    def backward(self, node: int, values: dict[int, Any], cotangent: Any
                 ) -> list[tuple[int, Symbol]]:
        parents = self.costs.op_parents[node] if self.costs.differentiable[node] else ()
        return [(p, Symbol(self.costs.sizes[p])) for p in parents if self.costs.has_cotangent[p]]

    def accumulate(self, total: Any, contribution: Any) -> None:
        """In place: no new bytes."""

    def copy(self, value: Symbol) -> Symbol:
        return Symbol(value.nbytes)


def predict_meters(program: Program, plan: GraphPlan, record_timeline: bool = False
                   ) -> tuple[Meter, Meter]:
    """Run ``plan`` on placeholders: the device Meter (predicted peak, and timeline) and the
    host Meter (predicted host peak)."""
    meter, host = Meter(record_timeline, KINDS), Meter(False, HOST_KINDS)
    GraphExecutor(program, plan, SymbolicGraphRunner(program), meter, host).run()
    return meter, host


def predict_meter(program: Program, plan: GraphPlan, record_timeline: bool = False) -> Meter:
    """Run ``plan`` on placeholders; the Meter holds the predicted peak (and timeline)."""
    return predict_meters(program, plan, record_timeline)[0]
