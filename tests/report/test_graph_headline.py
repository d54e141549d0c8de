"""The headline of graph records, on the committed graph_budget records and on small edits of
them: the cheapest planner per budget with its cost and gap, and where a planner has no plan."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from checkpoint_ad.records.files import read_records
from checkpoint_ad.records.schema import Record
from checkpoint_ad.report.graphs import graph_headline
from checkpoint_ad.report.headline import MOST_BULLETS

RECORDS = Path(__file__).resolve().parents[2] / "reports" / "graph_budget" / "records.jsonl"


@pytest.fixture(scope="module")
def records() -> list[Record]:
    return read_records([RECORDS])


def test_graph_budget_headline_names_the_cheapest_planner_at_each_budget(records) -> None:
    legend, residual, unet, transformer, missing = graph_headline(records)
    assert legend.startswith("Cheapest planner at each budget (a fraction of store_all's peak)")
    assert residual == ("residual (50 ops): 0.30 optimal 2.16x (+24%); 0.50 optimal=dtr 1.52x "
                        "(+0%); 0.70 optimal=dtr=dtr(heuristic=lru) 1.32x (+0%); 0.90 "
                        "optimal=dtr=dtr(heuristic=lru) 1.12x (+0%).")
    assert unet == ("unet (32 ops): 0.50 checkmate 1.91x (+30%); 0.70 checkmate 1.28x "
                    "(+5%); 0.90 optimal=checkmate=checkmate_lp 1.06x (+0%).")
    assert transformer.endswith("0.90 optimal=checkmate=checkmate_lp=dtr 1.05x (+0%).")  # a
    # bound of every plan there meets the cost (the closure bound), so no dagger
    assert missing == ("No plan: chen on residual at 0.30, on unet at any budget, on transformer "
                       "at 0.50; checkmate on residual at any budget.")
    report = (RECORDS.parent / "report.md").read_text(encoding="utf-8")
    assert all(f"- {bullet}\n" in report for bullet in graph_headline(records))


def test_every_bullet_is_short_and_the_cheapest_is_the_least_cost(records) -> None:
    bullets = graph_headline(records)
    assert len(bullets) <= MOST_BULLETS and all(len(b) < 200 for b in bullets), bullets
    for budget in {r.budget_bytes for r in records if r.workload == "unet" and r.budget_bytes}:
        costs = {r.policy: r.forward_cost for r in records
                 if r.workload == "unet" and r.budget_bytes == budget}
        assert costs["checkmate"] == min(costs.values())  # the bullet's claim, from the records


def test_many_workloads_stay_within_six_bullets(records) -> None:
    renamed = [dataclasses.replace(r, workload=f"{r.workload}{copy}")
               for copy in range(3) for r in records]
    bullets = graph_headline(renamed)
    assert len(bullets) == MOST_BULLETS
    assert bullets[-2] == "6 more workloads: see the table."
    assert bullets[-1].startswith("No plan: chen on residual0 at 0.30")


def test_without_budgeted_records_there_is_no_headline(records) -> None:
    assert graph_headline([r for r in records if r.budget_bytes is None]) == []
    one = [r for r in records if r.workload == "unet" and r.policy in ("store_all", "optimal")]
    assert graph_headline(one)[1:] == ["unet (32 ops): 0.50 optimal 2.38x (+62%); 0.70 "
                                       "optimal 1.38x (+13%); 0.90 optimal 1.06x (+0%)."]
