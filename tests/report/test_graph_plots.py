"""Figures of graph plans: the R/S matrices count exactly what the plan does, the drawing
names every op and lays a U-Net out as a U and a residual stack as a chain with skips, and the
overhead plot draws every lower bound its legend names."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from checkpoint_ad import plan_graph
from checkpoint_ad.plotting.graphs import (BOUND_LABEL, graph_drawing, layers, layout,
                                           overhead_vs_budget, recompute_matrix,
                                           solve_time_vs_size, stages)
from checkpoint_ad.records.files import read_records
from graph_families import fig69_chain, unet

RECORDS = Path(__file__).resolve().parents[2] / "reports" / "graph_budget" / "records.jsonl"


@pytest.fixture(scope="module")
def graphs() -> dict[str, dict]:
    """The traced graph of each committed graph_budget workload: parents and op names."""
    return {r.workload: r.graph for r in read_records([RECORDS]) if r.graph is not None}


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


def test_the_drawing_names_every_op_and_only_ops(graphs) -> None:
    graph = graphs["transformer"]
    count = len(graph["parents"])
    figure = graph_drawing(graph["parents"], graph["ops"], [1] * count, [False] * count, "t")
    labels = [text.get_text() for text in figure.axes[0].texts]
    assert labels == [op for op in graph["ops"] if op is not None]


def far_edges(parents, place):
    return [(p, q) for q, sources in enumerate(parents) for p in sources
            if place.x[q] - place.x[p] > 1]


def test_a_unet_is_laid_out_as_a_u(graphs) -> None:
    parents = graphs["unet"]["parents"]
    place = layout(parents)
    skips = far_edges(parents, place)
    assert len(skips) == 6  # encoder level to decoder level
    for p, q in skips:  # each skip one straight line at its pair's height
        assert place.y[p] == place.lane[p] == place.y[q]
    heights = sorted({place.y[p] for p, _ in skips}, reverse=True)
    assert heights == [0, -1, -2, -3, -4, -5]  # each level one step deeper
    ops = [n for n, sources in enumerate(parents) if sources]
    bottom = min(place.y[n] for n in ops)
    lowest = [place.x[n] for n in ops if place.y[n] == bottom]
    assert all(min(place.x[p] for p, _ in skips) < x < max(place.x[q] for _, q in skips)
               for x in lowest)  # the bottom of the U is between the two arms


def test_a_residual_stack_is_a_chain_with_skips(graphs) -> None:
    parents = graphs["residual"]["parents"]
    ops = graphs["residual"]["ops"]
    place = layout(parents)
    adds = [n for n, op in enumerate(ops) if op == "add"]
    assert len(adds) == 12 and {place.y[n] for n in adds} == {0}  # the chain, along the top
    skips = far_edges(parents, place)
    assert len(skips) == 12 and {place.lane[p] for p, _ in skips} == {0}  # straight skips
    inside = [n for n, op in enumerate(ops) if op in ("matmul", "tanh")]
    assert {place.y[n] for n in inside} == {-1}  # each block dips below its skip


def test_a_lower_bound_in_the_legend_is_drawn_even_at_one_budget() -> None:
    rows = [{"planner": "store_all", "budget": 10, "cost": 10, "store_all_cost": 10,
             "lower_bound": 10},
            {"planner": "optimal", "budget": 5, "cost": 16, "store_all_cost": 10,
             "lower_bound": None}]
    axis = overhead_vs_budget(rows, "t").axes[0]
    bound = next(line for line in axis.get_lines() if line.get_label() == BOUND_LABEL)
    assert list(bound.get_xdata()) == [10] and bound.get_marker() not in ("", "None", None)
    assert BOUND_LABEL in [t.get_text() for t in axis.get_legend().get_texts()]
    rows[0]["lower_bound"] = None
    axis = overhead_vs_budget(rows, "t").axes[0]
    assert BOUND_LABEL not in [t.get_text() for t in axis.get_legend().get_texts()]
