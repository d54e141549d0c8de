"""The solver comparison of the committed graph_solvers reference report, from its records
alone: the goals stated there are the ones the records give, every gap is measured against a
bound of every plan that no plan beats, and small edits of the records move the verdicts."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from checkpoint_ad.records.files import read_records
from checkpoint_ad.records.schema import Record
from checkpoint_ad.report.solvers import (anytime_rows, best_bound, cases, gap_rows,
                                          goal_bullets, solver)

RECORDS = Path(__file__).resolve().parents[2] / "reports" / "graph_solvers" / "records.jsonl"


@pytest.fixture(scope="module")
def records() -> list[Record]:
    return read_records([RECORDS])


def test_the_committed_report_states_the_goals_its_records_give(records) -> None:
    report = (RECORDS.parent / "report.md").read_text(encoding="utf-8")
    bullets = goal_bullets(records)
    assert all(f"- {bullet}\n" in report for bullet in bullets)
    assert bullets[0].startswith("Goals of certified planning, judged on cpsat's plans (time "
                                 "limit 10 s here")
    assert "(anytime.png)" in report and (RECORDS.parent / "anytime.png").is_file()


def test_no_plan_is_below_the_best_bound_of_its_case(records) -> None:
    for case in cases(records):
        bound = best_bound(case)
        assert bound is not None
        assert all(r.forward_cost >= bound for r in case), case[0].label
        assert all(r.budget_bytes == case[0].budget_bytes for r in case)


def test_the_table_has_one_row_per_case_and_a_column_per_solver(records) -> None:
    rows = gap_rows(records)
    assert len(rows) == len(cases(records))
    assert set(rows[0]) == {"graph", "ops", "budget", "best bound", "cpsat", "checkmate MILP",
                            "portfolio", "dtr", "chen"}
    assert {solver(r) for r in records if r.budget_bytes is not None} == {
        "cpsat", "checkmate MILP", "portfolio", "dtr", "chen"}


def test_every_cpsat_record_has_a_trajectory_that_ends_at_its_plan(records) -> None:
    mine = [r for r in records if r.policy == "cpsat"]
    assert mine
    for record in mine:
        assert record.trajectory["incumbents"][-1][1] == record.forward_cost
        assert record.trajectory["bounds"][-1][1] == record.plan_lower_bound
    panels = anytime_rows(records)
    assert len(panels) == len(cases(records))
    assert {p["column"] for p in panels} == {0, 1, 2, 3}  # 30%, 50%, 70%, 90%
    assert len({(p["row"], p["column"]) for p in panels}) == len(panels)


def test_a_gap_closed_by_a_larger_bound_meets_the_goal(records) -> None:
    """Raising every cpsat record's bound to its cost makes the small-graph goal met (every
    small case then proven) and moves no other bullet's count of cases."""
    small = [r for r in records if r.ops <= 60]
    proven = [dataclasses.replace(r, lower_bound=r.forward_cost, bound_formulation="all plans")
              if r.policy == "cpsat" else r for r in small]
    bullet = goal_bullets(proven)[1]
    assert bullet.startswith("At most 60 ops, proven optimal at every budget: **met**")
