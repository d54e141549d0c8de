"""Graph workloads: named functions of arrays with the shapes real networks have, written with
checkpoint_ad ops and traced by :func:`checkpoint_ad.backprop_graph` (residual skips, U-Net
long skips, attention with softmax and layer norm, dense connectivity, and the book's Fig. 6.8
examples).

``build_graph(name, sizes, seed, dtype)`` returns a :class:`GraphWorkload`: the function, its
arguments (input first, then the parameters) and the ``argnums`` to differentiate (all of
them). Size parameters reuse :class:`~.spec.SizeParameter` and are
validated the same way; ``graph_names()`` lists the workloads; an unknown name raises
:class:`~checkpoint_ad.errors.UnknownNameError` listing them.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..engine.backend import xp
from ..engine.composites import mean, softmax, square
from ..engine.primitives import (concatenate, matmul, relu, sigmoid, sqrt, sum as total, tanh,
                                 transpose)
from ..errors import UnknownNameError
from ..plans.registry import Registry
from . import chain_models
from .layered import (DEFAULT_EDGE_DENSITY, DEFAULT_LAYER_WIDTH, DEFAULT_SKIP_DENSITY,
                      build_layered)
from .spec import SizeParameter, WorkloadSpec, check_dtype


@dataclass(frozen=True)
class GraphWorkload:
    """A built graph workload: ``fn(*args)`` returns the scalar loss."""

    name: str
    sizes: dict[str, Any]
    fn: Callable[..., Any]
    args: tuple[Any, ...]

    @property
    def argnums(self) -> tuple[int, ...]:
        return tuple(range(len(self.args)))


def _weights(generator: Any, dtype: Any, *shape: int) -> Any:
    return (generator.standard_normal(shape) / math.sqrt(shape[0])).astype(dtype)


def _input(sizes: dict, generator: Any, dtype: Any) -> Any:
    return generator.standard_normal((sizes["batch"], sizes["width"])).astype(dtype)


def residual(x: Any, weights: list) -> Any:
    """Blocks ``h <- h + tanh(h W) / 2``: a skip around every block."""
    h = x
    for w in weights:
        h = h + tanh(matmul(h, w)) * 0.5
    return total(h * h)


def unet(x: Any, down: list, up: list) -> Any:
    """Encoder ``e_j = tanh(e_{j-1} D_j)``; decoder from the bottom, each level multiplied by
    the encoder output of the same level (a long skip from encoder to decoder)."""
    encoder = [x]
    for w in down:
        encoder.append(tanh(matmul(encoder[-1], w)))
    h = encoder[-1]
    for level, w in zip(range(len(up), 0, -1), up):
        h = tanh(matmul(h, w)) * encoder[level]
    return total(h * h)


def layer_norm(x: Any) -> Any:
    """(x - mean) / sqrt(variance + 1e-5) over the last axis (a composite of primitives)."""
    centred = x - mean(x, axis=-1, keepdims=True)
    return centred / sqrt(mean(square(centred), axis=-1, keepdims=True) + 1e-5)


def transformer(x: Any, layers: list) -> Any:
    """Pre-norm blocks: single-head attention with softmax, then an MLP, each with a residual."""
    h = x
    scale = 1.0 / math.sqrt(x.shape[-1])
    for query, key, value, out, up, down in layers:
        n = layer_norm(h)
        scores = softmax(matmul(matmul(n, query), transpose(matmul(n, key))) * scale)
        h = h + matmul(matmul(scores, matmul(n, value)), out)
        h = h + matmul(relu(matmul(layer_norm(h), up)), down)
    return total(h * h)


def densenet(x: Any, weights: list) -> Any:
    """Each layer reads every earlier output: ``h_l = tanh([x, h_1..h_{l-1}] W_l)``."""
    outputs = [x]
    for w in weights:
        outputs.append(tanh(matmul(concatenate(outputs, axis=1), w)))
    return total(outputs[-1] * outputs[-1])


def logistic(x: Any, w: Any) -> Any:
    """Fig. 6.8 (b): the logistic regression prediction sigma(x w), squared error to 1/2."""
    error = sigmoid(matmul(x, w)) - 0.5
    return total(error * error)


def relu_layer(x: Any, w: Any, b: Any) -> Any:
    """Fig. 6.8 (c): a ReLU layer H = max(0, X W + b), loss sum(H^2)."""
    h = relu(matmul(x, w) + b)
    return total(h * h)


def _build_residual(sizes: dict, generator: Any, dtype: Any) -> tuple:
    width = sizes["width"]
    return residual, (_input(sizes, generator, dtype),
                      [_weights(generator, dtype, width, width) for _ in range(sizes["n"])])


def _build_unet(sizes: dict, generator: Any, dtype: Any) -> tuple:
    width, depth = sizes["width"], sizes["n"]
    down = [_weights(generator, dtype, width, width) for _ in range(depth)]
    up = [_weights(generator, dtype, width, width) for _ in range(depth)]
    return unet, (_input(sizes, generator, dtype), down, up)


def _build_transformer(sizes: dict, generator: Any, dtype: Any) -> tuple:
    width = sizes["width"]
    layers = [[_weights(generator, dtype, width, width) for _ in range(4)]
              + [_weights(generator, dtype, width, 2 * width),
                 _weights(generator, dtype, 2 * width, width)] for _ in range(sizes["n"])]
    return transformer, (_input(sizes, generator, dtype), layers)


def _build_densenet(sizes: dict, generator: Any, dtype: Any) -> tuple:
    width = sizes["width"]
    weights = [_weights(generator, dtype, width * (layer + 1), width)
               for layer in range(sizes["n"])]
    return densenet, (_input(sizes, generator, dtype), weights)


def _build_logistic(sizes: dict, generator: Any, dtype: Any) -> tuple:
    return logistic, (_input(sizes, generator, dtype), _weights(generator, dtype,
                                                                sizes["width"], 1))


def _build_relu_layer(sizes: dict, generator: Any, dtype: Any) -> tuple:
    width = sizes["width"]
    return relu_layer, (_input(sizes, generator, dtype), _weights(generator, dtype, width, width),
                        xp.zeros(width, dtype=dtype))


def _sizes(n: int | None, n_help: str, width: int, batch: int) -> tuple[SizeParameter, ...]:
    found = (SizeParameter("width", int, width, "features per row"),
             SizeParameter("batch", int, batch, "rows (examples, or sequence positions)"))
    return found if n is None else (SizeParameter("n", int, n, n_help),) + found


GRAPH_WORKLOADS = Registry("graph workload")
for _spec in (
    WorkloadSpec("residual", "n residual blocks h + tanh(h W)/2: a skip around every block "
                 "(4 ops a block)", _build_residual, _sizes(16, "blocks", 64, 32)),
    WorkloadSpec("unet", "a U-Net of depth n: encoder tanh(e W), decoder tanh(h W) times the "
                 "encoder level (long skips; 5 ops a level)", _build_unet,
                 _sizes(4, "levels", 64, 32)),
    WorkloadSpec("transformer", "n pre-norm blocks: attention with softmax and a layer-norm "
                 "composite, an MLP, residuals (about 40 ops a block)", _build_transformer,
                 _sizes(2, "blocks", 32, 16)),
    WorkloadSpec("densenet", "n layers, each reading the concatenation of all earlier outputs",
                 _build_densenet, _sizes(6, "layers", 32, 16)),
    WorkloadSpec("layered", "a random layered DAG of n nodes as Moccasin benchmarks (Gagrani et "
                 "al.'s generator: layers, edges to the previous layer, skip connections; "
                 "deterministic from the seed; see workloads/layered.py)", build_layered,
                 _sizes(40, "nodes of the DAG", 16, 8) + (
                     SizeParameter("layer_width", float, DEFAULT_LAYER_WIDTH,
                                   "mean layer width over sqrt(n)"),
                     SizeParameter("edge_density", float, DEFAULT_EDGE_DENSITY,
                                   "probability a node reads a node of the previous layer"),
                     SizeParameter("skip_density", float, DEFAULT_SKIP_DENSITY,
                                   "probability a node reads one node of an earlier layer"))),
    WorkloadSpec("logistic", "Fig. 6.8 (b): logistic regression sigma(x w)", _build_logistic,
                 _sizes(None, "", 16, 32)),
    WorkloadSpec("relu_layer", "Fig. 6.8 (c): a ReLU layer max(0, X W + b)", _build_relu_layer,
                 _sizes(None, "", 16, 32)),
):
    GRAPH_WORKLOADS.register(_spec)

graph_names = GRAPH_WORKLOADS.names
get_graph_workload = GRAPH_WORKLOADS.get


def build_graph(name: str, sizes: Mapping[str, Any] | None = None, seed: int = 0,
                dtype: str = "float64") -> GraphWorkload:
    """Build graph workload ``name``; the same arguments always give the same arrays."""
    spec = get_graph_workload(name)
    resolved = spec.resolve(sizes)
    fn, args = spec.builder(resolved, xp.random.default_rng(seed), check_dtype(dtype))
    return GraphWorkload(name, resolved, fn, args)


FAMILIES = ("chain", "graph")  # chain workloads: .chain_models; graph ones: above


def workload_family(name: str, family: str | None = None) -> str:
    """The family ("chain" or "graph") of workload ``name``: ``family`` when given (the name
    must be in that registry), else "chain" for a chain workload's name (a name in both, such
    as ``residual``, means the chain unless ``family="graph"``) and "graph" for a graph
    workload's. Raises :class:`~checkpoint_ad.errors.UnknownNameError` naming both lists."""
    if family is not None and family not in FAMILIES:
        raise UnknownNameError(f"unknown workload family {family!r}; known families: "
                               f"{', '.join(FAMILIES)}")
    if family in (None, "chain") and name in chain_models.names():
        return "chain"
    if family in (None, "graph") and name in graph_names():
        return "graph"
    known = {"chain": chain_models.names(), "graph": graph_names()}
    shown = "; ".join(f"{kind} workloads: {', '.join(known[kind])}"
                      for kind in ([family] if family else FAMILIES))
    raise UnknownNameError(f"unknown {family or ''} workload {name!r}; {shown}".replace("  ", " "))
