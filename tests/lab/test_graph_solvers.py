"""The shipped graph_solvers experiment's quick grid in full (solvers side by side: cpsat's
anytime trajectory, Checkmate's MILP where the graph is small enough, the portfolio, dtr),
its report (goals, gaps, anytime curves), and the experiment-file keys it needs: a grid per
workload and max_ops."""
from __future__ import annotations

from pathlib import Path

import pytest

from checkpoint_ad.errors import ExperimentError
from checkpoint_ad.lab import specs
from checkpoint_ad.records.schema import Record
from checkpoint_ad.report.solvers import best_bound, cases, gap_rows, goal_bullets
from test_graph_experiment import quick_run


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Record], Path]:
    return quick_run("graph_solvers", tmp_path_factory)


def test_every_solver_plans_every_workload_soundly(quick) -> None:
    records, _ = quick
    assert {r.workload for r in records} == {"residual", "unet", "transformer", "densenet",
                                             "layered"}
    for record in records:
        assert record.max_grad_diff == 0.0 and record.predicted_peak_bytes == record.peak_bytes
        assert record.lower_bound is not None and record.lower_bound <= record.forward_cost
        if record.budget_bytes is not None:
            assert record.peak_bytes <= record.budget_bytes
    portfolio = [r for r in records if r.policy == "optimal"]
    assert portfolio and all(r.params["cpsat"] is False for r in portfolio)
    assert all("cpsat" not in r.method for r in portfolio)  # CP-SAT left out


def test_checkmate_runs_only_up_to_max_ops(quick) -> None:
    records, _ = quick
    milp = [r for r in records if r.policy == "checkmate"]
    assert milp and all(r.ops <= 12 for r in milp)
    assert {r.workload for r in records if r.ops > 12} >= {"transformer", "layered"}


def test_cpsat_records_carry_their_trajectory_and_bound(quick) -> None:
    records, _ = quick
    for record in (r for r in records if r.policy == "cpsat"):
        incumbents, bounds = record.trajectory["incumbents"], record.trajectory["bounds"]
        assert incumbents[-1][1] == record.forward_cost
        assert bounds[-1][1] == record.plan_lower_bound <= record.lower_bound
        assert all(0 <= point[0] <= record.solve_s + 1e-3 for point in incumbents + bounds)  # ms
    others = [r for r in records if r.policy != "cpsat"]
    assert all(r.trajectory is None for r in others)


def test_the_report_states_the_goals_the_gaps_and_draws_the_curves(quick) -> None:
    records, out = quick
    text = (out / "report.md").read_text()
    assert "### Goals" in text and "### Gaps per case and solver" in text
    assert all(f"- {bullet}\n" in text for bullet in goal_bullets(records))
    assert "(anytime.png)" in text and (out / "anytime.png").stat().st_size > 0
    rows = gap_rows(records)
    assert len(rows) == len(cases(records)) == 5  # one budget on each of five graphs
    for row, case in zip(rows, cases(records)):
        cpsat = next(r for r in case if r.policy == "cpsat")
        gap = cpsat.forward_cost / best_bound(case) - 1
        assert row["cpsat"].startswith(f"{cpsat.forward_cost:g}") and f"({gap:.1%})" in row["cpsat"]


def write(tmp_path: Path, text: str) -> specs.Experiment:
    (tmp_path / "solvers.toml").write_text(text)
    return specs.load_experiment(str(tmp_path / "solvers.toml"))


GRIDS = """\
family = "graph"
workloads = ["residual", "unet"]
sizes = { width = 8 }
grid = { batch = [2, 4], residual = { n = [2, 3] } }
[[policies]]
policy = "dtr"
params = { budget_fraction = 0.8 }
max_ops = 10
"""


def test_a_grid_table_sweeps_one_workload_over_the_shared_grid(tmp_path: Path) -> None:
    experiment = write(tmp_path, GRIDS)
    assert [(p["n"], p["batch"]) for p in experiment.grid_points("residual")] == [
        (2, 2), (3, 2), (2, 4), (3, 4)]  # the shared grid's keys first: they vary slowest
    assert [p["batch"] for p in experiment.grid_points("unet")] == [2, 4]
    assert all("n" not in p for p in experiment.grid_points("unet"))
    assert {t.max_ops for t in experiment.tasks()} == {10}


@pytest.mark.parametrize("change, message", [
    ("residual = { n = [2, 3] }", "resnet = { n = [2] }", ),
    ("max_ops = 10", "max_ops = 0"),
])
def test_grid_tables_and_max_ops_mistakes_are_named(tmp_path: Path, change: str,
                                                    message: str) -> None:
    expected = {"resnet = { n = [2] }": "grid: resnet = {...} is the grid of one workload, "
                                        "but 'resnet' is not one of this experiment's",
                "max_ops = 0": "max_ops must be at least 1, got 0"}[message]
    with pytest.raises(ExperimentError, match=expected.replace("{", r"\{").replace(".", r"\.")):
        write(tmp_path, GRIDS.replace(change, message))


def test_max_ops_is_for_graph_experiments(tmp_path: Path) -> None:
    chain = ('workload = "chain"\ngrid = { n = [4] }\n[[policies]]\npolicy = "store_all"\n'
             'max_ops = 3\n')
    with pytest.raises(ExperimentError, match="max_ops is for graph experiments"):
        write(tmp_path, chain)


def test_a_policy_above_max_ops_is_left_out_with_a_note(tmp_path: Path) -> None:
    experiment = write(tmp_path, GRIDS.replace("max_ops = 10", "max_ops = 12"))
    unplanned: list[str] = []
    from checkpoint_ad.lab.preflight import check_points
    checks = check_points(experiment.tasks(), "solvers.toml:", unplanned)
    planned = {(c.task.workload, c.sizes.get("n"), c.sizes["batch"]) for c in checks}
    assert planned == {("residual", 2, 2), ("residual", 2, 4)}  # 10 ops; residual n=3 has 14,
    # unet's default n=4 has 22
    assert len(unplanned) == 4 and all("above the policy's max_ops=12" in u for u in unplanned)
