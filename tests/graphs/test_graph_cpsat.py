"""``cpsat`` (CP-SAT on the interval model) and the retention bound: plans are valid, never
below the exhaustive optimum and equal to it where CP-SAT proves optimality; every bound is at
most the exhaustive optimum; the hint is never beaten by a worse plan; ``optimal`` uses it
past exact search. Deterministic: one worker, a fixed seed, and ``effort`` (CP-SAT's
deterministic time) binding before the wall-clock ``time_limit``."""
from __future__ import annotations

import json

import pytest

import checkpoint_ad as ca
from checkpoint_ad import check_graph_plan, plan_graph
from checkpoint_ad.graphs.floors import closure_bound, least_peak_floor, retention_bound
from checkpoint_ad.graphs.policies import anytime, cpsat
from checkpoint_ad.graphs.policies.cpsat import plan_cpsat
from checkpoint_ad.graphs.policies.optimal import minimum_budget
from checkpoint_ad.graphs.windows import window_bound
from graph_families import GROUND_TRUTH, fig69_chain, random_dag, resnet
from test_graphs import simulate

EFFORT = 0.2  # deterministic seconds of CP-SAT: the limit that binds in these tests
WALL = 60.0  # the wall-clock limit, far above what EFFORT takes even on a loaded machine


def solved(costs: ca.GraphCosts, budget: int, effort: float = EFFORT, **params) -> ca.GraphPlan:
    """cpsat's plan, checked by the replay and by an independent one."""
    plan = plan_cpsat(costs, budget, time_limit=WALL, effort=effort, **params)
    check_graph_plan(costs, plan)
    assert simulate(costs, list(plan.steps)) == (plan.forward_evals, plan.cost, plan.peak_bytes)
    assert plan.peak_bytes <= budget
    return plan


def sound(plan: ca.GraphPlan, least: float) -> None:
    """Never below the least cost; its bound never above it; "optimal" only at it."""
    assert plan.cost >= least and plan.lower_bound <= least
    if plan.status == "optimal":
        assert plan.cost == least == plan.lower_bound and plan.gap == 0


@pytest.mark.parametrize("name, budget", [(name, budget) for name, row in GROUND_TRUTH.items()
                                          for budget in row[3]])
def test_ground_truth_from_the_heuristic_hint(name: str, budget: int) -> None:
    """Every budget of the ground-truth table (the tightest too, where the proof may not end
    within the effort): sound, and optimal when proven."""
    costs, _, _, table = GROUND_TRUTH[name]
    sound(solved(costs, budget), table[budget])


# rows where CP-SAT, started from recompute_all's plan (which fits every budget of these
# graphs), finds and proves the least cost within EFFORT
FROM_RECOMPUTE_ALL = [("fig69_chain(6)", 6), ("fig69_chain(6)", 7), ("resnet(3)", 6),
                      ("resnet(3)", 7), ("unet(3)", 9), ("unet(3)", 10)]


@pytest.mark.parametrize("name, budget", FROM_RECOMPUTE_ALL)
def test_from_a_poor_hint_it_finds_and_proves_the_least_cost(name: str, budget: int) -> None:
    costs, _, _, table = GROUND_TRUTH[name]
    hint = plan_graph("recompute_all", costs)
    assert hint.cost > table[budget]
    plan = solved(costs, budget, hint=hint)
    assert (plan.cost, plan.status, plan.lower_bound) == (table[budget], "optimal", table[budget])
    assert plan.method == "cpsat"
    # proven by the solver on a complete model, or by a bound meeting the plan it found
    assert plan.details["complete"] or window_bound(costs, budget) == table[budget]


@pytest.mark.parametrize("seed", range(8))
def test_random_dags_against_exhaustive_search(seed: int) -> None:
    costs = random_dag(5 + seed % 3, 300 + seed)
    peak = plan_graph("store_all", costs).peak_bytes
    for budget in sorted({-(-peak * 2 // 3), peak - 1}):
        try:
            least = plan_graph("optimal", costs, budget_bytes=budget).cost  # exact search
        except ca.BudgetError:
            with pytest.raises(ca.BudgetError, match="below the minimum"):
                solved(costs, budget)
            continue
        sound(solved(costs, budget), least)


@pytest.mark.parametrize("seed", range(40))
def test_the_combinatorial_bounds_never_exceed_the_exhaustive_optimum(seed: int) -> None:
    costs = random_dag(4 + seed % 6, 500 + seed)
    peak = plan_graph("store_all", costs).peak_bytes
    least_peak = minimum_budget(costs)
    assert least_peak_floor(costs) <= least_peak
    for budget in range(least_peak, peak + 1):
        least = plan_graph("optimal", costs, budget_bytes=budget).cost
        retention = retention_bound(costs, budget)
        assert costs.total_cost <= retention <= closure_bound(costs, budget) <= least
        assert costs.total_cost <= window_bound(costs, budget) <= least


@pytest.mark.parametrize("seed", range(12))
def test_graph_lower_bound_past_exact_search_never_exceeds_the_exhaustive_optimum(
        seed: int) -> None:
    """With exact search cut off at 2 states, graph_lower_bound falls back to the closure
    bound (every plan) or Checkmate's (its formulation only): the former is never above the
    least cost of all plans, and is at least the closure bound."""
    costs = random_dag(4 + seed % 6, 700 + seed)
    peak = plan_graph("store_all", costs).peak_bytes
    for budget in range(minimum_budget(costs), peak + 1):
        least = plan_graph("optimal", costs, budget_bytes=budget).cost
        bound = ca.graph_lower_bound(costs, budget, max_states=2)
        assert bound.value >= closure_bound(costs, budget)
        if bound.formulation == "all plans":
            assert bound.method in ("closure bound", "every op once") and bound.value <= least


def test_graph_lower_bound_takes_the_closure_bound_on_the_table() -> None:
    """On the rows where the closure bound meets the least cost, graph_lower_bound past exact
    search proves it for every plan."""
    costs, _, _, table = GROUND_TRUTH["tanh_mlp(3)"]
    for budget in (4, 5):
        bound = ca.graph_lower_bound(costs, budget, max_states=2)
        assert (bound.value, bound.formulation, bound.method) == (table[budget], "all plans",
                                                                  "closure bound")


def test_the_retention_bound_is_tight_on_some_rows_of_the_table() -> None:
    """It counts what the values left out at a backward step cost to compute again: on these
    rows that is all the recomputation the least-cost plan does."""
    for name, budget in (("fig69_chain(6)", 5), ("resnet(3)", 6), ("unet(3)", 9)):
        costs, _, _, table = GROUND_TRUTH[name]
        assert retention_bound(costs, budget) == table[budget] > costs.total_cost


def test_the_closure_bound_counts_what_recomputing_needs() -> None:
    """On the MLP a tanh output left out needs its matmul recomputed too (tanh saves its
    output, so the matmul's is no residual): the closure bound counts it, and meets the least
    cost at 4 and 5 bytes where the retention bound is 2 and 1 below it."""
    costs, _, _, table = GROUND_TRUTH["tanh_mlp(3)"]
    for budget, below in ((4, 2), (5, 1)):
        assert closure_bound(costs, budget) == table[budget] == retention_bound(costs, budget) + below


def test_a_restricted_model_lends_no_bound(monkeypatch) -> None:
    """With the complete model ruled out, CP-SAT solves only models with at most a few
    computations per op: their bound is not one of every plan, so the plan carries the
    closure bound (the window bound switched off) and is not called optimal unless that bound
    meets its cost."""
    monkeypatch.setattr(cpsat, "COMPLETE_LITERALS", 0)
    # the window bound meets the least cost on this row: off, so that the closure bound is left
    monkeypatch.setattr(cpsat, "window_bound", lambda costs, *rest, **named: costs.total_cost)
    costs, _, _, table = GROUND_TRUTH["fig69_chain(6)"]
    plan = solved(costs, 4, hint=plan_graph("recompute_all", costs))
    assert plan.details["complete"] is False and plan.details["solver_bound"] is None
    assert plan.lower_bound == closure_bound(costs, 4) < table[4] <= plan.cost
    assert plan.status == "feasible"


def test_never_worse_than_its_hint_and_a_tiny_time_limit_returns_it() -> None:
    costs, _, _, table = GROUND_TRUTH["fig69_chain(6)"]
    hint = plan_graph("recompute_all", costs)  # 22 evaluations; the least at 4 bytes is 12
    plan = plan_cpsat(costs, 4, time_limit=1e-6, hint=hint)
    assert (plan.steps, plan.cost, plan.status) == (hint.steps, 22, "feasible")
    assert plan.lower_bound == closure_bound(costs, 4) <= table[4]
    assert plan.details["rounds"] == 0
    better = solved(costs, 4, effort=0.1, hint=hint)
    assert better.cost <= hint.cost


def test_the_same_call_gives_the_same_plan() -> None:
    """Stopped by its effort before it proves anything, from the same poor hint, twice."""
    costs = GROUND_TRUTH["unet(3)"][0]
    first, second = (plan_cpsat(costs, 8, time_limit=WALL, effort=0.1,
                                hint=plan_graph("recompute_all", costs)) for _ in range(2))
    assert first.steps == second.steps and first.cost < 46  # recompute_all's


@pytest.mark.parametrize("name", GROUND_TRUTH)
def test_a_budget_below_the_least_names_it(name: str) -> None:
    costs, _, _, table = GROUND_TRUTH[name]
    least = min(table)
    with pytest.raises(ca.BudgetError, match=f"below the minimum of {least} bytes"):
        plan_graph("cpsat", costs, budget_bytes=least - 1)


def test_without_a_budget_or_with_store_alls_it_computes_every_op_once() -> None:
    costs = fig69_chain(6)
    for budget in (None, 8):
        plan = plan_graph("cpsat", costs, budget_bytes=budget)
        assert (plan.cost, plan.status, plan.lower_bound) == (7, "optimal", 7)


@pytest.mark.parametrize("params, message", [
    ({"time_limit": 0}, "time_limit must be a number of seconds > 0"),
    ({"workers": 0}, "workers must be"),
    ({"computations": 0}, "computations must be"),
    ({"effort": -1}, "effort must be a number of seconds > 0"),
    ({"seed": 1.5}, "seed"),
])
def test_bad_parameters_get_the_package_error(params: dict, message: str) -> None:
    with pytest.raises(ca.PolicyError, match=message):
        plan_graph("cpsat", resnet(3), budget_bytes=6, **params)


def test_a_hint_over_the_budget_is_refused() -> None:
    costs = resnet(3)
    with pytest.raises(ca.PolicyError, match="the hint peaks at 8 bytes"):
        plan_cpsat(costs, 6, hint=plan_graph("store_all", costs))


def test_optimal_past_exact_search_certifies_with_cpsat() -> None:
    """Exact search stopped at once: the portfolio's plan, improved and bounded by cpsat
    (on this row the closure bound, 13, does not meet the least cost, 14: cpsat's window
    bound proves it); where the closure bound meets the portfolio's cost, cpsat is not run."""
    costs, _, _, table = GROUND_TRUTH["unet(3)"]
    plan = plan_graph("optimal", costs, budget_bytes=8, max_states=5, time_limit=20)
    check_graph_plan(costs, plan)
    assert (plan.cost, plan.status, plan.lower_bound) == (table[8], "optimal", table[8])
    assert plan.details["tried"]["cpsat"] == table[8]
    assert closure_bound(costs, 8) < window_bound(costs, 8) == table[8]
    costs, _, _, table = GROUND_TRUTH["resnet(3)"]
    plan = plan_graph("optimal", costs, budget_bytes=6, max_states=5, time_limit=20)
    assert (plan.cost, plan.status, plan.lower_bound) == (table[6], "optimal", table[6])
    assert "cpsat" not in plan.details["tried"]


@pytest.mark.parametrize("name, budget", FROM_RECOMPUTE_ALL[:3])
def test_the_trajectory_records_each_better_plan_and_bound(name: str, budget: int) -> None:
    """From recompute_all's plan to the proven least cost: the incumbents fall from the
    hint's cost to the plan's, the bounds rise from the closure bound to the plan's bound
    (never above the least cost), in time order, JSON-ready."""
    costs, _, _, table = GROUND_TRUTH[name]
    hint = plan_graph("recompute_all", costs)
    plan = solved(costs, budget, hint=hint)
    trajectory = plan.details["trajectory"]
    assert json.loads(json.dumps(trajectory)) == trajectory
    incumbents, bounds = trajectory["incumbents"], trajectory["bounds"]
    assert incumbents[0][1] == hint.cost and incumbents[-1][1] == plan.cost == table[budget]
    assert bounds[0][1] == closure_bound(costs, budget) and bounds[-1][1] == plan.lower_bound
    assert all(b[1] <= table[budget] for b in bounds)
    for series, sign in ((incumbents, -1), (bounds, 1)):
        assert all(0 <= a[0] <= b[0] <= WALL for a, b in zip(series, series[1:]))
        assert all(sign * (b[1] - a[1]) > 0 for a, b in zip(series, series[1:]))


def test_a_long_trajectory_is_thinned_to_its_first_last_and_spread_points() -> None:
    trajectory = anytime.Trajectory(started=0.0)
    trajectory.incumbents = [(float(k), 1000.0 - k) for k in range(500)]
    shown = trajectory.details()["incumbents"]
    assert len(shown) == anytime.MOST_POINTS
    assert shown[0] == [0.0, 1000.0] and shown[-1] == [499.0, 501.0]
