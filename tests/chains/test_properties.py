"""Proof by many cases (hypothesis): random chains under every policy give store_all's gradients
bit for bit; mutated plans are rejected or still exact; fuzzed ops gradcheck or raise our errors."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import checkpoint_ad as ca
from checkpoint_ad.chains.chain import Chain, Stage
from checkpoint_ad.chains.plans import Action, Plan, check_plan
from checkpoint_ad.engine.trees import flatten
from closed_forms import expected_counts, revolve_evals

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def make_stage(kind: str, width: int, dtype: type, rng: np.random.Generator) -> Stage:
    if kind == "sin":
        return Stage(lambda x, p: ca.sin(x), name=kind)
    if kind == "dropout":
        return Stage(lambda x, p: ca.dropout(ca.tanh(x), 0.25), name=kind)
    weights = (rng.standard_normal((width, width)) / np.sqrt(width)).astype(dtype)
    bias = rng.standard_normal(width).astype(dtype)
    if kind == "dense":
        return Stage(lambda x, p: ca.tanh(x @ p[0] + p[1]), (weights, bias), name=kind)
    return Stage(lambda x, p: x + 0.5 * ca.relu(x @ p["w"]), {"w": weights}, name=kind)


@st.composite
def chains(draw):
    n = draw(st.integers(1, 40))
    width = draw(st.integers(1, 6))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    kinds = draw(st.lists(st.sampled_from(["sin", "dense", "residual", "dropout"]),
                          min_size=n, max_size=n))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    chain = Chain([make_stage(kind, width, dtype, rng) for kind in kinds])
    x0 = rng.standard_normal((draw(st.integers(1, 3)), width)).astype(dtype)
    return chain, x0


@st.composite
def policies(draw, n: int | None = None):
    name = draw(st.sampled_from(["store_all", "recompute_all", "sqrt_n", "revolve", "optimal"]))
    if name == "sqrt_n":
        return name, {"segments": draw(st.integers(1, 12))}
    if name == "revolve":
        return name, {"slots": draw(st.integers(1, 12))}
    if name == "optimal":
        return name, {"slots": draw(st.integers(1, 12)), "tapes": draw(st.booleans())}
    return name, {}


def expected(name: str, n: int, params: dict) -> tuple[int, int | None] | None:
    if name == "optimal" and not params["tapes"]:
        return revolve_evals(n, params["slots"]), None  # equals revolve's count exactly
    return expected_counts(name, n, params)


def leaves(result) -> list[np.ndarray]:
    return [result.value, result.grad_input] + [
        leaf for g in result.grad_params for leaf in flatten(g)[0]]


@SETTINGS
@given(chains(), policies())
def test_random_chains_match_store_all_bit_for_bit(case, policy) -> None:
    (chain, x0), (name, params) = case, policy
    reference = ca.backprop(chain, x0, seed=3, trace_memory=False)
    result = ca.backprop(chain, x0, policy=name, seed=3, trace_memory=False, **params)
    for got, want in zip(leaves(result), leaves(reference)):
        assert got.dtype == want.dtype and np.array_equal(got, want)
    stats = result.stats
    assert stats.peak_bytes == stats.predicted_peak_bytes
    assert (stats.forward_evals, stats.peak_stored) == (result.plan.forward_evals,
                                                        result.plan.peak_stored)
    want = expected(name, chain.n, params)
    if want is not None:
        assert stats.forward_evals == want[0]
        assert want[1] is None or stats.peak_stored == want[1]


MUTATIONS = ["delete", "duplicate", "swap", "shift", "retype"]


def mutate(plan: Plan, kind: str, position: int, value: int) -> list[tuple]:
    steps = [tuple(step) for step in plan]
    i = position % len(steps)
    action, stage, end = steps[i]
    if kind == "delete":
        del steps[i]
    elif kind == "duplicate":
        steps.insert(i, steps[i])
    elif kind == "swap" and i + 1 < len(steps):
        steps[i], steps[i + 1] = steps[i + 1], steps[i]
    elif kind == "shift":
        delta = 1 if value % 2 else -1
        steps[i] = (action, stage + delta, end + delta if action is Action.ADVANCE else stage + delta)
    else:
        replacement = list(Action)[value % len(Action)]
        steps[i] = (replacement, stage, end if replacement is Action.ADVANCE else stage)
    return steps


@SETTINGS
@given(st.integers(1, 12), policies(), st.sampled_from(MUTATIONS), st.integers(0, 10**6),
       st.integers(0, 10**6))
def test_mutated_plans_are_rejected_or_still_exact(n, policy, kind, position, value) -> None:
    """The checker never lets through a plan that would compute a different gradient."""
    name, params = policy
    plan = ca.plan(name, n=n, **params)
    steps = mutate(plan, kind, position, value)
    chain, x0 = Chain.repeat(lambda x, p: ca.sin(x), n), np.linspace(0.1, 1.0, 3)
    try:
        mutated = Plan.from_steps(n, steps, slots=plan.slots)
        counts = check_plan(mutated)
    except ca.PlanError as error:
        assert str(error)  # named, readable rejection
        return
    from checkpoint_ad.chains.chain import profile_chain
    from checkpoint_ad.chains.executor import ArrayRunner, Executor
    from checkpoint_ad.plans.memory import Meter
    runner = ArrayRunner(chain, 0, profile_chain(chain, x0))
    executor = Executor(mutated, runner, Meter())
    executor.forward(x0)
    gradient = executor.reverse(lambda x_n: np.ones_like(x_n))
    reference = ca.backprop(chain, x0, trace_memory=False).grad_input
    assert np.array_equal(gradient, reference)
    assert runner.evaluations == counts.forward_evals


@pytest.mark.parametrize("name, params", [("store_all", {}), ("recompute_all", {}),
                                          ("sqrt_n", {}), ("revolve", {"slots": 3}),
                                          ("optimal", {"slots": 3})])
def test_every_lost_or_repeated_reversal_is_rejected(name, params) -> None:
    plan = ca.plan(name, n=9, **params)
    steps = [tuple(step) for step in plan]
    for i, step in enumerate(steps):
        if step[0] in (Action.TURN, Action.BACKWARD):
            for broken in (steps[:i] + steps[i + 1:], steps[:i + 1] + steps[i:]):
                with pytest.raises(ca.PlanError, match=r"step \d+|ends before"):
                    check_plan(Plan.from_steps(9, broken))


BINARY = [ca.add, ca.subtract, ca.multiply, ca.divide, ca.maximum, ca.minimum]
REDUCTIONS = [ca.sum, ca.max, ca.mean, ca.logsumexp]

shapes = st.lists(st.integers(1, 3), min_size=0, max_size=3).map(tuple)


@SETTINGS
@given(st.sampled_from(BINARY), shapes, shapes, st.integers(0, 2**16))
def test_fuzzed_binary_ops_gradcheck_or_raise_our_error(op, shape_a, shape_b, seed) -> None:
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.5, 2.0, shape_a) * rng.choice([-1, 1], shape_a)
    b = rng.uniform(0.5, 2.0, shape_b) + 3.0  # away from a: no ties, no division by ~0
    try:
        np.broadcast_shapes(shape_a, shape_b)
    except ValueError:
        with pytest.raises(ca.ShapeError, match=op.__name__):
            op(a, b)
        return
    ca.check_grads(lambda x, y: ca.sum(op(x, y) * np.cos(op(a, b))), a, b)


@SETTINGS
@given(st.sampled_from(REDUCTIONS), shapes, st.one_of(st.none(), st.integers(-4, 4),
                                                      st.tuples(st.integers(-4, 4))),
       st.booleans(), st.integers(0, 2**16))
def test_fuzzed_reductions_gradcheck_or_raise_our_error(op, shape, axis, keepdims, seed) -> None:
    x = np.random.default_rng(seed).permutation(np.prod(shape, dtype=int)).reshape(shape) / 3.0
    try:
        expected = np.sum(x, axis=axis, keepdims=keepdims)
    except (ValueError, np.exceptions.AxisError):
        if shape == () and axis in ((0,), (-1,)):  # numpy takes 0 and -1 on 0-d, not (0,); we do
            expected = x
        else:
            with pytest.raises(ca.CheckpointADError):
                op(x, axis=axis, keepdims=keepdims)
            return
    assert np.shape(op(x, axis=axis, keepdims=keepdims)) == np.shape(expected)
    weights = np.cos(np.arange(np.size(expected)).reshape(np.shape(expected)))
    ca.check_grads(lambda v: ca.sum(op(v, axis=axis, keepdims=keepdims) * weights), x)
