"""Checkpointed back-propagation through a chain: plan, predict, run, measure.

``backprop(chain, x0, loss, policy, **params)``: profile the chain once (sizes, not counted),
let the policy plan from those sizes, predict the peak bytes by running the plan symbolically,
then run it for real under the Meter and tracemalloc.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import policies
from ..checks import real_number, whole_number
from ..engine import rng
from ..engine.autodiff import as_float_array, value_and_grad
from ..engine.backend import buffer_root, xp
from .chain import Chain, ChainProfile, Stage, profile_chain
from ..errors import BudgetError, PlanError, PolicyError, StageError
from .executor import HOST_KINDS, ArrayRunner, Executor
from .replay import predict_meter
from ..plans.memory import Meter, traced
from ..plans.registry import check_made_with
from ..engine.ops import Tracer
from .costs import ChainCosts
from .plans import Plan, check_plan
from ..engine.primitives import sum as sum_all
from ..engine.trees import flatten

Loss = Callable[[Any], Any]


@dataclass(frozen=True)
class Stats:
    """What one run cost. Counts are exact; bytes are bytes; times are seconds.

    * ``forward_evals``, ``peak_stored``, ``peak_bytes``, ``peak_bytes_by_kind``,
      ``predicted_peak_bytes``, ``measured_peak_bytes`` (None when not traced),
      ``parameter_bytes``, ``parameter_gradient_bytes``: as docs/cost_model.md defines them.
    * ``host_peak_bytes``, ``predicted_host_peak_bytes``: the peak bytes of the host copies
      (measured by the host Meter; predicted by the replay), docs/chain_offload.md.
    """

    forward_evals: int
    peak_stored: int
    peak_bytes: int
    predicted_peak_bytes: int
    measured_peak_bytes: int | None
    wall_s: float
    peak_bytes_by_kind: dict[str, int]
    parameter_bytes: int
    parameter_gradient_bytes: int
    timeline: list[tuple[int, int]] = field(repr=False, default_factory=list)
    host_peak_bytes: int = 0
    predicted_host_peak_bytes: int = 0


@dataclass(frozen=True)
class Result:
    """``value`` (the loss), ``grad_input`` (dL/dx0), ``grad_params`` (one entry per stage, the
    structure of its params; stages sharing a params object each show the summed gradient),
    ``stats`` and the ``plan`` that ran."""

    value: Any
    grad_input: Any
    grad_params: list[Any]
    stats: Stats
    plan: Plan


def plan(policy: str, n: int | None = None, costs: ChainCosts | None = None,
         **params: Any) -> Plan:
    """The plan ``policy`` makes for ``n`` unit stages (or for ``costs``), without running."""
    if costs is None:
        costs = ChainCosts.unit(whole_number(n, "plan: n", minimum=1, error=PolicyError))
    return policies.make_plan(policy, costs, **params)


def _nbytes(trees: list[Any]) -> int:
    """Bytes of the distinct buffers behind the leaves of ``trees`` (each buffer once)."""
    roots = {id(root): root for tree in trees
             for root in map(buffer_root, map(xp.asarray, flatten(tree)[0]))}
    return sum(int(root.nbytes) for root in roots.values())


def _check_chain(chain: Any) -> Chain:
    if isinstance(chain, Chain):
        return chain
    if isinstance(chain, Sequence):
        return Chain(chain)
    raise StageError(f"expected a Chain or a list of stages, got {type(chain).__name__}")


class PreparedBackprop:
    """Everything :func:`backprop` does before running, done: the chain profiled, the plan made
    and checked, its peak predicted, the executor built. :meth:`run` (once) runs the two
    sweeps only, so that probes wrapped around it see the run and nothing else."""

    def __init__(self, chain: Chain, x0: Any, plan: Plan, predicted: Meter, runner: ArrayRunner,
                 meter: Meter, loss: Loss | None, predicted_host: Meter | None = None) -> None:
        self.chain, self.x0, self.plan, self.predicted = chain, x0, plan, predicted
        self.runner, self.meter = runner, meter
        self.predicted_host = predicted_host if predicted_host is not None else Meter(False)
        self.executor = Executor(plan, runner, meter)
        self._objective = value_and_grad(loss or sum_all)
        self._value: Any = None
        self._ran = False

    def _seed_cotangent(self, x_n: Any) -> Any:
        self._value, gradient = self._objective(x_n)
        return gradient

    def run(self, trace_memory: bool = True) -> Result:
        if self._ran:
            raise StageError("a prepared backprop runs once; prepare another for another run")
        self._ran = True
        with traced(trace_memory) as probe:
            start = time.perf_counter()
            self.executor.forward(self.x0)
            grad_input = self.executor.reverse(self._seed_cotangent)
            wall = time.perf_counter() - start
        measured = None if probe is None else probe.peak
        return self._result(grad_input, wall, measured)

    def _result(self, grad_input: Any, wall: float, measured: int | None) -> Result:
        groups, runner, meter = self.chain.parameter_groups(), self.runner, self.meter
        gradients = {id(group): flatten(group)[1](totals)
                     for group, totals in zip(groups, runner.gradients)}
        timeline = list(enumerate(meter.timeline, 1)) if meter.timeline is not None else []
        stats = Stats(runner.evaluations, self.executor.peak_stored, meter.peak,
                      self.predicted.peak, measured, wall, dict(meter.peak_by_kind),
                      _nbytes(groups), _nbytes(runner.gradients),
                      timeline, self.executor.host_meter.peak, self.predicted_host.peak)
        grad_params = [None if s.params is None else gradients[id(s.params)]
                       for s in self.chain.stages]
        return Result(self._value, grad_input, grad_params, stats, self.plan)


def _check_profile(profile: ChainProfile, chain: Chain, x0: Any, verify: bool) -> None:
    """A profile given for reuse must describe this chain on an input like ``x0``."""
    if len(profile.stages) != chain.n or profile.input_bytes != x0.nbytes:
        raise StageError(f"the profile given describes {len(profile.stages)} stages on a "
                         f"{profile.input_bytes}-byte input, not this chain's {chain.n} stages "
                         f"on {x0.nbytes} bytes")
    if verify and profile.stages[0].digest is None:
        raise StageError("verify=True needs a profile made with verify=True on this very input")


def _given_plan(plan: object, chain: Chain, policy: str, params: dict[str, Any]) -> Plan:
    """A plan made earlier (perhaps read by :meth:`Plan.from_json`), checked before anything
    runs: a valid plan (:func:`check_plan`) for this chain's number of stages, made by
    ``policy`` with the parameters given beside it (those it names). A chain plan depends on
    the chain's costs only through that number: it is valid for any chain of n stages."""
    if not isinstance(plan, Plan):
        raise PolicyError(f"backprop: plan must be a Plan, got {type(plan).__name__}")
    if plan.n != chain.n:
        raise PlanError(f"backprop: the plan given is for a chain of {plan.n} stages; this "
                        f"chain has {chain.n}")
    check_made_with("backprop", plan.policy, dict(plan.params), policy, params)
    try:
        check_plan(plan)
    except PlanError as error:
        raise PlanError(f"backprop: the plan given is not valid: {error}") from None
    return plan


def prepare_backprop(chain: Chain | Sequence[Stage], x0: Any, loss: Loss | None = None,
                     policy: str = "store_all", *, seed: int | None = None, costs: Any = "unit",
                     verify: bool = False, check_finite: bool = False,
                     max_memory: int | None = None, record_timeline: bool = False,
                     profile: ChainProfile | None = None, plan: Plan | None = None,
                     **policy_params: Any) -> PreparedBackprop:
    """Profile, plan, predict and build the executor for :func:`backprop` (see there)."""
    chain = _check_chain(chain)
    if isinstance(x0, Tracer):
        raise StageError("backprop runs its own reverse sweep; inside a differentiated "
                         "function use checkpoint_ad.chains.sequential instead")
    x0 = as_float_array(x0, "backprop input x0")
    for number, group in enumerate(chain.parameter_groups()):
        for leaf in flatten(group)[0]:
            as_float_array(leaf, f"backprop: the params of stage group {number}")
    seed = rng.fresh_seed() if seed is None else rng.check_seed(seed, "backprop")
    if max_memory is not None:
        real_number(max_memory, "backprop: max_memory (bytes)")
    policies.check_params(policy, **policy_params)  # before the profiling sweep runs
    if plan is not None:
        plan = _given_plan(plan, chain, policy, policy_params)
    if profile is None:
        profile = profile_chain(chain, x0, seed, verify=verify, finite=check_finite)
    else:
        _check_profile(profile, chain, x0, verify)
    chain_costs = profile.costs(costs)
    chosen = (policies.make_plan(policy, chain_costs, **policy_params) if plan is None
              else plan)
    predicted_host = Meter(False, HOST_KINDS)
    predicted = predict_meter(chosen, chain_costs, record_timeline=record_timeline,
                              host_meter=predicted_host)
    if max_memory is not None and predicted.peak > max_memory:
        raise BudgetError(f"policy {policy!r} is predicted to hold {predicted.peak} bytes of "
                          f"activations at its peak, more than max_memory={max_memory}")
    runner = ArrayRunner(chain, seed, profile, verify=verify, finite=check_finite)
    return PreparedBackprop(chain, x0, chosen, predicted, runner,
                            Meter(record_timeline=record_timeline), loss, predicted_host)


def backprop(chain: Chain | Sequence[Stage], x0: Any, loss: Loss | None = None,
             policy: str = "store_all", *, seed: int | None = None, costs: Any = "unit",
             trace_memory: bool = True, verify: bool = False, check_finite: bool = False,
             max_memory: int | None = None, record_timeline: bool = False,
             profile: ChainProfile | None = None, plan: Plan | None = None,
             **policy_params: Any) -> Result:
    """Back-propagate through ``chain`` from ``x0`` under ``policy``.

    ``loss`` maps ``x_n`` to a scalar (default: the sum of ``x_n``). ``costs`` is "unit",
    "measure" (time each stage in the profiling pass) or a list of per-stage costs.
    ``seed`` fixes the random streams of stages (see :mod:`checkpoint_ad.engine.rng`).
    ``verify`` checks every recomputed state bit for bit against the first forward;
    ``check_finite`` names the first stage producing NaN or Inf; ``max_memory`` (bytes) refuses,
    before anything runs, a plan whose predicted peak of activation bytes exceeds it.
    ``trace_memory`` measures the run with tracemalloc (which slows it); ``record_timeline``
    keeps the Meter's live bytes after every event in ``stats.timeline`` (8 bytes an event,
    which tracemalloc sees too). ``profile`` reuses a :func:`profile_chain` of this chain (a
    training loop whose shapes do not change profiles once; otherwise every call starts with
    one taped sweep to learn the sizes, whose evaluations are not counted). ``plan`` runs a plan
    made earlier for this chain by ``policy`` (with the same costs and parameters, as a sweep
    that plans every point first does, or read by :meth:`Plan.from_json`) instead of planning
    again; it is checked before the profiling sweep runs: a plan for another number of stages,
    of another policy or parameters, or not valid, is refused. ``bandwidth`` (bytes per cost
    unit, with ``optimal``) lets the plan move held tapes and checkpoints to host memory
    (docs/chain_offload.md): ``stats.host_peak_bytes`` is then the host copies' peak.
    """
    return prepare_backprop(chain, x0, loss, policy, seed=seed, costs=costs, verify=verify,
                            check_finite=check_finite, max_memory=max_memory,
                            record_timeline=record_timeline, profile=profile, plan=plan,
                            **policy_params).run(trace_memory)
