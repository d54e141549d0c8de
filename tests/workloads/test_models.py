"""The workload registry: sizes, validation, determinism, and policy agreement on each workload."""
from __future__ import annotations

import numpy as np
import pytest

from checkpoint_ad.workloads import chain_models
from checkpoint_ad.chains.backprop import backprop
from checkpoint_ad.errors import ExperimentError, UnknownNameError
from checkpoint_ad.engine.trees import flatten

SMALL = {"chain": {"n": 5, "width": 7}, "mlp": {"n": 5, "width": 6, "batch": 3},
         "rnn": {"n": 5, "width": 6, "batch": 2, "inputs": 3},
         "residual": {"n": 5, "width": 6, "batch": 3},
         "hetero_mlp": {"n": 6, "batch": 2, "wide": 9, "narrow": 3, "period": 3}}


def test_the_issue_workloads_are_registered() -> None:
    assert {"chain", "mlp", "rnn", "residual", "hetero_mlp"} <= set(chain_models.names())
    assert set(SMALL) == set(chain_models.names())


def test_unknown_workload_lists_the_known_ones() -> None:
    with pytest.raises(UnknownNameError) as caught:
        chain_models.get_workload("transformer")
    for name in chain_models.names():
        assert name in str(caught.value)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_builds_n_stages_deterministically(name: str) -> None:
    first = chain_models.build(name, SMALL[name], seed=3)
    again = chain_models.build(name, SMALL[name], seed=3)
    other = chain_models.build(name, SMALL[name], seed=4)
    assert first.chain.n == SMALL[name]["n"]
    assert first.sizes == {**chain_models.get_workload(name).defaults(), **SMALL[name]}
    np.testing.assert_array_equal(first.x0, again.x0)
    assert not np.array_equal(first.x0, other.x0)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_every_policy_gives_store_alls_gradients_bit_for_bit(name: str) -> None:
    workload = chain_models.build(name, SMALL[name], seed=1)
    costs = list(workload.stage_costs) if workload.stage_costs else "unit"
    reference = backprop(workload.chain, workload.x0, policy="store_all", seed=2, costs=costs,
                         trace_memory=False)
    for policy, params in [("recompute_all", {}), ("sqrt_n", {}), ("revolve", {"slots": 2})]:
        result = backprop(workload.chain, workload.x0, policy=policy, seed=2, costs=costs,
                          trace_memory=False, **params)
        assert result.value == reference.value
        np.testing.assert_array_equal(result.grad_input, reference.grad_input)
        for mine, theirs in zip(flatten(result.grad_params)[0],
                                flatten(reference.grad_params)[0]):
            np.testing.assert_array_equal(mine, theirs)


def test_float32_stays_float32() -> None:
    workload = chain_models.build("mlp", SMALL["mlp"], dtype="float32")
    result = backprop(workload.chain, workload.x0, policy="revolve", seed=0, slots=2,
                      trace_memory=False)
    assert workload.x0.dtype == np.float32 and result.grad_input.dtype == np.float32


def test_hetero_mlp_differs_in_cost_and_size() -> None:
    workload = chain_models.build("hetero_mlp", SMALL["hetero_mlp"])
    assert chain_models.hetero_widths(workload.sizes) == [9, 3, 3, 9, 3, 3, 9]
    assert workload.stage_costs == (27.0, 9.0, 27.0, 27.0, 9.0, 27.0)
    result = backprop(workload.chain, workload.x0, trace_memory=False)
    assert result.grad_input.shape == (2, 9)
    uniform = chain_models.build("mlp", SMALL["mlp"])
    assert uniform.stage_costs is None


def test_rnn_shares_one_set_of_weights() -> None:
    workload = chain_models.build("rnn", SMALL["rnn"])
    assert len(workload.chain.parameter_groups()) == 1
    assert len({id(stage.params) for stage in workload.chain.stages}) == 1


@pytest.mark.parametrize("sizes, message", [
    ({"depth": 3}, "no size depth"),
    ({"n": 0}, "positive integer"),
    ({"n": 2.5}, "positive integer"),
    ({"width": True}, "positive integer"),
    ({"f": "exp"}, "one of"),
    ({"f": 3}, "must be str"),
])
def test_sizes_are_validated(sizes: dict, message: str) -> None:
    with pytest.raises(ExperimentError, match=message):
        chain_models.build("chain", sizes)


def test_dtype_must_be_a_float_type() -> None:
    with pytest.raises(ExperimentError, match="float"):
        chain_models.build("chain", {"n": 2}, dtype="int32")
    with pytest.raises(ExperimentError, match="unknown dtype"):
        chain_models.build("chain", {"n": 2}, dtype="float99")
