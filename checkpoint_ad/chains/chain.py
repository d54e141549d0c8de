"""Chains of stages: ``x_t = f_t(x_{t-1}, params_t)`` for t = 1..n, built from checkpoint_ad ops.

A :class:`Stage` is evaluated either *plainly* (on raw arrays, nothing recorded) or *taped*
(recorded on a fresh tape, so that its VJP can run later). Stage ``t`` draws random numbers
through :func:`checkpoint_ad.engine.rng.generator`, which is reseeded from ``(seed, t)`` before every
evaluation, so that recomputation replays the first forward exactly.

:func:`profile_chain` runs one taped sweep to learn each stage's sizes (and, optionally, its
time): what policies plan with and what the byte prediction uses. Its evaluations are not part
of any plan's count.
"""
from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..engine import rng
from ..engine.backend import ARRAY_TYPES, buffer_root, xp
from ..checks import real_number, whole_number
from ..errors import ArgumentError, CheckpointADError, NonFiniteError, StageError
from ..engine.ops import Node, Tape, Tracer
from .costs import ChainCosts
from ..engine.trees import flatten

StageFunction = Callable[[Any, Any], Any]


@dataclass(frozen=True, eq=False)
class Stage:
    """One stage: ``fn(x, params) -> next state``; ``params`` is an array, a tuple/list/dict of
    arrays, or None. Stages that share one params object share (and sum) its gradient."""

    fn: StageFunction
    params: Any = None
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or getattr(self.fn, "__name__", "stage")


class Chain:
    """n sequential stages. ``Chain.repeat(f, n, params)`` is the Fig. 6.9 chain."""

    def __init__(self, stages: Sequence[Stage | StageFunction]) -> None:
        self.stages = tuple(s if isinstance(s, Stage) else Stage(s) for s in stages)
        if not self.stages:
            raise StageError("a chain needs at least one stage")
        for t, stage in enumerate(self.stages, 1):
            if not callable(stage.fn):
                raise StageError(f"stage {t}: expected a function fn(x, params), got "
                                 f"{type(stage.fn).__name__}")

    @classmethod
    def repeat(cls, fn: StageFunction, n: int, params: Any = None) -> Chain:
        """The same ``fn`` n times; the parameters are shared and their gradients summed."""
        n = whole_number(n, "Chain.repeat: n", minimum=1, error=StageError)
        return cls([Stage(fn, params)] * n)

    @property
    def n(self) -> int:
        return len(self.stages)

    def __len__(self) -> int:
        return self.n

    def parameter_roots(self) -> set[int]:
        """Ids of the buffers behind every parameter leaf (parameters are counted apart)."""
        return {id(buffer_root(leaf)) for group in self.parameter_groups()
                for leaf in flatten(group)[0]}

    def parameter_groups(self) -> list[Any]:
        """The distinct params objects, in first-use order (shared ones once)."""
        seen: dict[int, Any] = {}
        for stage in self.stages:
            if stage.params is not None:
                seen.setdefault(id(stage.params), stage.params)
        return list(seen.values())


def _as_state(stage: Stage, t: int, output: Any, x: Any) -> Any:
    """A stage's output as an array owning exactly its own memory.

    Copied when it shares the input's buffer or is a view into a larger buffer (a kept view
    would keep the whole buffer alive, and the byte accounting counts whole buffers)."""
    if not isinstance(output, ARRAY_TYPES):
        raise StageError(f"stage {t} ({stage.label}) returned {type(output).__name__}, not an array")
    output = xp.asarray(output)
    root = buffer_root(output)
    if root is buffer_root(x) or root.nbytes != output.nbytes:
        output = output.copy()
    return output


def read_only(value: Any) -> Any:
    """``value`` if it is not a writable array, else a read-only view of it (no copy).

    Stages get their input and params this way, and the executor stores states read-only, so
    that a stage writing into them in place fails at once instead of corrupting a checkpoint."""
    if isinstance(value, ARRAY_TYPES) and value.flags.writeable:
        value = value.view()
        value.flags.writeable = False
    return value


def _read_only_params(params: Any) -> Any:
    leaves, unflatten = flatten(params)
    return unflatten([read_only(leaf) for leaf in leaves])


def _call(stage: Stage, t: int, seed: int, x: Any, params: Any) -> Any:
    """``stage.fn(x, params)`` with stage t's random stream; a write into x or params (which
    are read-only) becomes a :class:`StageError` naming the stage."""
    token = rng.enter_stage(seed, t)
    try:
        return stage.fn(x, params)
    except ValueError as error:
        if isinstance(error, CheckpointADError) or "read-only" not in str(error):
            raise
        raise StageError(f"stage {t} ({stage.label}) wrote into its input or params in place "
                         f"(numpy: {error}); stages must return new arrays (y = x + 1, not "
                         "x += 1): under checkpointing a stage's input may be a stored "
                         "checkpoint") from None
    finally:
        rng.leave_stage(token)


def evaluate(stage: Stage, t: int, x: Any, seed: int) -> Any:
    """A plain evaluation of stage ``t`` on raw arrays (nothing is recorded)."""
    output = _call(stage, t, seed, read_only(x), _read_only_params(stage.params))
    if type(output) is Tracer:
        raise StageError(f"stage {t} ({stage.label}) returned a value being differentiated "
                         "although its input and params are not: it captures an outer traced "
                         "value; pass that value through the stage's params instead")
    return _as_state(stage, t, output, x)


@dataclass
class TapedStage:
    """A taped evaluation: its tape, the graph nodes of x, the params and the output, and the
    output value (None once dropped). It references no other array than its residuals."""

    tape: Tape
    input: Node
    params: list[Node]
    output: Node | None
    output_value: Any

    def residual_arrays(self) -> list[Any]:
        return self.tape.residual_arrays()

    def backward(self, cotangent: Any) -> tuple[Any, list[Any]]:
        """Run the stage's VJP: return (cotangent of x, cotangents of the param leaves)."""
        if self.output is not None:
            self.tape.backward(self.output, cotangent)
        grad_x = _cotangent(self.input, cotangent)
        grads = [_cotangent(p) for p in self.params]
        self.tape.nodes.clear()
        return grad_x, grads


def _cotangent(node: Node, incoming: Any = None) -> Any:
    """A leaf's cotangent as an array owning exactly its own memory, of the leaf's shape and
    dtype: copied when it is a view into a larger buffer (``concatenate``'s VJP splits one) or
    is the incoming cotangent itself (``add`` passes it through), so that bytes add up."""
    cot, node.cot = node.cot, None
    if cot is None:
        return xp.zeros(node.shape, dtype=node.dtype)
    cot = xp.require(cot, dtype=node.dtype, requirements="C").reshape(node.shape)
    root = buffer_root(cot)
    if root.nbytes != cot.nbytes or (incoming is not None and root is buffer_root(incoming)):
        cot = cot.copy()
    return cot


def evaluate_taped(stage: Stage, t: int, x: Any, seed: int) -> TapedStage:
    """A taped evaluation of stage ``t``: records its graph for the backward step."""
    tape = Tape()
    x_tracer = tape.variable(read_only(x))
    leaves, unflatten = flatten(stage.params)
    param_tracers = [tape.variable(read_only(leaf)) for leaf in leaves]
    output = _call(stage, t, seed, x_tracer, unflatten(param_tracers))
    node = output.node if type(output) is Tracer else None
    if node is not None and output.tape is not tape:
        raise StageError(f"stage {t} ({stage.label}) returned a traced value of another "
                         "function; pass it through the stage's params instead")
    value = _as_state(stage, t, output.value if node is not None else output, x)
    return TapedStage(tape, x_tracer.node, [p.node for p in param_tracers], node, value)


@dataclass(frozen=True)
class StageProfile:
    """What one taped evaluation of a stage showed (bytes; seconds).

    ``private_tape_bytes`` counts the tape's residual buffers other than the stage's input, its
    output and the parameters; ``keeps_input`` / ``keeps_output`` say whether the residuals
    include the input ``x_{t-1}`` / the output ``x_t``.
    """

    state_bytes: int
    shape: tuple[int, ...]
    dtype: str
    private_tape_bytes: int
    keeps_input: bool
    keeps_output: bool
    seconds: float
    digest: bytes | None = None


@dataclass(frozen=True)
class ChainProfile:
    """Sizes of a chain on one input: ``input_bytes`` is ``a_0``; ``stages[t-1]`` is stage t."""

    input_bytes: int
    stages: tuple[StageProfile, ...]

    def input_bytes_of(self, t: int) -> int:
        """``a_{t-1}``: the bytes of stage t's input."""
        return self.input_bytes if t == 1 else self.stages[t - 2].state_bytes

    def held_tape_bytes(self, t: int) -> int:
        """``b_t``: a held tape's bytes, its input (if kept) and its output included."""
        return self.stages[t - 1].private_tape_bytes + self.stages[t - 1].state_bytes + \
            self.tape_input_bytes(t)

    def tape_input_bytes(self, t: int) -> int:
        """The part of ``b_t`` that is the input ``x_{t-1}`` (0 if the tape does not keep it)."""
        return self.input_bytes_of(t) if self.stages[t - 1].keeps_input else 0

    def costs(self, compute: str | Sequence[float] = "unit") -> ChainCosts:
        """The planner's view: ``compute`` is "unit", "measure" (profiled seconds) or a list."""
        n = len(self.stages)
        if isinstance(compute, str) and compute == "unit":
            units: tuple[float, ...] = (1.0,) * n
        elif isinstance(compute, str) and compute == "measure":
            units = tuple(max(s.seconds, 1e-9) for s in self.stages)
        else:
            units = _per_stage_costs(compute, n)
        stages = range(1, n + 1)
        return ChainCosts(n, units, (self.input_bytes,) + tuple(s.state_bytes for s in self.stages),
                          tuple(self.held_tape_bytes(t) for t in stages),
                          tuple(self.tape_input_bytes(t) for t in stages),
                          tuple(s.keeps_output for s in self.stages))


def _per_stage_costs(compute: object, n: int) -> tuple[float, ...]:
    """A list of n per-stage costs as floats (finite, >= 0); else :class:`ArgumentError`."""
    try:
        entries = None if isinstance(compute, str) else tuple(compute)  # type: ignore[arg-type]
    except TypeError:
        entries = None
    if entries is None or len(entries) != n:
        raise ArgumentError(f"costs must be 'unit', 'measure' or a list of {n} per-stage costs "
                            f"(finite numbers >= 0), got {compute!r:.60}")
    return tuple(real_number(cost, f"costs[{index}] (the cost of stage {index + 1})",
                             positive=False) for index, cost in enumerate(entries))


def _root_ids(arrays: Sequence[Any]) -> dict[int, int]:
    return {id(root): int(root.nbytes) for root in map(buffer_root, arrays)}


def digest(array: Any) -> bytes:
    """A 16-byte fingerprint of an array's shape, dtype and bytes (bit-for-bit comparison)."""
    array = xp.ascontiguousarray(array)
    header = f"{array.shape}{array.dtype}".encode()
    return hashlib.blake2b(header + array.tobytes(), digest_size=16).digest()


def check_finite(stage: Stage, t: int, output: Any) -> None:
    """Raise :class:`NonFiniteError` if stage ``t``'s output holds NaN or Inf."""
    if not xp.isfinite(output).all():
        bad = int(xp.size(output) - xp.count_nonzero(xp.isfinite(output)))
        raise NonFiniteError(f"stage {t} ({stage.label}) produced NaN or Inf in {bad} of "
                             f"{xp.size(output)} elements (the first stage where it appeared)")


def _measure_stage(stage: Stage, t: int, x: Any, seed: int, parameter_roots: set[int],
                   verify: bool, finite: bool) -> tuple[StageProfile, Any]:
    """One taped evaluation of stage t: its profile and its output."""
    start = time.perf_counter()
    taped = evaluate_taped(stage, t, x, seed)
    seconds = time.perf_counter() - start
    out = taped.output_value
    if finite:
        check_finite(stage, t, out)
    residual = _root_ids(taped.residual_arrays())
    input_id, output_id = id(buffer_root(x)), id(buffer_root(out))
    private = sum(size for ident, size in residual.items()
                  if ident not in (input_id, output_id) and ident not in parameter_roots)
    profile = StageProfile(int(buffer_root(out).nbytes), out.shape, str(out.dtype), private,
                           input_id in residual, output_id in residual, seconds,
                           digest(out) if verify else None)
    return profile, out


def _signature(stage: Stage, shape: tuple, dtype: str) -> tuple:
    """What fixes a stage's sizes: its function, its parameters' shapes and dtypes, its input's."""
    leaves = flatten(stage.params)[0]
    return (id(stage.fn), shape, dtype,
            tuple((xp.shape(leaf), str(xp.result_type(leaf))) for leaf in leaves))


def profile_chain(chain: Chain, x0: Any, seed: int = 0, *, verify: bool = False,
                  finite: bool = False) -> ChainProfile:
    """One taped sweep over the chain, measuring each stage's sizes and time.

    A stage with the same function, parameter shapes and input shape as one already measured
    gets that profile without being evaluated (the run checks every output's shape against the
    profile, so a function whose sizes depend on values is caught); a homogeneous chain is
    measured on one stage. ``verify`` (which records a digest of every state, for bit-for-bit
    checks of recomputations) and ``finite`` (which raises :class:`NonFiniteError` at the first
    stage producing NaN or Inf) need every state, so they evaluate every stage.
    """
    seed = rng.check_seed(seed, "profile_chain")
    parameter_roots = chain.parameter_roots()
    x = xp.array(x0, copy=True)  # the run holds its own copy of x0 too
    every_state = verify or finite
    measured: dict[tuple, StageProfile] = {}
    skipped: list[int] = []  # stages not evaluated since x was last brought up to date
    stages = []
    shape, dtype = x.shape, str(x.dtype)
    for t, stage in enumerate(chain.stages, 1):
        key = _signature(stage, shape, dtype)
        profile = None if every_state else measured.get(key)
        if profile is None:
            for s in skipped:
                x = evaluate(chain.stages[s - 1], s, x, seed)
            skipped = []
            profile, x = _measure_stage(stage, t, x, seed, parameter_roots, verify, finite)
            measured[key] = profile
        else:
            skipped.append(t)
        stages.append(profile)
        shape, dtype = profile.shape, profile.dtype
    return ChainProfile(int(xp.asarray(x0).nbytes), tuple(stages))
