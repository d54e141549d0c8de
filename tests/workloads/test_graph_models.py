"""Graph workloads: each traces, and under every fixed policy gives value_and_grad's
gradients bit for bit with the predicted peak equal to the Meter's."""
from __future__ import annotations

import numpy as np
import pytest

import checkpoint_ad as ca
from checkpoint_ad.engine.trees import flatten
from checkpoint_ad.workloads.graph_models import build_graph, graph_names


@pytest.mark.parametrize("name", graph_names())
@pytest.mark.parametrize("policy", ["store_all", "recompute_all", "save_ops"])
def test_every_graph_workload_is_exact_under_the_fixed_policies(name: str, policy: str) -> None:
    sizes = {} if name in ("logistic", "relu_layer") else {"n": 2}
    workload = build_graph(name, {**sizes, "width": 8, "batch": 4})
    value, grads = ca.value_and_grad(workload.fn, argnums=workload.argnums)(*workload.args)
    result = ca.backprop_graph(workload.fn, *workload.args, argnums=workload.argnums,
                               policy=policy)
    assert result.value == value
    assert all(np.array_equal(a, b) for a, b in zip(flatten(result.grads)[0], flatten(grads)[0]))
    assert result.stats.peak_bytes == result.stats.predicted_peak_bytes


@pytest.mark.parametrize("name, ops", [("residual", 4), ("unet", 5), ("densenet", 3)])
def test_ops_grow_linearly_with_the_size(name: str, ops: int) -> None:
    small, large = (len(ca.graph_costs(ca.trace(w.fn, *w.args)).op_nodes)
                    for w in (build_graph(name, {"n": 5}), build_graph(name, {"n": 10})))
    assert large - small == 5 * ops


def test_unknown_graph_workloads_and_sizes_are_named() -> None:
    with pytest.raises(ca.UnknownNameError, match="known graph workloads: residual"):
        build_graph("resnet")
    with pytest.raises(ca.ExperimentError, match="no size depth"):
        build_graph("unet", {"depth": 3})
