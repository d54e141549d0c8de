"""The executor: the only stateful part. It runs any valid plan, step by step, and tells the
Meter about everything it holds. It never decides what to keep: the plan does.

It works through a *runner* that evaluates stages. :class:`ArrayRunner` computes with arrays;
:class:`..replay.SymbolicRunner` returns sized placeholders, so that running the very same
executor on it predicts, before anything runs, the exact bytes the real run will hold.

The Meter counts exactly what docs/cost_model.md lists under ``peak_bytes``, each buffer once,
by kind.

Transfers (docs/offload_model.md, section "Chains") really move values: ``offload t`` copies
checkpoint ``x_t`` or stage t's held tape into a host pool (separate buffers, counted by a
second Meter, kind ``host``, never by the first) and releases the device copy when its step
ends; ``prefetch t`` copies it back, held by the device Meter from that moment and readable once
its step ends; a host copy is dropped as the last step that could read it ends
(:func:`~checkpoint_ad.plans.transfers.host_drops`).
"""
from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, Protocol

from .chain import (Chain, ChainProfile, TapedStage, check_finite, digest, evaluate,
                    evaluate_taped)
from ..errors import StageError
from ..plans.memory import Meter
from ..plans.transfers import host_drops
from ..engine.backend import buffer_root, xp
from .actions import STEP_END_NAMES, STEP_ENDS
from .host import copy_array, copy_tape_arrays, install_tape, strip_tape
from .plans import Action, Plan, Step
from ..engine.trees import flatten

WORKING, COTANGENT, NEXT_COTANGENT, TRANSIENT = "working", "cotangent", "next cotangent", "turn"
HOST_KINDS = ("host",)


class Runner(Protocol):
    """Evaluates stages for the executor (arrays or sized placeholders)."""

    def own_input(self, x0: Any) -> Any: ...
    def advance(self, t: int, x: Any) -> Any: ...
    def tape(self, t: int, x: Any, keep_output: bool = True) -> Any: ...
    def output(self, taped: Any) -> Any: ...
    def residuals(self, taped: Any) -> list[Any]: ...
    def backward(self, t: int, taped: Any, cotangent: Any) -> Any: ...
    def copy(self, value: Any) -> Any: ...
    def offload_tape(self, taped: Any) -> Any: ...
    def host_arrays(self, host_tape: Any) -> list[Any]: ...
    def release_tape(self, taped: Any) -> None: ...
    def prefetch_tape(self, taped: Any, host_tape: Any) -> Any: ...


class Executor:
    """Runs ``plan`` over a runner; ``forward`` then ``reverse`` (see module docstring).

    ``forward(x0)`` runs the steps before the first reversal and returns ``x_n`` when a held
    tape of stage n provides it (else None). ``reverse(seed)`` runs the rest; ``seed(x_n)``
    returns ``dL/dx_n``. It returns ``dL/dx_0``.
    """

    def __init__(self, plan: Plan, runner: Runner, meter: Meter,
                 host_meter: Meter | None = None) -> None:
        self.counts = plan.counts  # validates the plan (once: cached) before anything runs
        self.plan, self.runner, self.meter = plan, runner, meter
        self.host_meter = host_meter if host_meter is not None else Meter(False, HOST_KINDS)
        self.pair_max = getattr(runner, "pair_max", None)  # placeholders that sum runs up
        self.steps = list(plan)
        self.split = next(i for i, s in enumerate(self.steps)
                          if s.action in (Action.TURN, Action.BACKWARD))
        self.checkpoints: dict[int, Any] = {}
        self.held: dict[int, Any] = {}
        self.working: Any = None
        self.cotangent: Any = None
        self.seed: Callable[[Any], Any] | None = None
        self.peak_stored = 0
        self.host: dict[int, Any] = {}      # the host pool: stage -> its copy
        self.stripped: dict[int, Any] = {}  # stage -> its held tape while on the host
        self.leaving: list[int] = []        # offloaded in the open step
        self.arriving: dict[int, Any] = {}  # prefetched in the open step, not yet readable
        self.position = 0
        self.drops = (host_drops([(s.action.value, s.stage) for s in self.steps], STEP_END_NAMES)
                      if any(s.action is Action.OFFLOAD for s in self.steps) else {})

    def forward(self, x0: Any) -> Any:
        x0 = self.runner.own_input(x0)
        self.checkpoints[0] = x0
        self.meter.hold(("checkpoint", 0), "checkpoint", [x0])
        self._set_working(x0)
        self.peak_stored = 1
        for step in self.steps[:self.split]:
            self._run(step)
        last = self.held.get(self.plan.n)
        return None if last is None else self.runner.output(last)

    def reverse(self, seed: Callable[[Any], Any]) -> Any:
        self.seed = seed
        for step in self.steps[self.split:]:
            self._run(step)
        gradient = self.cotangent
        self.meter.release(COTANGENT)
        self.meter.release(("checkpoint", 0))
        self.checkpoints.clear()
        return gradient

    def _run(self, step: Step) -> None:
        _HANDLERS[step.action](self, step)
        self.peak_stored = max(self.peak_stored,
                               len(self.checkpoints) + len(self.held) + len(self.arriving))
        if step.action in STEP_ENDS and (self.leaving or self.arriving or self.drops):
            self._end_step(self.drops.get(self.position, ()))
        self.position += 1

    def _offload(self, step: Step) -> None:
        t = step.stage
        if t in self.checkpoints:
            copied = self.runner.copy(self.checkpoints[t])
            arrays = [copied]
        else:
            copied = self.runner.offload_tape(self.held[t])
            arrays = self.runner.host_arrays(copied)
        self.host[t] = copied
        self.host_meter.hold(("host", t), "host", arrays)
        self.leaving.append(t)

    def _prefetch(self, step: Step) -> None:
        t = step.stage
        if t in self.stripped:
            taped = self.runner.prefetch_tape(self.stripped.pop(t), self.host[t])
            self.arriving[t] = ("tape", taped)
            self.meter.hold(("tape", t), "tape",
                            self.runner.residuals(taped) + [self.runner.output(taped)])
        else:
            value = self.runner.copy(self.host[t])
            self.arriving[t] = ("checkpoint", value)
            self.meter.hold(("checkpoint", t), "checkpoint", [value])

    def _end_step(self, dropped: Any) -> None:
        """The open step ends: offloaded device copies are released, prefetched copies become
        readable, and the host copies no later step reads are dropped."""
        finish = getattr(self.runner, "finish_transfers", None)
        if finish is not None:
            finish()  # copies made on a side stream are complete
        for t in self.leaving:
            if t in self.checkpoints:
                del self.checkpoints[t]
                self.meter.release(("checkpoint", t))
            else:
                self.stripped[t] = taped = self.held.pop(t)
                self.meter.release(("tape", t))
                self.runner.release_tape(taped)
        self.leaving.clear()
        for t, (kind, value) in self.arriving.items():
            (self.held if kind == "tape" else self.checkpoints)[t] = value
        self.arriving.clear()
        for t in dropped:
            del self.host[t]
            self.host_meter.release(("host", t))

    def _set_working(self, value: Any) -> None:
        self.working = value
        if value is None:
            self.meter.release(WORKING)
        else:
            self.meter.hold(WORKING, "working", [value])

    def _advance(self, step: Step) -> None:
        pair_max = self.pair_max
        if pair_max is None or step.end == step.stage:
            for t in range(step.stage, step.end + 1):
                self._set_working(self.runner.advance(t, self.working))
            return
        # placeholders summed up: past the first, each state of the run lives with the next only
        first = self.runner.advance(step.stage, self.working)
        self._set_working(first)
        self.meter.transient(WORKING, pair_max(step.stage + 1, step.end) - first.nbytes)
        self._set_working(None)
        self._set_working(self.runner.advance(step.end, None))

    def _tape(self, step: Step) -> None:
        taped = self.runner.tape(step.stage, self.working)
        output = self.runner.output(taped)
        self.held[step.stage] = taped
        self.meter.hold(("tape", step.stage), "tape", self.runner.residuals(taped) + [output])
        self._set_working(output)

    def _turn(self, step: Step) -> None:
        last = step.stage == self.plan.n
        taped = self.runner.tape(step.stage, self.working, keep_output=last)
        self.meter.hold(TRANSIENT, "tape", self.runner.residuals(taped))
        if last:
            self._set_working(self.runner.output(taped))
        self._backward(step.stage, taped, TRANSIENT)

    def _backward_held(self, step: Step) -> None:
        self._backward(step.stage, self.held.pop(step.stage), ("tape", step.stage))

    def _backward(self, t: int, taped: Any, tape_key: Any) -> None:
        if t == self.plan.n:
            self.cotangent = self.seed(self.runner.output(taped))
            self.meter.hold(COTANGENT, "cotangent", [self.cotangent])
        self._set_working(None)
        previous = self.runner.backward(t, taped, self.cotangent)
        self.meter.hold(NEXT_COTANGENT, "cotangent", [previous])
        self.meter.release(tape_key)
        self.meter.hold(COTANGENT, "cotangent", [previous])
        self.meter.release(NEXT_COTANGENT)
        self.cotangent = previous

    def _save(self, step: Step) -> None:
        self.checkpoints[step.stage] = self.working
        self.meter.hold(("checkpoint", step.stage), "checkpoint", [self.working])

    def _restore(self, step: Step) -> None:
        stored = self.checkpoints.get(step.stage)
        if stored is None:
            stored = self.runner.output(self.held[step.stage])
        self._set_working(stored)

    def _free(self, step: Step) -> None:
        del self.checkpoints[step.stage]
        self.meter.release(("checkpoint", step.stage))


_HANDLERS = {
    Action.ADVANCE: Executor._advance, Action.TAPE: Executor._tape, Action.TURN: Executor._turn,
    Action.BACKWARD: Executor._backward_held, Action.SAVE: Executor._save,
    Action.RESTORE: Executor._restore, Action.FREE: Executor._free,
    Action.OFFLOAD: Executor._offload, Action.PREFETCH: Executor._prefetch,
    Action.WAIT: lambda executor, step: None,
}


class ArrayRunner:
    """Evaluates a chain's stages on arrays and accumulates parameter gradients.

    ``gradients[k]`` holds the summed gradient leaves of the k-th distinct params object of
    the chain (see :meth:`Chain.parameter_groups`); they are allocated before the run. Every
    output is checked against the profiling sweep: same shape and dtype always, the same bits
    with ``verify`` (the profile must hold digests), finite values with ``finite``.
    """

    def __init__(self, chain: Chain, seed: int, profile: ChainProfile, *, verify: bool = False,
                 finite: bool = False) -> None:
        self.chain, self.seed, self.profile = chain, seed, profile
        self.verify, self.finite = verify, finite
        groups = chain.parameter_groups()
        self.group_of = {id(group): k for k, group in enumerate(groups)}
        self.gradients = [[xp.zeros_like(leaf) for leaf in flatten(group)[0]] for group in groups]
        self.parameter_roots = chain.parameter_roots()
        self._states: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()
        self.evaluations = 0

    def own_input(self, x0: Any) -> Any:
        """The run's own copy of ``x_0``, read-only like every state it stores."""
        x0 = xp.array(x0, copy=True)
        x0.flags.writeable = False
        return x0

    def _owned(self, output: Any) -> Any:
        """``output``, copied if its buffer is a parameter's or a state this run still holds
        (a stage returning a constant or a parameter): every state owns its buffer, as the
        byte prediction assumes, and parameters stay apart from activations. It is made
        read-only (no copy), so that a stage or the loss writing into a stored state fails."""
        root = buffer_root(output)
        if id(root) in self.parameter_roots or self._states.get(id(root)) is root:
            output = output.copy()
            root = output
        self._states[id(root)] = root
        output.flags.writeable = False
        return output

    def _checked(self, t: int, output: Any) -> Any:
        self.evaluations += 1
        output = self._owned(output)
        first = self.profile.stages[t - 1]
        stage = self.chain.stages[t - 1]
        if output.shape != first.shape or str(output.dtype) != first.dtype:
            raise StageError(f"stage {t} ({stage.label}) returned shape {output.shape} "
                             f"{output.dtype}, but {first.shape} {first.dtype} in the profiling "
                             "sweep (stages whose output shape depends on values, not only on "
                             "the shapes of their input and params, cannot be checkpointed)")
        if self.verify and digest(output) != first.digest:
            raise StageError(f"stage {t} ({stage.label}) recomputed values that differ from its "
                             "first evaluation; stages must be deterministic (draw random "
                             "numbers through checkpoint_ad.engine.rng) and must not write into "
                             "their input, params or anything they keep between calls in place")
        if self.finite:
            check_finite(stage, t, output)
        return output

    def advance(self, t: int, x: Any) -> Any:
        return self._checked(t, evaluate(self.chain.stages[t - 1], t, x, self.seed))

    def tape(self, t: int, x: Any, keep_output: bool = True) -> TapedStage:
        taped = evaluate_taped(self.chain.stages[t - 1], t, x, self.seed)
        taped.output_value = self._checked(t, taped.output_value)
        if not keep_output:
            taped.output_value = None
        return taped

    def output(self, taped: TapedStage) -> Any:
        return taped.output_value

    def residuals(self, taped: TapedStage) -> list[Any]:
        """The tape's residual arrays, parameters excluded (they are counted apart)."""
        return [r for r in taped.residual_arrays()
                if id(buffer_root(r)) not in self.parameter_roots]

    def copy(self, value: Any) -> Any:
        """A host (or device) copy of a state, in a buffer of its own."""
        return copy_array(value)

    def offload_tape(self, taped: TapedStage) -> Any:
        return copy_tape_arrays(taped, self.parameter_roots)

    def host_arrays(self, host_tape: Any) -> list[Any]:
        return host_tape.arrays()

    def release_tape(self, taped: TapedStage) -> None:
        strip_tape(taped)

    def prefetch_tape(self, taped: TapedStage, host_tape: Any) -> TapedStage:
        return install_tape(taped, host_tape, self.parameter_roots)

    def backward(self, t: int, taped: TapedStage, cotangent: Any) -> Any:
        grad_x, grads = taped.backward(cotangent)
        params = self.chain.stages[t - 1].params
        if params is not None:
            for total, g in zip(self.gradients[self.group_of[id(params)]], grads):
                total += g
        return grad_x
