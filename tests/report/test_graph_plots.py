"""Figures of graph plans: the R/S matrices count exactly what the plan does."""
from __future__ import annotations

import numpy as np

from checkpoint_ad import plan_graph
from checkpoint_ad.plotting.graphs import (graph_drawing, layers, overhead_vs_budget,
                                           recompute_matrix, solve_time_vs_size, stages)
from graph_families import fig69_chain, unet


def test_stages_count_computations_and_kept_values() -> None:
    costs = fig69_chain(6)
    plan = plan_graph("optimal", costs, budget_bytes=4)
    steps = [[step.action.value, step.node] for step in plan.steps]
    computed, kept = stages(costs.parents, steps)
    assert computed.sum() == plan.forward_evals == 12
    assert computed.shape == kept.shape == (len(costs.backward_order), len(costs.parents))
    assert list(computed[0]) == [0] + [1] * 7  # the forward pass computes every op once
    assert not kept[0].any() and kept[1:].sum() > 0


def test_layers_put_inputs_next_to_their_first_consumer() -> None:
    assert layers([(), (0,), (1,), (), (2, 3)]) == [0, 1, 2, 2, 3]


def test_every_graph_figure_draws() -> None:
    costs = unet(3)
    plan = plan_graph("optimal", costs, budget_bytes=9)
    steps = [[step.action.value, step.node] for step in plan.steps]
    counted = plan.explain(costs)
    computed = [0] * len(costs.parents)
    for value in counted.values:
        computed[value.node] = value.computed
    assert recompute_matrix(costs.parents, steps, "t") is not None
    assert graph_drawing(costs.parents, costs.ops, computed, [c > 0 for c in computed], "t")
    rows = [{"planner": p, "budget": b, "cost": c, "store_all_cost": 10, "lower_bound": 10,
             "solve_s": 0.01 * b, "ops": 10 * b} for p, b, c in
            (("optimal", 7, 16), ("optimal", 9, 12), ("dtr", 7, 18))]
    assert overhead_vs_budget(rows, "t") and solve_time_vs_size(rows, "t")
    assert np.isfinite(plan.cost)
