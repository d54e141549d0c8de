"""Figures and the Markdown report, built from records alone."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from checkpoint_ad.lab import experiment as ex

from checkpoint_ad.lab import specs
from checkpoint_ad import plotting
from checkpoint_ad.chains.plans import Action
from checkpoint_ad.chains.backprop import plan
from checkpoint_ad.records.files import read_records, write_records
from checkpoint_ad.records.schema import Record
from checkpoint_ad.lab import chain_measure, measure
from checkpoint_ad.report.markdown import build_report, comparison_rows, dominant_kind, text_table

SPEC = {"name": "plots", "workload": "chain", "repeats": 1, "sizes": {"width": 30},
        "grid": {"n": [2, 4, 8]}, "detail": {"n": 8},
        "policies": [{"policy": "store_all"}, {"policy": "recompute_all"},
                     {"policy": "sqrt_n"}, {"policy": "revolve", "sweep": {"slots": [2, 3]}}]}


@pytest.fixture(scope="module")
def records() -> list[Record]:
    spec = specs.parse_experiment(SPEC, "plots.toml")
    return ex.run_tasks(spec.tasks(), isolate=False)


def test_every_figure_is_written_and_not_empty(records: list[Record], tmp_path: Path) -> None:
    written = plotting.save_figures(records, tmp_path)
    assert set(written) == set(plotting.FIGURES)
    for path in written.values():
        assert path.stat().st_size > 5_000
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_figures_that_need_more_data_are_skipped(records: list[Record]) -> None:
    one_n = [r for r in records if r.n == 4]
    assert plotting.memory_vs_n(one_n) is None and plotting.evaluations_vs_n(one_n) is None
    assert plotting.tradeoff(one_n) is not None
    assert plotting.timelines(one_n) is None and plotting.schedules(one_n) is None


def test_tradeoff_takes_the_largest_n_with_both_ends(records: list[Record]) -> None:
    assert plotting.tradeoff_n(records) == 8
    assert plotting.tradeoff_n([r for r in records if r.policy != "recompute_all"]) == 8


def test_pareto_front() -> None:
    points = [(1, 9), (2, 5), (3, 6), (4, 1), (4, 3), (5, 1)]
    assert plotting.pareto_front(points) == [(1, 9), (2, 5), (4, 1)]


def test_schedule_drawing_follows_the_plan() -> None:
    chosen = plan("revolve", n=12, slots=3)
    schedule = [[s.action.value, s.stage, s.end] for s in chosen]
    drawing = plotting.schedule_paths(schedule, 12)
    backward_steps = sum(s.action in (Action.TURN, Action.BACKWARD) for s in chosen)
    assert drawing["length"] == [chosen.forward_evals + backward_steps]
    checkpoints = [bar for bar in drawing["bars"] if bar[0] == "checkpoint"]
    assert len(checkpoints) == 1 + sum(s.action is Action.SAVE for s in chosen)
    reverse = [seg for seg in drawing["segments"] if seg[0] == "reverse"]
    assert [round(seg[1][1]) for seg in reverse] == list(range(12, 0, -1))


def test_byte_and_time_labels() -> None:
    assert plotting.format_bytes(512) == "512 B"
    assert plotting.format_bytes(3 * 2**20) == "3 MiB"
    assert plotting.format_seconds(0.0123) == "12.3 ms"


def test_a_report_is_rebuilt_from_records_alone(records: list[Record], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                small_figures: None) -> None:
    source = write_records(tmp_path / "saved" / "records.jsonl", records)

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("the report ran the engine")

    monkeypatch.setattr(measure, "measure_point", forbidden)
    monkeypatch.setattr(chain_measure, "backprop", forbidden)
    out = tmp_path / "report"
    path = build_report(read_records([source]), out, [source])
    text = path.read_text()
    assert "# checkpoint_ad report: plots" in text
    for name in plotting.FIGURES:
        assert f"({name}.png)" in text and (out / f"{name}.png").stat().st_size > 0
    assert "../saved/records.jsonl" in text
    assert "bit-identical" in text and "| revolve | slots=2 |" in text
    assert "### Headline\n\n- At n = 8, " in text
    assert "\n- Peak and time against store_all's" in text


def test_report_of_several_experiments_uses_one_folder_each(records: list[Record], tmp_path: Path,
                                                            small_figures: None) -> None:
    other = [Record(**{**r.to_dict(), "experiment": "again"}) for r in records]
    build_report(list(records) + other, tmp_path)
    assert (tmp_path / "plots" / "memory_vs_n.png").exists()
    assert (tmp_path / "again" / "memory_vs_n.png").exists()
    assert "(again/memory_vs_n.png)" in (tmp_path / "report.md").read_text()


def test_comparison_rows_show_ratios_and_the_dominant_kind(records: list[Record]) -> None:
    at_8 = [r for r in records if r.n == 8]
    rows = comparison_rows(at_8)
    assert rows[0]["policy"] == "store_all" and rows[0]["mem/store_all"] == "1.00x"
    assert dominant_kind(at_8[0]).startswith("tape")
    table = text_table(rows, ["policy", "evals"])
    assert table.splitlines()[2].split() == ["store_all", "8"]
    json.dumps(rows)
