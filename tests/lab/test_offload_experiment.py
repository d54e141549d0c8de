"""The shipped ``offload`` experiment (docs/offload_model.md): its quick grid measured in-process,
its records' offload fields (bandwidth, predicted time, host peaks predicted and measured) and
its report (headline, figures, the table of what each plan moves)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from checkpoint_ad.lab import experiment as ex
from checkpoint_ad.lab import specs
from checkpoint_ad.records.schema import Record
from checkpoint_ad.report.markdown import build_report

SPEC = Path(__file__).resolve().parents[2] / "experiments" / "offload.toml"


@pytest.fixture(scope="module")
def quick_records(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Record], Path]:
    """The offload experiment's quick grid, measured in-process, and its report."""
    out = tmp_path_factory.mktemp("offload")
    records = ex.run_experiment(specs.load_experiment(str(SPEC), quick=True), out,
                                isolate=False)
    build_report(records, out, [out / "records.jsonl"])
    return records, out


def test_the_quick_grid_records_time_and_host_bytes(quick_records) -> None:
    records, _ = quick_records
    graphs = [r for r in records if r.family == "graph"]
    assert {r.workload for r in graphs} == {"residual", "unet", "transformer"}
    assert {r.bandwidth for r in graphs} == {0.0, 128.0, 1e12}
    for record in graphs:
        assert record.max_grad_diff == 0.0 and record.peak_bytes <= record.budget_bytes
        assert record.bandwidth == record.params["bandwidth"]
        assert record.host_peak_bytes == record.predicted_host_peak_bytes, record.label
        assert record.store_all_time == 3 * record.store_all_cost  # backward steps cost 2
        assert record.predicted_time >= record.store_all_time
        if not record.bandwidth:  # no offload: the time of its computations, no host byte
            assert record.host_peak_bytes == 0
            assert record.predicted_time == record.forward_cost + 2 * record.store_all_cost
        assert record.lower_bound <= record.forward_cost, record.label
    assert any(r.host_peak_bytes > 0 for r in records)  # some plan really moved values


def test_the_heterogeneous_chain_part_records_the_same_offload_fields(quick_records) -> None:
    records, _ = quick_records
    chains = [r for r in records if r.family == "chain"]
    assert {r.workload for r in chains} == {"hetero_mlp"}
    assert {r.bandwidth for r in chains} == {0.0, 2.0, 1e12}
    for record in chains:
        assert record.experiment == "offload" and record.max_grad_diff == 0.0
        assert record.peak_bytes <= record.budget_bytes < record.store_all_peak_bytes
        assert record.host_peak_bytes == record.predicted_host_peak_bytes, record.label
        assert record.store_all_cost == record.n  # the record's costs have a mean of 1
        assert record.predicted_time >= record.store_all_time
        if not record.bandwidth:
            assert record.host_peak_bytes == 0
    fastest = min(chains, key=lambda r: r.predicted_time)
    assert fastest.bandwidth == 1e12 and fastest.host_peak_bytes > 0
    assert fastest.predicted_time < min(r.predicted_time for r in chains if not r.bandwidth)


def test_old_records_without_offload_fields_still_load(quick_records) -> None:
    records, _ = quick_records
    data = json.loads(json.dumps(records[0].to_dict()))
    for name in ("bandwidth", "predicted_time", "store_all_time",
                 "predicted_host_peak_bytes", "host_peak_bytes"):
        del data[name]
    old = Record.from_dict(data)
    assert old.bandwidth is None and old.time_overhead is None
    assert Record.problem({**records[0].to_dict(), "host_peak_bytes": -1}).startswith(
        "field host_peak_bytes: must be a whole number")


def test_the_quick_report_has_the_offload_headline_figures_and_table(quick_records) -> None:
    records, out = quick_records
    text = (out / "report.md").read_text()
    assert "- Offload (docs/offload_model.md): predicted time over store_all's time" in text
    assert "## offload (graph workloads)" in text and "## offload (chain workloads)" in text
    for workload in ("residual", "unet", "transformer", "hetero_mlp"):
        line = next(line for line in text.splitlines() if line.startswith(f"- {workload} ("))
        unit = "op time" if workload != "hetero_mlp" else "cost unit"
        assert f"time over store_all's by bandwidth (bytes per {unit}): 0: " in line
        assert "offload pays from bandwidth" in line or "does not pay" in line
        found = list(out.glob(f"*/offload_{workload}_*.png"))
        assert len(found) == 1 and f"({found[0].parent.name}/{found[0].name})" in text
    assert "a chain of 8 stages" in text and "(chain/offload_schedule_hetero_mlp" in text
    assert "| offloaded/recomputed/kept |" in text and "| host measured |" in text
    assert "lower bounds above their record's cost: 0" in text
    assert "**bandwidth**: bytes per cost unit" in text
