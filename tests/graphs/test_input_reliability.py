"""Issue 22: inputs that gave wrong answers, raw errors or silent acceptance. Each test is the
reproducer of one root cause (F4, F9, F11, F12, F13, F14) and the package's answer now."""
from __future__ import annotations

import numpy as np
import pytest

import checkpoint_ad as ca
from checkpoint_ad.graphs.policies.checkmate_model import MAX_UNITS, Model

CHAIN_PARENTS = [(), (0,), (1,), (2,), (3,)]


def square_sum(x):
    return ca.sum(x * x)


# F4: an argument named twice in argnums -------------------------------------------------------

@pytest.mark.parametrize("argnums", [(0, 0), (0, -1), [0, 0]])
def test_an_argument_named_twice_is_refused_by_every_entry_point(argnums) -> None:
    x = np.array([1.0, 2.0])
    message = r"argnums .* names argument 0 twice; name each argument once"
    calls = [lambda: ca.backprop_graph(square_sum, x, argnums=argnums),
             lambda: ca.value_and_grad(square_sum, argnums=argnums)(x),
             lambda: ca.grad(square_sum, argnums=argnums)(x),
             lambda: ca.check_grads(square_sum, x, argnums=argnums)]
    for call in calls:
        with pytest.raises(ca.ArgnumsError, match=message):
            call()


def test_distinct_argnums_still_give_each_whole_gradient() -> None:
    x, y = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    product = lambda a, b: ca.sum(a * b)  # noqa: E731
    graph = ca.backprop_graph(product, x, y, argnums=(1, 0)).grads
    _, engine = ca.value_and_grad(product, argnums=(1, 0))(x, y)
    for got in (graph, engine):
        np.testing.assert_array_equal(got[0], x)
        np.testing.assert_array_equal(got[1], y)


# F9: per-node fields of the wrong length --------------------------------------------------------

@pytest.mark.parametrize("field, value", [("residuals", [()]), ("costs", [0]),
                                          ("ops", [None, "op", "op"]),
                                          ("differentiable", [True]), ("sizes", [8])])
def test_every_per_node_field_must_have_one_entry_per_node(field, value) -> None:
    fields = {"sizes": [8, 8], field: value}
    entries = f"{len(value)} {'entry' if len(value) == 1 else 'entries'}"
    with pytest.raises(ca.PlanError, match=rf"^GraphCosts.{field} has {entries}, expected 2$"):
        ca.GraphCosts([(), (0,)], **fields)


# F11: costs beyond a float ----------------------------------------------------------------------

@pytest.mark.parametrize("costs, message", [
    ([0, 10**400], r"^GraphCosts.costs\[1\] must be a finite number >= 0, got 1000.*\.\.\.$"),
    ([0, 1e308, 1e308], r"^GraphCosts.costs must add up to a finite number \(at most "
                        r"1.8e\+308\); theirs overflows a float$"),
    ([0, 1e308, 1e308, 1], r"GraphCosts.costs must add up to a finite number"),
])
def test_graph_costs_whose_sum_is_not_finite_are_refused(costs, message) -> None:
    parents = CHAIN_PARENTS[:len(costs)]
    with pytest.raises(ca.PlanError, match=message):
        ca.GraphCosts(parents, [8] * len(costs), costs=costs)


@pytest.mark.parametrize("compute, message", [
    ((1, 10**400), r"^ChainCosts.compute\[1\] \(the cost of stage 2\) must be a finite number"),
    ((1e308, 1e308, 1.0), r"^ChainCosts.compute must add up to a finite number"),
])
def test_chain_costs_whose_sum_is_not_finite_are_refused(compute, message) -> None:
    with pytest.raises(ca.PlanError, match=message):
        ca.ChainCosts(len(compute), compute=compute)


# F12: Checkmate with sizes HiGHS cannot count exactly -------------------------------------------

@pytest.mark.parametrize("big", [10**12 + 1, 10**15 + 3])
def test_checkmate_never_calls_a_costlier_plan_optimal(big, capfd) -> None:
    costs = ca.GraphCosts(CHAIN_PARENTS, [8, big, 3, big, 3])
    store_all = ca.plan_graph("store_all", costs)
    assert not Model(costs).exact and Model(costs).unit > 1  # rounded, past MAX_UNITS units
    for policy in ("checkmate", "checkmate_lp"):
        plan = ca.plan_graph(policy, costs, budget_bytes=store_all.peak_bytes)
        assert plan.cost == store_all.cost == 4
        assert plan.peak_bytes <= store_all.peak_bytes
    tight = ca.plan_graph("checkmate", costs, budget_bytes=store_all.peak_bytes - 1)
    assert tight.status != "optimal" and tight.lower_bound is None  # a rounded model
    assert tight.cost >= ca.plan_graph("optimal", costs, budget_bytes=tight.peak_bytes).cost
    assert capfd.readouterr().out == ""  # HiGHS printed its numerical trouble here before


def test_sizes_within_the_unit_limit_stay_exact() -> None:
    costs = ca.GraphCosts(CHAIN_PARENTS, [8, 1000, 3, 1000, 3])
    assert Model(costs).exact and Model(costs).unit == 1
    big = MAX_UNITS * 2  # in units of the gcd, 8 bytes, all values and cotangents fit
    assert Model(ca.GraphCosts(CHAIN_PARENTS, [8, big, 8, big, 8])).exact
    plan = ca.plan_graph("checkmate", costs, budget_bytes=ca.plan_graph("store_all",
                                                                        costs).peak_bytes - 1)
    assert (plan.status, plan.method, plan.cost) == ("optimal", "milp", 5)


# F13: numpy integers and arrays -----------------------------------------------------------------

def test_numpy_integers_and_arrays_are_taken_where_ints_and_lists_are() -> None:
    reference = ca.GraphCosts([(), (0,), (1,)], [8, 8, 8])
    for costs in (ca.GraphCosts([(), (np.int64(0),), (np.int32(1),)], [np.int64(8), 8, 8]),
                  ca.GraphCosts([(), np.array([0]), (1,)], np.array([8, 8, 8]),
                                costs=np.array([0, 1, 1]))):
        assert costs.key() == reference.key()
        plan = ca.plan_graph("optimal", costs, budget_bytes=np.int64(32))
        assert plan.params == {"budget_bytes": 32} and type(plan.params["budget_bytes"]) is int
    chain = ca.ChainCosts(np.int64(2), state_bytes=np.array([8, 8, 8]), compute=np.ones(2))
    assert chain == ca.ChainCosts(2, state_bytes=(8, 8, 8), compute=(1.0, 1.0))
    for policy, params in (("revolve", {"slots": 3}), ("sqrt_n", {"segments": 3}),
                           ("optimal", {"slots": 3})):
        numpy_params = {k: np.int64(v) for k, v in params.items()}
        made, wanted = ca.plan(policy, n=10, **numpy_params), ca.plan(policy, n=10, **params)
        assert (made.params, list(made)) == (wanted.params, list(wanted))


@pytest.mark.parametrize("sizes, message", [
    ([8, 8.5], r"GraphCosts.sizes\[1\] must be a whole number of bytes >= 0, got 8.5"),
    (np.array([True, True]), r"GraphCosts.sizes\[0\] must be a whole number of bytes >= 0, "
                             r"got True"),
    (np.array([8, -8]), r"GraphCosts.sizes\[1\] must be a whole number of bytes >= 0, got -8"),
    (np.ones((2, 1), dtype=int), r"GraphCosts.sizes must be a sequence or a 1-D array"),
])
def test_bools_fractions_negatives_and_2d_arrays_are_still_refused(sizes, message) -> None:
    with pytest.raises(ca.PlanError, match=message):
        ca.GraphCosts([(), (0,)], sizes)
    with pytest.raises(ca.PolicyError, match="budget_bytes must be a whole number of bytes"):
        ca.plan_graph("optimal", ca.GraphCosts([(), (0,)], [8, 8]), budget_bytes=np.float64(8.5))


# F14: silently accepted or raw errors -----------------------------------------------------------

def test_differentiable_flags_must_be_bools() -> None:
    with pytest.raises(ca.PlanError, match=r"^GraphCosts.differentiable\[1\] must be True or "
                                           r"False, got 'False'$"):
        ca.GraphCosts([(), (0,)], [8, 8], differentiable=[True, "False"])
    assert ca.GraphCosts([(), (0,)], [8, 8], differentiable=np.array([True, False])
                         ).differentiable == (True, False)


@pytest.mark.parametrize("max_memory", [float("nan"), "1KB", 0, -5, True])
def test_backprop_graph_refuses_a_meaningless_max_memory_before_running(max_memory) -> None:
    calls = []

    def traced(x):
        calls.append(1)
        return ca.sum(x * x)

    with pytest.raises(ca.ArgumentError, match=r"^backprop_graph: max_memory \(bytes\) must be "
                                               r"a finite number > 0, got "):
        ca.backprop_graph(traced, np.ones(2), max_memory=max_memory)
    assert not calls


@pytest.mark.parametrize("seed", [-1, 1.5, True])
def test_seeds_are_non_negative_integers(seed) -> None:
    with_dropout = lambda x: ca.sum(ca.dropout(x, 0.5) * x)  # noqa: E731
    with pytest.raises(ca.ArgumentError, match=rf"^backprop_graph: seed must be an integer >= 0, "
                                               rf"got {seed!r}$"):
        ca.backprop_graph(with_dropout, np.ones(3), seed=seed)
    costs = ca.GraphCosts(CHAIN_PARENTS[:3], [8, 8, 8])
    with pytest.raises(ca.PolicyError, match=rf"^policy 'checkmate_lp': seed must be a whole "
                                             rf"number >= 0, got {seed!r}$"):
        ca.plan_graph("checkmate_lp", costs, budget_bytes=24, rounding="randomized", seed=seed)


def test_plans_and_costs_of_the_wrong_type_get_the_package_error() -> None:
    costs = ca.GraphCosts(CHAIN_PARENTS[:3], [8, 8, 8])
    plan = ca.plan_graph("store_all", costs)
    broken = ca.GraphPlan("store_all", {}, None, 2, 2.0, 16)
    with pytest.raises(ca.PlanError, match=r"^the steps of a plan must be a sequence of "
                                           r"\(action, node\) steps, got None$"):
        ca.check_graph_plan(costs, broken)
    with pytest.raises(ca.PlanError, match=r"^explain: costs must be a GraphCosts, got NoneType$"):
        plan.explain(None)
    with pytest.raises(ca.PlanError, match=r"^check_graph_plan: costs must be a GraphCosts, "
                                           r"got list$"):
        ca.check_graph_plan([8, 8], plan)
