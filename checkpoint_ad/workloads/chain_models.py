"""Chain workloads: named chain builders with documented size parameters (:mod:`.spec`).

A workload turns sizes (``n`` stages plus its own widths), a seed and a dtype into a
:class:`~checkpoint_ad.chains.chain.Chain` and its input ``x_0``. Stage functions are written with
checkpoint_ad ops only, so the same function runs plainly (on arrays) and taped. Stages that
need random numbers draw them from :func:`checkpoint_ad.engine.rng.generator`, whose stream is fixed
by ``(run seed, stage)``, so a recomputed stage replays its first evaluation exactly.

A workload may also give a *cost model*: one relative cost per stage (multiply-adds, in
arbitrary units). Heterogeneous chains use it to tell the planner which stages are expensive;
uniform chains leave it out (every stage costs 1).

``get_workload(name)`` raises :class:`~checkpoint_ad.errors.UnknownNameError` listing the known
names; ``build(name, sizes, seed, dtype)`` validates the sizes (unknown names and wrong types
raise :class:`~checkpoint_ad.errors.ExperimentError`) and returns a :class:`Workload`.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from ..engine import rng
from ..engine.backend import xp
from ..chains.chain import Chain, Stage, StageFunction
from ..engine.primitives import cos, relu, sigmoid, sin, tanh
from ..plans.registry import Registry
from .spec import SizeParameter, WorkloadSpec, check_dtype


@dataclass(frozen=True)
class Workload:
    """A built workload: the chain, its input, and the relative cost of each stage (or None)."""

    name: str
    sizes: dict[str, Any]
    chain: Chain
    x0: Any
    stage_costs: tuple[float, ...] | None = None


Builder = Callable[[dict[str, Any], Any, Any], tuple[Chain, Any]]


# -- footprints: numbers of elements a workload allocates, parameters and two states -------------

def chain_footprint(sizes: dict[str, Any]) -> int:
    return 2 * sizes["width"]


def square_layers_footprint(sizes: dict[str, Any]) -> int:
    width = sizes["width"]
    return sizes["n"] * (width * width + width) + 2 * sizes["batch"] * width


def rnn_footprint(sizes: dict[str, Any]) -> int:
    width, inputs = sizes["width"], sizes["inputs"]
    return width * width + inputs * width + width + sizes["batch"] * (2 * width + inputs)


def hetero_footprint(sizes: dict[str, Any]) -> int:
    """The weights and biases of :func:`build_hetero_mlp`, counted without listing widths."""
    n, period, wide, narrow = sizes["n"], sizes["period"], sizes["wide"], sizes["narrow"]
    if period == 1:
        return n * (wide * wide + wide) + 2 * sizes["batch"] * wide
    into_wide = n // period  # stages t with a wide output (t a multiple of period)
    from_wide = (n - 1) // period + 1  # stages with a wide input (t - 1 a multiple of period)
    mixed = into_wide + from_wide
    return (mixed * wide * narrow + (n - mixed) * narrow * narrow + into_wide * wide
            + (n - into_wide) * narrow + 2 * sizes["batch"] * wide)

# -- stage functions (module level, so nothing captures an array) -----------------------------

ELEMENTWISE = {"sin": sin, "cos": cos, "tanh": tanh, "sigmoid": sigmoid, "relu": relu}


def elementwise_stage(function: str, x: Any, params: Any) -> Any:
    """x_t = f(x_{t-1}); the Fig. 6.9 chain."""
    return ELEMENTWISE[function](x)


def dense_stage(x: Any, params: Any) -> Any:
    """x_t = tanh(x_{t-1} W_t + b_t)."""
    weights, bias = params
    return tanh(x @ weights + bias)


def residual_stage(x: Any, params: Any) -> Any:
    """x_t = x_{t-1} + tanh(x_{t-1} W_t + b_t) / 2: a residual block ``x + g(x)``."""
    weights, bias = params
    return x + tanh(x @ weights + bias) * 0.5


def rnn_stage(inputs: int, h: Any, params: Any) -> Any:
    """h_t = tanh(h_{t-1} W_h + u_t W_u + b), with shared weights.

    The step's input u_t (batch × inputs) is drawn from the stage's random stream: a synthetic
    sequence that every recomputation replays exactly, with no array captured by the stage.
    """
    recurrent, input_weights, bias = params
    u = rng.generator().standard_normal((h.shape[0], inputs)).astype(h.dtype)
    return tanh(h @ recurrent + u @ input_weights + bias)


# -- builders -----------------------------------------------------------------------------------

def _dense(generator: Any, fan_in: int, fan_out: int, dtype: Any,
           gain: float = 1.0) -> tuple[Any, Any]:
    weights = generator.standard_normal((fan_in, fan_out)) * (gain / math.sqrt(fan_in))
    bias = generator.standard_normal(fan_out) * 0.1
    return weights.astype(dtype), bias.astype(dtype)


def build_chain(sizes: dict[str, Any], generator: Any, dtype: Any
                ) -> tuple[Chain, Any]:
    stage = Stage(partial(elementwise_stage, sizes["f"]), None, sizes["f"])
    x0 = generator.standard_normal(sizes["width"]).astype(dtype)
    return Chain([stage] * sizes["n"]), x0


def _square_layers(stage_fn: StageFunction, label: str) -> Builder:
    """A builder of n stages ``stage_fn`` with their own square weights, on a batch."""
    def build(sizes: dict[str, Any], generator: Any, dtype: Any) -> tuple[Chain, Any]:
        width = sizes["width"]
        stages = [Stage(stage_fn, _dense(generator, width, width, dtype), f"{label}{t}")
                  for t in range(1, sizes["n"] + 1)]
        x0 = generator.standard_normal((sizes["batch"], width)).astype(dtype)
        return Chain(stages), x0
    return build


build_mlp = _square_layers(dense_stage, "dense")
build_residual = _square_layers(residual_stage, "block")


def build_rnn(sizes: dict[str, Any], generator: Any, dtype: Any
              ) -> tuple[Chain, Any]:
    width, inputs = sizes["width"], sizes["inputs"]
    recurrent = _dense(generator, width, width, dtype, gain=0.9)[0]
    input_weights, bias = _dense(generator, inputs, width, dtype)
    shared = (recurrent, input_weights, bias)
    stage = Stage(partial(rnn_stage, inputs), shared, "rnn_cell")
    x0 = (generator.standard_normal((sizes["batch"], width)) * 0.1).astype(dtype)
    return Chain([stage] * sizes["n"]), x0


def hetero_widths(sizes: dict[str, Any]) -> list[int]:
    """Widths of x_0..x_n: ``wide`` at every multiple of ``period``, ``narrow`` elsewhere."""
    return [sizes["wide"] if j % sizes["period"] == 0 else sizes["narrow"]
            for j in range(sizes["n"] + 1)]


def build_hetero_mlp(sizes: dict[str, Any], generator: Any, dtype: Any
                     ) -> tuple[Chain, Any]:
    widths = hetero_widths(sizes)
    stages = [Stage(dense_stage, _dense(generator, widths[t - 1], widths[t], dtype),
                    f"dense{t}_{widths[t - 1]}x{widths[t]}")
              for t in range(1, sizes["n"] + 1)]
    x0 = generator.standard_normal((sizes["batch"], widths[0])).astype(dtype)
    return Chain(stages), x0


def hetero_costs(sizes: dict[str, Any]) -> list[float]:
    """Multiply-adds of each layer, relative: w_{t-1}·w_t (the batch is common to all)."""
    widths = hetero_widths(sizes)
    return [float(widths[t - 1] * widths[t]) for t in range(1, sizes["n"] + 1)]


def _n(default: int) -> SizeParameter:
    return SizeParameter("n", int, default, "number of stages (layers, steps, blocks)")


def _batch(default: int) -> SizeParameter:
    return SizeParameter("batch", int, default, "rows of the state (examples in a batch)")


CHAIN_WORKLOADS = Registry("workload")


CHAIN_WORKLOADS.register(WorkloadSpec(
    "chain", "the Fig. 6.9 chain: the same elementwise f applied n times to a vector",
    build_chain,
    (_n(64), SizeParameter("width", int, 1000, "elements of the vector"),
     SizeParameter("f", str, "sin", "the elementwise function", tuple(ELEMENTWISE))),
    footprint=chain_footprint))
CHAIN_WORKLOADS.register(WorkloadSpec(
    "mlp", "n dense layers tanh(x W_t + b_t) of equal width on a batch", build_mlp,
    (_n(32), SizeParameter("width", int, 128, "units per layer"), _batch(32)),
    footprint=square_layers_footprint))
CHAIN_WORKLOADS.register(WorkloadSpec(
    "rnn", "back-propagation through time: n steps of a vanilla RNN cell with shared weights",
    build_rnn,
    (_n(64), SizeParameter("width", int, 128, "hidden units"), _batch(16),
     SizeParameter("inputs", int, 32, "input features per step (a synthetic sequence)")),
    footprint=rnn_footprint))
CHAIN_WORKLOADS.register(WorkloadSpec(
    "residual", "n residual blocks x + tanh(x W_t + b_t)/2 of equal width", build_residual,
    (_n(32), SizeParameter("width", int, 128, "units per block"), _batch(32)),
    footprint=square_layers_footprint))
CHAIN_WORKLOADS.register(WorkloadSpec(
    "hetero_mlp", "an MLP whose widths cycle (one wide state per period, narrow between), so "
    "stages differ in cost and size", build_hetero_mlp,
    (_n(32), _batch(32), SizeParameter("wide", int, 512, "width of every period-th state"),
     SizeParameter("narrow", int, 32, "width of the other states"),
     SizeParameter("period", int, 4, "one wide state every this many")),
    hetero_costs, hetero_footprint))


# Workloads that checkpoint_ad.torch.models.from_workload rebuilds as torch modules.
TORCH_EQUIVALENTS = ("chain", "mlp", "residual", "hetero_mlp")


names = CHAIN_WORKLOADS.names
get_workload = CHAIN_WORKLOADS.get


def build(name: str, sizes: Mapping[str, Any] | None = None, seed: int = 0,
          dtype: str = "float64") -> Workload:
    """Build workload ``name`` with ``sizes`` (defaults for the rest), ``seed`` and ``dtype``.

    The same arguments always give the same arrays, in any process.
    """
    spec = get_workload(name)
    resolved = spec.resolve(sizes)
    array_type = check_dtype(dtype)
    chain, x0 = spec.builder(resolved, xp.random.default_rng(seed), array_type)
    costs = tuple(spec.cost_model(resolved)) if spec.cost_model else None
    return Workload(name, resolved, chain, x0, costs)
