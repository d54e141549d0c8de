"""The offload part of the graph report (docs/offload_model.md) on small edits of committed
graph records: the bandwidth sweep, the bandwidth where offload starts paying, what each plan
moves, the headline sentence; the schedule figures with transfers; and old records (without
offload fields) reported as before."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from checkpoint_ad import plan_graph
from checkpoint_ad.plotting.graphs import ON_HOST, offloaded_nodes, stages
from checkpoint_ad.plotting.offload import offload_figure
from checkpoint_ad.records.files import read_records
from checkpoint_ad.records.schema import Record
from checkpoint_ad.report.offload import (break_even, fates, offload_headline, offload_records,
                                          offload_rows, removal_bullet, removed_share,
                                          sweep_of)
from graph_families import fig69_chain

RECORDS = Path(__file__).resolve().parents[2] / "reports" / "graph_budget" / "records.jsonl"


@pytest.fixture(scope="module")
def base() -> Record:
    """A committed optimal record of the residual workload."""
    return next(r for r in read_records([RECORDS])
                if r.workload == "residual" and r.policy == "optimal")


def moved(record: Record, bandwidth: float, time: float, budget: int | None = None,
          host: int = 0) -> Record:
    """``record`` as if planned at ``bandwidth`` with predicted ``time`` (cost units)."""
    params = {**record.params, "bandwidth": bandwidth}
    if budget is not None:
        params["budget_bytes"] = budget
    return dataclasses.replace(record, params=params, bandwidth=bandwidth, predicted_time=time,
                               store_all_time=100.0, predicted_host_peak_bytes=host,
                               host_peak_bytes=host,
                               budget_bytes=budget if budget is not None else record.budget_bytes)


OFFLOAD_FIELDS = ("bandwidth", "predicted_time", "store_all_time", "predicted_host_peak_bytes",
                  "host_peak_bytes")


def test_records_without_offload_fields_load_and_have_no_offload_part(tmp_path) -> None:
    """Records written before the offload fields (the committed ones with those fields cut
    off) still load; neither they nor records of planners given no bandwidth (the committed
    ones, which carry a time) make an offload part."""
    old = tmp_path / "records.jsonl"
    lines = RECORDS.read_text(encoding="utf-8").splitlines()
    old.write_text("".join(json.dumps({k: v for k, v in json.loads(line).items()
                                       if k not in OFFLOAD_FIELDS}) + "\n" for line in lines))
    before, now = read_records([old]), read_records([RECORDS])
    assert len(before) == len(now) == len(lines)
    assert all(r.bandwidth is None and r.time_overhead is None for r in before)
    assert all(r.bandwidth is None and r.time_overhead is not None for r in now)
    for records in (before, now):
        assert offload_records(records) == [] and offload_headline(records) == []


def test_the_sweep_and_where_offload_starts_paying(base) -> None:
    times = {0.0: 130.0, 256.0: 130.0, 1024.0: 121.0, 4096.0: 100.0}
    sweep = [moved(base, b, t, host=0 if t == 130 else 4096) for b, t in times.items()]
    other = [moved(base, b, 110.0, budget=base.budget_bytes * 2) for b in (0.0, 4096.0)]
    budget, found = sweep_of(sweep + other)
    assert budget == base.budget_bytes and [r.bandwidth for r in found] == list(times)
    assert break_even(found) == (1024.0, 256.0)
    assert break_even([r for r in found if r.bandwidth != 0.0]) == (None, None)
    assert break_even([moved(base, b, 130.0) for b in times]) == (None, 4096.0)
    legend, bullet, _, *_ = offload_headline(sweep + other)  # the savings bullet, POFO's
    assert legend.startswith("Offload (docs/offload_model.md)")
    assert bullet == ("residual (50 ops) at 0.30 of store_all's peak (31.2 KiB): time over "
                      "store_all's by bandwidth (bytes per op time): 0: 1.30x, 256: 1.30x, "
                      "1024: 1.21x, 4096: 1.00x; offload pays from bandwidth 1024 and stops "
                      "paying at 256 and below.")
    assert sweep_of(other) == (None, [])  # two bandwidths make no sweep


def test_fates_count_offloaded_recomputed_and_kept_values(base) -> None:
    costs = fig69_chain(6)
    plan = plan_graph("optimal", costs, budget_bytes=3, bandwidth=1)
    steps = [[step.action.value, step.node] for step in plan.steps]
    record = dataclasses.replace(moved(base, 1.0, plan.time),
                                 graph={"parents": [list(p) for p in costs.parents],
                                        "ops": list(costs.ops)}, graph_steps=steps)
    explained = plan.explain(costs).values
    offloaded = sum(bool(v.offloaded_after) for v in explained)
    recomputed = sum(not v.offloaded_after and v.computed > 1 for v in explained)
    assert offloaded > 0
    assert fates(record) == (offloaded, recomputed, len(explained) - offloaded - recomputed)
    assert offload_rows([record])[0]["offloaded/recomputed/kept"] == \
        "/".join(map(str, fates(record)))
    assert fates(dataclasses.replace(record, graph=None)) is None


def test_the_schedule_shows_values_in_host_memory() -> None:
    costs = fig69_chain(6)
    plan = plan_graph("optimal", costs, budget_bytes=3, bandwidth=1)
    steps = [[step.action.value, step.node] for step in plan.steps]
    computed, kept = stages(costs.parents, steps)
    assert computed.sum() == plan.forward_evals  # prefetches and waits compute nothing
    assert computed.shape[0] == len(costs.backward_order)  # only backward steps end a stage
    hosted = {node for node in range(len(costs.parents)) if (kept[:, node] == ON_HOST).any()}
    moved_nodes = offloaded_nodes(len(costs.parents), steps)
    assert hosted and hosted <= {n for n, m in enumerate(moved_nodes) if m}


def test_the_offload_figure_draws_one_or_two_panels() -> None:
    rows = [{"bandwidth": b, "budget": budget, "time": 1 + 1 / (1 + b) + 1 / budget}
            for b in (0.0, 512.0, 1e12) for budget in (10, 20)]
    sweep = [{"bandwidth": b, "time": 1 + 1 / (1 + b), "moved": bool(b)}
             for b in (0.0, 256.0, 512.0, 1e12)]
    assert len(offload_figure(rows, sweep, "t", 10, 1e12).axes) == 2
    assert len(offload_figure([], sweep, "t", 10).axes) == 1


def test_the_savings_bullet_takes_the_most_saved_at_each_swept_bandwidth(base) -> None:
    records = [moved(base, b, t, budget=budget) for budget, times in
               ((100, {0.0: 140.0, 512.0: 140.0, 1e12: 100.0}),
                (200, {0.0: 120.0, 512.0: 120.0, 1e12: 100.0}))
               for b, t in times.items()]
    assert offload_headline(records)[-1] == (
        "Across the budget sweeps, the most time offload saves over bandwidth 0 at the same "
        "budget, in store_all's times, by bandwidth: 512: none; 1e+12: 0.40 (residual at "
        f"{100 / base.store_all_peak_bytes:.2f}).")


def test_the_committed_offload_report_opens_with_its_headline() -> None:
    folder = RECORDS.parents[1] / "offload"
    records = read_records([folder / "records.jsonl"])
    report = (folder / "report.md").read_text(encoding="utf-8")
    for family, count in (("graph", 8), ("chain", 4)):  # a section, and a headline, each
        bullets = offload_headline([r for r in records if r.family == family])
        assert len(bullets) == count and "stops paying" in bullets[1]
        assert all(f"- {bullet}\n" in report for bullet in bullets)
        assert bullets[-1].endswith("A third or more removed: nowhere.") == (family == "chain")
    assert all(r.host_peak_bytes == r.predicted_host_peak_bytes for r in records)
    assert {r.workload for r in records if r.family == "chain"} == {"hetero_mlp"}


def test_the_pofo_bullet_gives_the_share_of_the_overhead_removed(base) -> None:
    peak = base.store_all_peak_bytes
    low, half, high = (int(f * peak) for f in (0.3, 0.5, 0.7))
    times = {low: {0.0: 160.0, 8.0: 150.0, 1e12: 100.0}, half: {0.0: 130.0, 8.0: 120.0},
             high: {0.0: 110.0, 8.0: 100.0}}  # store_all's time: 100
    records = [moved(base, b, t, budget=budget) for budget, row in times.items()
               for b, t in row.items()]
    assert removed_share(records[0], records[1]) == pytest.approx(1 / 6)
    assert removal_bullet(records) == (
        "residual, POFO's headline (offload removes at least a third of the recompute-only "
        "time overhead at 0.30 to 0.50 of store_all's peak): time over store_all's, recompute "
        "only to offload (share of the overhead removed) by budget, at bandwidth 8: 0.30 "
        "1.600x to 1.500x (17%), 0.50 1.300x to 1.200x (33%). A third or more removed: "
        "0.50 with 8.")
    assert removal_bullet([r for r in records if r.budget_bytes == high]) is None
