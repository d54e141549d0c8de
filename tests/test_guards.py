"""The library's guards: a stage that changes between evaluations, non-finite values, budgets."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import checkpoint_ad as ca
from checkpoint_ad.chains.chain import Chain, Stage


def counting_stage(change):
    """A stage whose n-th evaluation (0-based, profiling sweep included) is altered by ``change``."""
    calls = itertools.count()

    def stage(x, params):
        return change(next(calls), ca.sin(x))
    return stage


def test_a_stage_whose_shape_changes_on_recomputation_is_named() -> None:
    stage = counting_stage(lambda k, y: y if k < 2 else ca.concatenate([y, y]))
    chain = Chain([Stage(lambda x, p: ca.sin(x)), Stage(stage, name="shifty"), Stage(lambda x, p: x * 2)])
    with pytest.raises(ca.StageError, match=r"stage 2 \(shifty\).*shape"):
        ca.backprop(chain, np.ones(3), policy="recompute_all")


def test_verify_catches_recomputed_values_that_differ() -> None:
    stage = counting_stage(lambda k, y: y + 1e-12 * k)
    chain = Chain([Stage(stage, name="drifting"), Stage(lambda x, p: ca.sin(x))])
    ca.backprop(chain, np.ones(3), policy="recompute_all")  # silently different without verify
    with pytest.raises(ca.StageError, match=r"stage 1 \(drifting\) recomputed values"):
        ca.backprop(chain, np.ones(3), policy="recompute_all", verify=True)


def test_verify_passes_for_deterministic_and_dropout_chains() -> None:
    chain = Chain.repeat(lambda x, p: ca.dropout(ca.tanh(x), 0.3), 12)
    for policy, params in [("recompute_all", {}), ("revolve", {"slots": 3}), ("sqrt_n", {})]:
        result = ca.backprop(chain, np.ones(7), policy=policy, verify=True, **params)
        assert result.stats.forward_evals == result.plan.forward_evals


def test_check_finite_names_the_first_bad_stage() -> None:
    chain = Chain([Stage(lambda x, p: ca.sin(x)), Stage(lambda x, p: ca.log(x - 5), name="bad log"),
                   Stage(lambda x, p: ca.log(x))])
    with np.errstate(invalid="ignore"):
        with pytest.raises(ca.NonFiniteError, match=r"stage 2 \(bad log\)"):
            ca.backprop(chain, np.ones(3), check_finite=True)


def test_max_memory_refuses_before_running() -> None:
    calls = itertools.count()
    chain = Chain.repeat(lambda x, p: (next(calls), ca.sin(x))[1], 20)
    fine = ca.backprop(chain, np.ones(100), policy="store_all")
    evaluations_so_far = next(calls)
    with pytest.raises(ca.BudgetError, match=str(fine.stats.predicted_peak_bytes)):
        ca.backprop(chain, np.ones(100), policy="store_all", max_memory=fine.stats.peak_bytes - 1)
    # only the profiling sweep ran, which measures one stage of this homogeneous chain
    assert next(calls) == evaluations_so_far + 1 + 1


def test_a_stage_that_returns_no_array_is_named() -> None:
    chain = Chain([Stage(lambda x, p: "oops", name="wordy")])
    with pytest.raises(ca.StageError, match=r"stage 1 \(wordy\) returned str"):
        ca.backprop(chain, np.ones(2))


def test_backprop_on_a_tracer_points_to_sequential() -> None:
    chain = Chain.repeat(lambda x, p: ca.sin(x), 2)
    with pytest.raises(ca.StageError, match="sequential"):
        ca.grad(lambda x: ca.backprop(chain, x).value)(np.ones(2))
