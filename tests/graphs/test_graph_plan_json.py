"""Graph plans round-trip through JSON (issue 24): ``GraphPlan.to_json`` and
``GraphPlan.from_json``, a loaded plan equal to the one written, malformed text refused in one
PlanError line, and a loaded plan checked by ``backprop_graph`` against the function's graph
before it runs."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

import checkpoint_ad as ca
from checkpoint_ad.graphs.plans import GraphPlan
from graph_families import resnet

COSTS = resnet(2)  # 8 nodes, unit sizes; store_all's peak is 6 bytes
POLICIES = [("store_all", {}), ("recompute_all", {}), ("save_ops", {"ops": ("add",)}),
            ("optimal", {"budget_bytes": 5}), ("dtr", {"budget_bytes": 5}),
            ("chen", {"segments": 2}), ("checkmate", {"budget_bytes": 5}),
            ("checkmate_lp", {"budget_bytes": 6})]


@pytest.mark.parametrize("policy, params", POLICIES, ids=lambda v: str(v))
def test_every_policy_round_trips(policy: str, params: dict) -> None:
    plan = ca.plan_graph(policy, COSTS, **params)
    text = plan.to_json()
    data = json.loads(text)
    assert (data["schema_version"], data["family"], data["policy"]) == (1, "graph", policy)
    loaded = GraphPlan.from_json(text)
    assert loaded == plan  # steps, params, cost, peak, method, status, bound, time, details
    assert ca.check_graph_plan(COSTS, loaded) == ca.check_graph_plan(COSTS, plan)
    assert loaded.to_json() == text


def test_details_json_cannot_hold_are_left_out_and_numpy_scalars_kept_as_numbers() -> None:
    plan = replace(ca.plan_graph("store_all", COSTS),
                   details={"evictions": (3, 4), "objective": np.float64(7.5),
                            "stages": np.int64(14), "solver": object()})
    loaded = GraphPlan.from_json(plan.to_json())
    assert loaded.details == {"evictions": (3, 4), "objective": 7.5, "stages": 14}
    assert type(loaded.details["stages"]) is int


def test_params_json_cannot_hold_are_refused_in_one_line() -> None:
    plan = replace(ca.plan_graph("store_all", COSTS), params={"ops": {"add"}})
    with pytest.raises(ca.PlanError, match=r"^to_json: this graph plan holds a value JSON "
                                           r"cannot hold: \{'add'\} \(set\) is not JSON$"):
        plan.to_json()


GOOD = json.loads(ca.plan_graph("store_all", COSTS).to_json())


def changed(**fields: object) -> str:
    """The JSON of a valid plan with ``fields`` replaced (``...``: removed)."""
    data = {**GOOD, **fields}
    return json.dumps({k: v for k, v in data.items() if v is not ...})


BAD = {
    "not_json": ('{"steps": [', "not JSON: Expecting value at line 1 column 12"),
    "not_an_object": ('"plan"', "expected a JSON object, got str"),
    "schema_version_2": (changed(schema_version=2),
                         "schema_version 2 is not supported (this package reads version 1)"),
    "schema_version_bool": (changed(schema_version=True), "schema_version True is not supported"),
    "chain_family": (changed(family="chain"),
                     "family must be 'graph', got 'chain'; read it with Plan.from_json"),
    "unknown_family": (changed(family="tree"), "family must be 'graph', got 'tree'"),
    "missing_field": (changed(details=...), "missing field 'details' (a graph plan has policy, "
                                            "params, steps, forward_evals, cost, peak_bytes, "
                                            "method, status, lower_bound, solve_s, details; "
                                            "optional: time, host_peak_bytes, bandwidth)"),
    "unknown_field": (changed(slots=3), "unknown field 'slots'"),
    "steps_not_array": (changed(steps={"compute": 1}), "steps must be a JSON array"),
    "step_of_three": (changed(steps=[["compute", 1, 1]]),
                      "step 0 must be [action, node], got ['compute', 1, 1]"),
    "action_not_text": (changed(steps=[[1, "compute"]]), "step 0 must be [action, node]"),
    "unknown_action": (changed(steps=[["compute", 1], ["evict", 1]]),
                       "step 1: unknown action 'evict'; actions: compute, free, backward"),
    "node_text": (changed(steps=[["compute", "1"]]),
                  "step 0: node must be an integer >= 0, got '1'"),
    "node_negative": (changed(steps=[["compute", -1]]),
                      "step 0: node must be an integer >= 0, got -1"),
    "cost_negative": (changed(cost=-1.0), "cost must be a finite number >= 0, got -1.0"),
    "peak_float": (changed(peak_bytes=6.5), "peak_bytes must be an integer >= 0, got 6.5"),
    "bound_text": (changed(lower_bound="7"), "lower_bound must be a finite number >= 0, got '7'"),
    "status_null": (changed(status=None), "status must be a string, got None"),
    "details_array": (changed(details=[]), "details must be a JSON object, got []"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_malformed_json_is_refused_in_one_line(case: str) -> None:
    text, message = BAD[case]
    with pytest.raises(ca.PlanError) as raised:
        GraphPlan.from_json(text)
    line = str(raised.value)
    assert line.startswith("GraphPlan.from_json: ") and message in line and "\n" not in line, line


def layers(x):
    """A small function whose graph depends on the shape of ``x``'s use: two tanh layers and
    a skip."""
    h = ca.tanh(x * 1.5)
    return ca.sum(ca.tanh(h * 0.5) + h)


def test_backprop_graph_refuses_a_plan_for_another_graph_before_it_runs() -> None:
    small = ca.backprop_graph(layers, np.ones(4), policy="recompute_all", trace_memory=False)
    loaded = GraphPlan.from_json(small.plan.to_json())
    with pytest.raises(ca.PlanError, match=r"^backprop_graph: the plan given does not fit this "
                                           r"function's graph \(6 ops, 7 nodes\): plan "
                                           r"recompute_all reports \(evaluations, cost, peak\) "
                                           r"= \(14, 14.0, 128\), but its replay gives "
                                           r"\(14, 14.0, 256\)$"):
        ca.backprop_graph(layers, np.ones(8), policy="recompute_all", plan=loaded)
    with pytest.raises(ca.PlanError, match=r"^backprop_graph: the plan given does not fit this "
                                           r"function's graph \(2 ops, 3 nodes\): step 3: "
                                           r"node 3 is not a node of this 3-node graph$"):
        ca.backprop_graph(lambda x: ca.sum(ca.sin(x)), np.ones(4), policy="recompute_all",
                          plan=loaded)


def test_backprop_graph_refuses_a_plan_of_another_policy_before_tracing() -> None:
    calls: list[int] = []

    def traced(x):
        calls.append(1)
        return layers(x)

    loaded = GraphPlan.from_json(ca.backprop_graph(layers, np.ones(4)).plan.to_json())
    for kwargs, error, message in [
            ({"policy": "dtr"}, ca.PolicyError, "^backprop_graph: the plan given was made by "
                                                "policy 'store_all', not 'dtr'; pass "
                                                "policy='store_all' with it$"),
            ({"budget_bytes": 10}, ca.PolicyError, "^policy 'store_all' has no parameter "
                                                   "budget_bytes"),
            ({"plan": loaded.to_json()}, ca.PolicyError, "^backprop_graph: plan must be a "
                                                         "GraphPlan, got str$")]:
        with pytest.raises(error, match=message):
            ca.backprop_graph(traced, np.ones(4), **{"plan": loaded, **kwargs})
    assert calls == []


@pytest.mark.parametrize("policy, params", [
    ("store_all", {}), ("recompute_all", {}), ("optimal", {"budget_bytes": 160}),
    ("dtr", {"budget_bytes": 160}), ("chen", {"segments": 2}),
    ("checkmate", {"budget_bytes": 160})], ids=lambda v: str(v))
def test_a_loaded_plan_gives_the_same_gradients_bit_for_bit(policy: str, params: dict) -> None:
    x = np.linspace(-1.0, 1.0, 4)
    first = ca.backprop_graph(layers, x, policy=policy, trace_memory=False, **params)
    loaded = GraphPlan.from_json(first.plan.to_json())
    assert loaded == first.plan
    again = ca.backprop_graph(layers, x, policy=policy, trace_memory=False, plan=loaded,
                              **params)
    assert again.plan is loaded
    assert np.array_equal(again.grads, first.grads) and again.value == first.value
    assert (again.stats.forward_evals, again.stats.peak_bytes) == (
        first.stats.forward_evals, first.stats.peak_bytes)
