"""Random layered DAGs: the synthetic graph family Moccasin (Bartan et al., ICML 2023) plans on,
introduced by Gagrani et al. (NeurIPS 2022, Appendix A) as computation graphs with a complex
interconnect: regenerated here from their description, not copied.

**The graph** (:func:`layered_dag`, deterministic from its ``generator``). ``n`` nodes are
spread over layers: each layer's width is drawn from a normal distribution of mean
``max(1, layer_width * sqrt(n))`` and standard deviation ``width_spread`` times that mean
(rounded, at least 1), layers being added until the nodes run out; the last layer holds one
node, the graph's output. Each node of a layer after the first reads each node of the previous
layer with probability ``edge_density`` (at least one of them, drawn uniformly when none is),
and with probability ``skip_density`` one more node drawn uniformly from the layers before the
previous one (a skip connection). A node that no later node reads gets a reader drawn
uniformly from the next layer, so every node lies on a path to the output. The benchmark set's
files name its parameters (width 0.27 to 0.43, width variance 0.75, edge density 0.2,
skip-connection density 0.14 for 100 to 1,000 nodes); our reading of them is the one above.

**The traced function** (:func:`layered`): every node is a ``width``-wide value of ``batch``
rows; a node of the first layer is ``tanh(x W)``, a node with one parent ``tanh(p)``, with
two ``p1 * p2``, with more ``tanh(concatenate(parents) W)``; the loss is ``sum(h * h)`` of the
output node. So a node is one op (``tanh``, ``multiply``), two (``matmul``, ``tanh``) in the
first layer, or three for a node of three parents or more: the traced graph has more ops than
the DAG has nodes (1.3 times at 100 nodes, 1.6 at 500, 1.8 at 1,000 for the default
densities: wider layers give more nodes three parents or more), all of one size except the
concatenations; costs are 1 per op like every graph workload.
"""
from __future__ import annotations

import functools
import math
from typing import Any

from ..engine.primitives import concatenate, matmul, sum as total, tanh

DEFAULT_LAYER_WIDTH = 0.3
DEFAULT_WIDTH_SPREAD = 0.75
DEFAULT_EDGE_DENSITY = 0.2
DEFAULT_SKIP_DENSITY = 0.14


def _layer_sizes(n: int, generator: Any, layer_width: float, spread: float) -> list[int]:
    """Widths of the layers of an ``n``-node DAG, the last one of width 1."""
    mean = max(1.0, layer_width * math.sqrt(n))
    sizes, left = [], n - 1
    while left > 0:
        width = max(1, min(left, round(generator.normal(mean, spread * mean))))
        sizes.append(width)
        left -= width
    return sizes + [1]


def layered_dag(n: int, generator: Any, layer_width: float = DEFAULT_LAYER_WIDTH,
                width_spread: float = DEFAULT_WIDTH_SPREAD,
                edge_density: float = DEFAULT_EDGE_DENSITY,
                skip_density: float = DEFAULT_SKIP_DENSITY) -> list[list[int]]:
    """The parents of each of the ``n`` nodes (n >= 2) of a random layered DAG (see the module
    docstring), drawn from ``generator`` (a numpy Generator). Nodes are numbered layer by layer;
    the last node is the output; the nodes of the first layer have no parents."""
    layers, first = [], 0
    for width in _layer_sizes(n, generator, layer_width, width_spread):
        layers.append(list(range(first, first + width)))
        first += width
    parents: list[list[int]] = [[] for _ in range(n)]
    for depth in range(1, len(layers)):
        previous = layers[depth - 1]
        earlier = [v for layer in layers[:depth - 1] for v in layer]
        for v in layers[depth]:
            chosen = [p for p in previous if generator.random() < edge_density]
            if not chosen:
                chosen = [previous[int(generator.integers(len(previous)))]]
            if earlier and generator.random() < skip_density:
                chosen.append(earlier[int(generator.integers(len(earlier)))])
            parents[v] = chosen
    read = {p for found in parents for p in found}
    for depth, layer in enumerate(layers[:-1]):
        following = layers[depth + 1]
        for v in layer:
            if v not in read:
                parents[following[int(generator.integers(len(following)))]].append(v)
    return [sorted(set(found)) for found in parents]


def layered(x: Any, weights: list, parents: list[list[int]]) -> Any:
    """The layered DAG ``parents`` as a function of the input ``x`` (see the module docstring);
    ``weights[v]`` is node v's matrix (None for a node that has none)."""
    values: list[Any] = []
    for v, found in enumerate(parents):
        if not found:
            values.append(tanh(matmul(x, weights[v])))
        elif len(found) == 1:
            values.append(tanh(values[found[0]]))
        elif len(found) == 2:
            values.append(values[found[0]] * values[found[1]])
        else:
            joined = concatenate([values[p] for p in found], axis=1)
            values.append(tanh(matmul(joined, weights[v])))
    return total(values[-1] * values[-1])


def build_layered(sizes: dict, generator: Any, dtype: Any) -> tuple:
    """The builder of the ``layered`` graph workload: the DAG drawn first from ``generator``,
    then the input and weights (scaled by 1/sqrt(fan-in))."""
    parents = layered_dag(sizes["n"], generator, sizes["layer_width"], DEFAULT_WIDTH_SPREAD,
                          sizes["edge_density"], sizes["skip_density"])
    width, batch = sizes["width"], sizes["batch"]
    x = generator.standard_normal((batch, width)).astype(dtype)
    weights = []
    for found in parents:
        rows = width * max(1, len(found))
        weights.append(None if 1 <= len(found) <= 2 else
                       (generator.standard_normal((rows, width)) / math.sqrt(rows)).astype(dtype))
    used = [w for w in weights if w is not None]
    return functools.partial(layered_of_arguments, parents), (x, *used)


def layered_of_arguments(parents: list[list[int]], x: Any, *matrices: Any) -> Any:
    """:func:`layered` with the matrices as positional arguments, in node order (the nodes
    that have one: first layer, three parents or more)."""
    placed, left = [], iter(matrices)
    for found in parents:
        placed.append(None if 1 <= len(found) <= 2 else next(left))
    return layered(x, placed, parents)
