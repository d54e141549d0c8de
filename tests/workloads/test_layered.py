"""The random layered DAGs of Moccasin's benchmark set (workloads/layered.py): deterministic
from the seed, layered, connected to the output, and traced to the ops the docstring counts."""
from __future__ import annotations

import numpy as np
import pytest

import checkpoint_ad as ca
from checkpoint_ad.workloads.graph_models import build_graph
from checkpoint_ad.workloads.layered import layered_dag


def _dag(n: int, seed: int, **densities: float) -> list[list[int]]:
    return layered_dag(n, np.random.default_rng(seed), **densities)


def test_the_same_seed_gives_the_same_dag_and_another_seed_another() -> None:
    assert _dag(100, 3) == _dag(100, 3)
    assert _dag(100, 3) != _dag(100, 4)
    first, again = build_graph("layered", {"n": 30}, seed=5), build_graph("layered", {"n": 30},
                                                                          seed=5)
    assert first.fn.args == again.fn.args
    assert all(np.array_equal(a, b) for a, b in zip(first.args, again.args))


@pytest.mark.parametrize("n, seed", [(2, 0), (10, 1), (100, 2), (250, 3)])
def test_every_node_reads_earlier_nodes_and_reaches_the_output(n: int, seed: int) -> None:
    parents = _dag(n, seed)
    assert len(parents) == n
    assert parents[0] == [] and parents[-1] != []
    assert all(p < v for v, found in enumerate(parents) for p in found)
    readers = {p for found in parents for p in found}
    assert readers == set(range(n - 1))  # every node but the output is read
    sources = [v for v, found in enumerate(parents) if not found]
    assert sources == list(range(len(sources)))  # the first layer, and only it, reads the input


def test_the_densities_shape_the_edges() -> None:
    sparse, dense = _dag(200, 0, edge_density=0.0, skip_density=0.0), _dag(
        200, 0, edge_density=1.0, skip_density=0.0)
    edges = [sum(map(len, dag)) for dag in (sparse, dense)]
    assert edges[0] < edges[1]
    # every edge taken and no skips: each node reads exactly the whole previous layer
    assert all(found == list(range(found[0], found[-1] + 1)) for found in dense if found)


def test_the_traced_graph_has_the_ops_the_docstring_counts() -> None:
    n, seed = 60, 7
    workload = build_graph("layered", {"n": n}, seed=seed)
    parents = layered_dag(n, np.random.default_rng(seed))
    assert workload.fn.args == (parents,)
    per_node = {0: 2, 1: 1, 2: 1}
    expected = sum(per_node.get(len(found), 3) for found in parents) + 2  # the loss: h * h, sum
    costs = ca.graph_costs(ca.trace(workload.fn, *workload.args))
    assert len(costs.op_nodes) == expected
    matrices = sum(1 for found in parents if len(found) == 0 or len(found) >= 3)
    assert len(workload.args) == 1 + matrices
