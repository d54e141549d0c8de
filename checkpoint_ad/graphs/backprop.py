"""Back-propagation through any traced function under a graph storage policy.

``backprop_graph(fn, *args, argnums=0, policy="store_all", **params)``: a structure pass over
``fn`` (it keeps no value beyond its forward use and is not counted as evaluations), a plan
from the policy, the plan's peak predicted by running the executor on placeholders, then the
plan run from the inputs under the Meter and tracemalloc.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..engine import rng
from ..checks import function, real_number
from ..engine.autodiff import argument_numbers
from ..engine.graph import structure
from ..errors import BudgetError, NonScalarOutputError, OpError, PlanError, PolicyError
from ..plans.memory import Meter, traced
from ..plans.registry import check_made_with
from .costs import GraphCosts
from .executor import HOST_KINDS, KINDS, ArrayGraphRunner, GraphExecutor, predict_meters
from .plans import GraphPlan, check_graph_plan
from .policies import get_policy, plan_graph, without_transfers
from .program import Program, compile_graph


@dataclass(frozen=True)
class GraphStats:
    """What one graph run cost. Counts are exact; bytes are bytes; times are seconds.

    * ``forward_evals``: op computations the run performed (the structure pass not counted);
      ``cost``: the sum of the computed ops' costs.
    * ``peak_bytes``: the Meter's exact peak of activation bytes (resident op values and live
      op cotangents, docs/graph_model.md); ``peak_bytes_by_kind`` splits it into ``value`` and
      ``cotangent``; ``predicted_peak_bytes``: the same from the executor run on
      placeholders before the real run; ``measured_peak_bytes``: tracemalloc's peak over the
      run's baseline (None when not traced; it also sees temporaries inside an op).
    * Reported apart: ``input_bytes`` (the differentiated arguments), ``gradient_bytes``
      (their gradients) and ``constant_bytes`` (constant operands the graph holds).
    * ``host_peak_bytes``: the host Meter's peak (copies offloaded to host memory, never part
      of ``peak_bytes``; docs/offload_model.md), and ``predicted_host_peak_bytes`` the same
      predicted on placeholders.
    """

    forward_evals: int
    cost: float
    peak_bytes: int
    predicted_peak_bytes: int
    measured_peak_bytes: int | None
    wall_s: float
    peak_bytes_by_kind: dict[str, int]
    input_bytes: int
    gradient_bytes: int
    constant_bytes: int
    timeline: list[int] = field(repr=False, default_factory=list)
    host_peak_bytes: int = 0
    predicted_host_peak_bytes: int = 0


@dataclass(frozen=True)
class GraphResult:
    """``value`` (the output), ``grads`` (shaped like ``value_and_grad``'s), the ``plan`` that
    ran, ``stats``, and the ``program`` (costs and operations) it ran on."""

    value: Any
    grads: Any
    plan: GraphPlan
    stats: GraphStats
    program: Program = field(repr=False)


@dataclass(frozen=True)
class Traced:
    """A function traced once by the structure pass: its ``program`` (costs and operations),
    the differentiated ``leaves`` and how to shape their gradients. :meth:`run` runs any plan
    of ``program.costs`` from the same inputs, as often as wanted."""

    name: str
    program: Program
    leaves: list[Any]
    arguments: list
    argnums: int | tuple[int, ...]

    def run(self, plan: GraphPlan, verify: bool = False, check_finite: bool = False,
            max_memory: int | None = None, trace_memory: bool = True,
            record_timeline: bool = False) -> GraphResult:
        """Check ``plan``, predict its peak, refuse it above ``max_memory``, run it."""
        program = self.program
        _check_max_memory(max_memory)
        check_graph_plan(program.costs, plan)
        predicted, predicted_host = predict_meters(program, plan)
        if max_memory is not None and predicted.peak > max_memory:
            raise BudgetError(f"policy {plan.policy!r} is predicted to hold {predicted.peak} "
                              f"bytes of activations at its peak, more than "
                              f"max_memory={max_memory}")
        runner = ArrayGraphRunner(program, dict(enumerate(self.leaves)), verify=verify,
                                  finite=check_finite)
        meter, host = Meter(record_timeline, KINDS), Meter(False, HOST_KINDS)
        with traced(trace_memory) as probe:
            started = time.perf_counter()
            value = GraphExecutor(program, plan, runner, meter, host).run()
            wall = time.perf_counter() - started
        measured = None if probe is None else probe.peak
        stats = GraphStats(runner.evaluations, plan.cost, meter.peak, predicted.peak, measured,
                           wall, dict(meter.peak_by_kind),
                           sum(int(v.nbytes) for v in self.leaves),
                           sum(int(g.nbytes) for g in runner.gradients.values()),
                           program.constant_bytes, list(meter.timeline or []), host.peak,
                           predicted_host.peak)
        return GraphResult(value, self._shaped(runner), plan, stats, program)

    def _shaped(self, runner: ArrayGraphRunner) -> Any:
        """The gradients shaped like ``value_and_grad``'s for ``argnums``."""
        gradients = [runner.gradients[i] for i in range(len(self.leaves))]
        shaped = []
        for _, count, unflatten in self.arguments:
            shaped.append(unflatten(gradients[:count]))
            gradients = gradients[count:]
        return tuple(shaped) if isinstance(self.argnums, (tuple, list)) else shaped[0]


def trace_function(fn: Callable[..., Any], *args: Any, argnums: int | tuple[int, ...] = 0,
                   seed: int | None = None) -> Traced:
    """The structure pass over ``fn`` at ``args`` (see :func:`backprop_graph`), compiled."""
    name = getattr(fn, "__name__", "function")
    function(fn, "backprop_graph: fn")
    if seed is not None:
        seed = rng.check_seed(seed, "backprop_graph")
    numbers = argument_numbers(argnums, len(args), name)
    graph, leaves, arguments = _structure_pass(fn, args, numbers, name, seed)
    return Traced(name, compile_graph(graph), leaves, arguments, argnums)


def backprop_graph(fn: Callable[..., Any], *args: Any, argnums: int | tuple[int, ...] = 0,
                   policy: str = "store_all", seed: int | None = None, verify: bool = False,
                   check_finite: bool = False, max_memory: int | None = None,
                   trace_memory: bool = True, record_timeline: bool = False,
                   plan: GraphPlan | None = None, **params: Any) -> GraphResult:
    """Differentiate ``fn`` at ``args`` following the plan of graph policy ``policy``.

    ``seed`` fixes the random stream the structure pass draws from (dropout masks are held by
    the graph as constants, so every recomputation sees the same ones); ``verify`` checks that
    recomputations are bit-identical to first computations; ``check_finite`` that values are
    finite; ``max_memory`` refuses, before running, a plan predicted to hold more activation
    bytes. ``plan`` runs a plan made earlier by ``policy`` (perhaps read by
    :meth:`GraphPlan.from_json`) instead of planning: one of another policy or parameters is
    refused before ``fn`` runs, one that does not fit this function's graph (another graph,
    other sizes or costs) before anything else runs. Other keyword arguments are the policy's
    parameters; ``bandwidth`` (bytes per cost unit) lets ``optimal`` and ``dtr`` move values
    to host memory and back (docs/offload_model.md), and the result's stats count host bytes
    apart.
    """
    _check_max_memory(max_memory)  # before the structure pass runs ``fn``
    if plan is not None:
        if not isinstance(plan, GraphPlan):
            raise PolicyError(f"backprop_graph: plan must be a GraphPlan, got "
                              f"{type(plan).__name__}")
        params = without_transfers(policy, params)
        get_policy(policy).check_params(**params)  # planning would have refused them
        check_made_with("backprop_graph", plan.policy, plan.params, policy, params)
    traced = trace_function(fn, *args, argnums=argnums, seed=seed)
    costs = traced.program.costs
    chosen = plan_graph(policy, costs, **params) if plan is None else _fitted(plan, costs)
    return traced.run(chosen, verify, check_finite, max_memory, trace_memory, record_timeline)


def _fitted(plan: GraphPlan, costs: GraphCosts) -> GraphPlan:
    """``plan``, refused unless it fits ``costs`` (:func:`check_graph_plan`: every step legal
    on this graph and the evaluations, cost and peak it reports equal to its replay)."""
    try:
        check_graph_plan(costs, plan)
    except PlanError as error:
        raise PlanError(f"backprop_graph: the plan given does not fit this function's graph "
                        f"({len(costs.op_nodes)} ops, {len(costs)} nodes): {error}") from None
    return plan


def _check_max_memory(max_memory: object) -> None:
    """``max_memory``: None (no limit) or a finite number of bytes > 0."""
    if max_memory is not None:
        real_number(max_memory, "backprop_graph: max_memory (bytes)")


def _structure_pass(fn: Callable[..., Any], args: tuple, numbers: tuple[int, ...], name: str,
                    seed: int | None) -> tuple[Any, list[Any], list]:
    """:func:`~checkpoint_ad.engine.graph.structure` under the random stream of ``seed``;
    the output must be a traced scalar."""
    token = rng.enter_stage(seed if seed is not None else rng.fresh_seed(), 0)
    try:
        graph, leaves, arguments = structure(fn, args, numbers, name)
    finally:
        rng.leave_stage(token)
    if graph.output is None:
        raise OpError(f"{name}: the output does not depend on the differentiated arguments; "
                      "there is nothing to plan")
    output = graph.variables[graph.output]
    if math.prod(output.shape) != 1:
        raise NonScalarOutputError(f"{name}: the function's output must be a scalar (size 1) "
                                   f"to be differentiated, got shape {output.shape}")
    return graph, leaves, arguments
