"""Chain plans round-trip through JSON (issue 24): ``Plan.to_json`` and ``Plan.from_json``, a
loaded plan equal to the one written, malformed text refused in one PlanError line, and a
loaded plan checked by ``backprop`` against the chain before anything runs."""
from __future__ import annotations

import json

import numpy as np
import pytest

import checkpoint_ad as ca
from checkpoint_ad.chains.costs import ChainCosts
from checkpoint_ad.chains.plans import Plan

POLICIES = [("store_all", {}), ("recompute_all", {}), ("sqrt_n", {}), ("sqrt_n", {"segments": 2}),
            ("revolve", {"slots": 3}), ("optimal", {"slots": 3}),
            ("optimal", {"budget_bytes": 320, "tapes": False}),
            ("optimal", {"store_budget_bytes": 40})]
COSTS = ChainCosts(12, compute=tuple(float(1 + t % 3) for t in range(12)),
                   state_bytes=tuple(8 * (1 + j % 4) for j in range(13)),
                   tape_bytes=tuple(8 * (2 + t % 4) for t in range(12)))


def assert_same_plan(loaded: Plan, plan: Plan) -> None:
    assert loaded.steps == plan.steps
    assert (loaded.n, loaded.policy, loaded.params, loaded.slots) == (
        plan.n, plan.policy, plan.params, plan.slots)
    assert loaded.counts == plan.counts and loaded.action_counts() == plan.action_counts()


@pytest.mark.parametrize("policy, params", POLICIES, ids=lambda v: str(v))
def test_every_policy_round_trips(policy: str, params: dict) -> None:
    plan = ca.plan(policy, costs=COSTS, **params)
    text = plan.to_json()
    data = json.loads(text)
    assert (data["schema_version"], data["family"], data["policy"]) == (1, "chain", policy)
    loaded = Plan.from_json(text)
    assert_same_plan(loaded, plan)
    assert loaded.to_json() == text


def test_a_long_plan_round_trips() -> None:
    plan = ca.plan("revolve", n=5000, slots=4)
    assert_same_plan(Plan.from_json(plan.to_json().encode()), plan)  # bytes are read too


def test_a_plan_edited_by_hand_keeps_its_params() -> None:
    plan = Plan.from_steps(2, [("tape", 1), ("turn", 2), ("backward", 1)], "mine", slots=2,
                           params={"note": "by hand", "weights": 3})
    assert_same_plan(Plan.from_json(plan.to_json()), plan)


GOOD = json.loads(ca.plan("revolve", n=4, slots=2).to_json())


def changed(**fields: object) -> str:
    """The JSON of a valid plan with ``fields`` replaced (``...``: removed)."""
    data = {**GOOD, **fields}
    return json.dumps({k: v for k, v in data.items() if v is not ...})


BAD = {
    "not_json": ("{'n': 4}", "not JSON: Expecting property name enclosed in double quotes at "
                             "line 1 column 2"),
    "not_an_object": ("[1, 2]", "expected a JSON object, got list"),
    "no_schema_version": (changed(schema_version=...),
                          "schema_version None is not supported (this package reads version 1)"),
    "schema_version_2": (changed(schema_version=2),
                         "schema_version 2 is not supported (this package reads version 1)"),
    "schema_version_text": (changed(schema_version="1"), "schema_version '1' is not supported"),
    "graph_family": (changed(family="graph"),
                     "family must be 'chain', got 'graph'; read it with GraphPlan.from_json"),
    "missing_field": (changed(steps=...), "missing field 'steps' (a chain plan has policy, "
                                          "params, n, slots, forward_evals, peak_stored, steps)"),
    "unknown_field": (changed(stepz=[]), "unknown field 'stepz'"),
    "zero_stages": (changed(n=0), "n must be a positive integer, got 0"),
    "slots_zero": (changed(slots=0), "slots must be a positive integer, got 0"),
    "policy_not_text": (changed(policy=3), "policy must be a string, got 3"),
    "params_not_object": (changed(params=[["slots", 2]]), "params must be a JSON object"),
    "steps_not_array": (changed(steps="tape 1"), "steps must be a JSON array, got 'tape 1'"),
    "step_of_two": (changed(steps=[["tape", 1]]),
                    "step 1 must be [action, stage, end], got ['tape', 1]"),
    "unknown_action": (changed(steps=[["jump", 1, 1]]), "step 1: unknown action 'jump'; "
                                                        "actions: advance, tape, turn"),
    "stage_float": (changed(steps=[["tape", 1.0, 1]]),
                    "step 1: stage must be an integer >= 0, got 1.0"),
    "stage_negative": (changed(steps=[["tape", -1, -1]]),
                       "step 1: stage must be an integer >= 0, got -1"),
    "stage_beyond_n": (changed(steps=[["advance", 1, 10**30]]),
                       "step 1: end 1000000000000000000000000000000 is beyond the last stage, 4"),
    "invalid_plan": (changed(steps=GOOD["steps"][1:]), "step 1 ("),
    "counts_tampered": (changed(forward_evals=GOOD["forward_evals"] - 1),
                        "the plan reports (forward_evals, peak_stored) = "),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_malformed_json_is_refused_in_one_line(case: str) -> None:
    text, message = BAD[case]
    with pytest.raises(ca.PlanError) as raised:
        Plan.from_json(text)
    line = str(raised.value)
    assert line.startswith("Plan.from_json: ") and message in line and "\n" not in line, line


def test_a_graph_plan_is_refused_naming_its_reader() -> None:
    costs = ca.GraphCosts([(), (0,), (1,)], [8, 8, 8])
    text = ca.plan_graph("store_all", costs).to_json()
    with pytest.raises(ca.PlanError, match=r"^Plan.from_json: family must be 'chain', got "
                                           r"'graph'; read it with GraphPlan.from_json$"):
        Plan.from_json(text)


def counted_chain(n: int, calls: list[int]) -> ca.Chain:
    """A chain of n sin stages whose evaluations append to ``calls``."""
    def stage(x, params):
        calls.append(1)
        return ca.sin(x) * 1.5
    return ca.Chain.repeat(stage, n)


def test_backprop_refuses_a_plan_for_another_chain_before_anything_runs() -> None:
    calls: list[int] = []
    loaded = Plan.from_json(ca.plan("revolve", n=6, slots=2).to_json())
    with pytest.raises(ca.PlanError, match=r"^backprop: the plan given is for a chain of 6 "
                                           r"stages; this chain has 5$"):
        ca.backprop(counted_chain(5, calls), np.ones(3), policy="revolve", plan=loaded)
    with pytest.raises(ca.PolicyError, match=r"^backprop: the plan given was made by policy "
                                             r"'revolve', not 'store_all'; pass "
                                             r"policy='revolve' with it$"):
        ca.backprop(counted_chain(6, calls), np.ones(3), plan=loaded)
    with pytest.raises(ca.PolicyError, match=r"^backprop: the plan given was made with "
                                             r"slots=2, not slots=3$"):
        ca.backprop(counted_chain(6, calls), np.ones(3), policy="revolve", slots=3, plan=loaded)
    assert calls == []  # no stage ran, not even the profiling sweep


def test_backprop_refuses_an_invalid_plan_before_anything_runs() -> None:
    calls: list[int] = []
    broken = Plan.from_steps(3, [("advance", 1, 2), ("turn", 3), ("restore", 0)], "store_all")
    with pytest.raises(ca.PlanError, match=r"^backprop: the plan given is not valid: the plan "
                                           r"ends before stage 2 is reversed$"):
        ca.backprop(counted_chain(3, calls), np.ones(3), plan=broken)
    assert calls == []


@pytest.mark.parametrize("policy, params", POLICIES[:-1], ids=lambda v: str(v))
def test_a_loaded_plan_gives_the_same_gradients_bit_for_bit(policy: str, params: dict) -> None:
    chain = ca.Chain([ca.Stage(lambda x, w: ca.tanh(x * w), np.full(7, 0.5 + 0.1 * t))
                      for t in range(12)])
    x0 = np.linspace(-1.0, 1.0, 7)
    first = ca.backprop(chain, x0, policy=policy, seed=3, trace_memory=False, **params)
    loaded = Plan.from_json(first.plan.to_json())
    again = ca.backprop(chain, x0, policy=policy, seed=3, trace_memory=False, plan=loaded,
                        **params)
    assert again.plan is loaded
    assert np.array_equal(again.grad_input, first.grad_input) and again.value == first.value
    assert all(np.array_equal(a, b) for a, b in zip(again.grad_params, first.grad_params))
    assert (again.stats.forward_evals, again.stats.peak_bytes) == (
        first.stats.forward_evals, first.stats.peak_bytes)
