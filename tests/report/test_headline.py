"""The headline builder on synthetic points and records and on the committed reference
records, and the byte formatter it uses."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from checkpoint_ad.report import headline as hl
from checkpoint_ad.report.markdown import experiment_report
from checkpoint_ad.records.files import read_records
from checkpoint_ad.records.schema import Record
from checkpoint_ad.plotting.style import format_bytes

REPORTS = Path(__file__).resolve().parents[2] / "reports"
SHORT = 200  # characters: a bullet is one short sentence


def point(label: str, time: float, peak: int, predicted: int | None = None,
          measured: int | None = None, cost: float = 100.0) -> hl.Point:
    return hl.Point(label, label.split("(")[0], time, peak,
                    peak if predicted is None else predicted, measured, cost)


STORE = point("store_all", 1.0, 1000, measured=1100)
POINTS = [STORE,
          point("recompute_all", 50.0, 20, measured=60),
          point("revolve(slots=4)", 2.0, 40, measured=90),
          point("revolve(slots=8)", 1.6, 80, measured=130),
          point("sqrt_n(segments=10)", 1.5, 200, measured=260),  # beaten by optimal(slots=12)
          point("optimal(slots=12)", 1.2, 120, measured=180),
          point("optimal(slots=50)", 1.05, 500, measured=560)]


def test_pareto_keeps_the_points_nothing_beats_in_time_and_peak() -> None:
    front = hl.pareto(POINTS)
    assert [p.label for p in front] == ["recompute_all", "revolve(slots=4)", "revolve(slots=8)",
                                        "optimal(slots=12)", "optimal(slots=50)", "store_all"]
    assert hl.pareto(POINTS + [point("store_all", 1.0, 1000)])[-1] is STORE  # ties: the first
    by_measured = hl.pareto(POINTS, lambda p: p.measured)
    assert "sqrt_n(segments=10)" not in [p.label for p in by_measured]


def test_the_curve_is_read_by_linear_interpolation_between_front_points() -> None:
    curve = hl.trade_curve(POINTS, STORE)
    assert curve[:3] == [(0.02, 50.0), (0.04, 2.0), (0.08, 1.6)]
    assert hl.fraction_at_time(curve, 1.6) == pytest.approx(0.08)
    assert hl.fraction_at_time(curve, 1.4) == pytest.approx(0.10)  # halfway 0.08 → 0.12
    assert hl.time_at_fraction(curve, 0.06) == pytest.approx(1.8)  # halfway 2.0 → 1.6
    assert hl.time_at_fraction(curve, 0.01) is None                # below the least measured
    assert hl.fraction_at_time(curve, 0.9) is None                 # faster than store_all
    assert hl.fraction_at_time(curve, 60.0) is None                # slower than every point


def test_recompute_share_is_the_fitted_time_of_one_extra_sweep() -> None:
    # time = 0.2 + 0.004 * cost: one sweep of 100 evaluations is 0.4 of store_all's 0.6
    points = [point(f"p{cost}", 0.2 + 0.004 * cost, 10, cost=cost) for cost in (100, 150, 300)]
    assert hl.recompute_share(points, points[0]) == pytest.approx(0.4 / 0.6)
    assert hl.recompute_share(points[:1], points[0]) is None


def test_front_sentences_name_each_policy_on_the_front_and_its_savings() -> None:
    first, second = hl.front_sentences(POINTS, STORE, "At n = 100")
    assert first == ("At n = 100, 6 of 7 configurations are on the Pareto front of time against "
                     "activation peak: recompute_all (1), revolve (2), optimal (2), store_all "
                     "(1); sqrt_n never.")
    assert second == ("Peak and time against store_all's 1000 B at 1 s: recompute_all 20 B at "
                      "50.00x; revolve 40 B–80 B at 2.00x–1.60x; optimal 120 B–500 B at "
                      "1.20x–1.05x.")
    only = hl.front_sentences([STORE, point("store_all", 2.0, 2000)], STORE, "At n = 1")
    assert len(only) == 1  # nothing but the reference on the front: no savings to state


def test_prediction_sentence_names_where_measurement_departs_most() -> None:
    text = hl.prediction_sentence(POINTS + [point("odd", 9.0, 100, predicted=90)])
    assert "are exact in 7 of 8 configurations" in text
    assert "most at recompute_all (60 B against 20 B, +200%)" in text
    assert "least at store_all (+10%)" in text
    assert hl.prediction_sentence([point("a", 1.0, 5)]).endswith("none has a measured peak.")


def test_claim_sentences_compare_with_the_published_point() -> None:
    claim = hl.Claim("Someone (2000)", "rnn", 1000, 0.05, 1.33, "their machine")
    points = [point("store_all", 1.0, 1000, measured=1000, cost=1000),
              point("a", 1.1, 200, measured=300, cost=2000),
              point("b", 1.5, 30, measured=100, cost=6000)]
    sentences = hl.claim_sentences(points, points[0], claim, 1000)
    text = " ".join(sentences)
    # 1.33 lies 0.17/0.4 of the way from b (1.5) to a (1.1): 0.03 + 0.425 * 0.17 = 0.10225
    assert "the measured front gives 10.2% at 1.33x and" in text
    assert "and 1.45x at 5%." in text                             # 1.5 - 0.4 * 0.02 / 0.17
    assert "costs 10% of store_all's time here" in text           # slope 1e-4 per evaluation
    assert "takes 9.0x the forward here, about 2.0x for their machine" in text
    assert "Counting tracemalloc's peak" in text and "at most" not in text
    assert len(sentences) == 3 and all(len(s) < SHORT for s in sentences)
    short = hl.claim_sentences(points[:2], points[0], claim, 1000)[0]
    assert "at most 20.0% at 1.33x (its least-memory point takes only 1.10x)" in short
    assert "no point at 5% (its least is 20.0%, at 1.10x)" in short


@pytest.mark.parametrize("size, text", [
    (0, "0 B"), (1, "1 B"), (999, "999 B"), (1023, "1023 B"), (1024, "1 KiB"),
    (1536, "1.5 KiB"), (1000 * 1024, "1000 KiB"), (1048575, "1024 KiB"), (2**20, "1 MiB"),
    (2**30 - 1, "1024 MiB"), (2**30, "1 GiB"), (10**12, "931 GiB"), (2**40 - 1, "1024 GiB"),
    (2**40, "1 TiB"), (1.45 * 2**20, "1.45 MiB"), (-2048, "-2 KiB")])
def test_format_bytes_at_every_power_of_1024(size: float, text: str) -> None:
    assert format_bytes(size) == text


def test_format_bytes_never_uses_an_exponent_nor_more_than_four_digits() -> None:
    sizes = sorted({int(m * 1024**k) + d for k in range(5) for m in (1, 9.995, 99.95, 999.5,
                                                                        1000, 1023.5, 1024)
                    for d in (-1, 0, 1)} | {1, 2**40})
    for size in (s for s in sizes if s <= 2**40):  # 1 B to 1 TiB
        text = format_bytes(size)
        assert re.fullmatch(r"\d{1,4}(\.\d{1,2})? (B|KiB|MiB|GiB|TiB)", text), (size, text)
        value, unit = text.split()
        scale = 1024 ** ("B", "KiB", "MiB", "GiB", "TiB").index(unit)
        assert float(value) * scale == pytest.approx(size, rel=0.006, abs=0.5)


def record(policy: str, peak: int, time: float, n: int = 64, **changes: object) -> Record:
    fields = dict(experiment="e", workload="rnn", sizes={"n": n}, policy=policy, params={},
                  plan_params={}, seed=0, dtype="float64", costs="unit", repeats=1,
                  forward_evals=n, peak_stored=1, forward_cost=float(n), peak_bytes=peak,
                  peak_bytes_by_kind={"tape": peak}, predicted_peak_bytes=peak,
                  measured_peak_bytes=peak + 100, rss_peak_increase_bytes=0,
                  rss_high_water_increase_bytes=None, parameter_bytes=0,
                  parameter_gradient_bytes=0, wall_s_median=time, wall_s_min=time,
                  wall_s_max=time, max_grad_diff=0.0, loss=1.0)
    fields.update(changes)
    return Record(**fields)


def test_headline_over_records_reads_the_largest_n_and_the_workloads_claim(tmp_path) -> None:
    records = [record("store_all", 2**20, 1.0, n=8), record("store_all", 2**21, 2.0),
               record("optimal", 100 * 1024, 2.5, params={"budget_bytes": 102400},
                      forward_cost=128.0),
               record("revolve", 50 * 1024, 3.0, params={"slots": 4}, forward_cost=192.0)]
    sentences = hl.headline(records)
    assert sentences[0].startswith("At n = 64, 3 of 3 configurations are on the Pareto front")
    assert sentences[1] == ("Peak and time against store_all's 2 MiB at 2 s: revolve(slots=4) "
                            "50 KiB at 1.50x; optimal(budget_bytes=100 KiB) 100 KiB at 1.25x.")
    assert any(s.startswith("Gruslys et al. (2016) report 5% of the memory") for s in sentences)
    chain = [record(r.policy, r.peak_bytes, r.wall_s_median, r.n, workload="chain",
                    params=r.params, forward_cost=r.forward_cost) for r in records]
    assert not any("Gruslys" in s for s in hl.headline(chain))
    assert hl.headline([r for r in records if r.policy != "store_all"]) == []
    report = experiment_report(records, {}, tmp_path)
    section = report.split("### Headline\n\n")[1].split("\n\n")[0].splitlines()
    assert section == [f"- {s}" for s in sentences]


@pytest.mark.parametrize("name", ["fig69", "hetero_budget", "rnn_bptt"])
def test_a_committed_reports_headline_is_a_few_short_bullets(name: str) -> None:
    bullets = hl.headline(read_records([REPORTS / name / "records.jsonl"]))
    assert 3 <= len(bullets) <= hl.MOST_BULLETS
    assert all(len(b) < SHORT and b.endswith(".") for b in bullets), bullets
    report = (REPORTS / name / "report.md").read_text(encoding="utf-8")
    assert all(f"- {b}\n" in report for b in bullets)  # the committed report is up to date


def test_the_rnn_headline_states_the_front_the_prediction_and_the_papers_point() -> None:
    front, peaks, prediction, claim, recompute, whole = hl.headline(
        read_records([REPORTS / "rnn_bptt" / "records.jsonl"]))
    assert front == ("At n = 1,000, 7 of 16 configurations are on the Pareto front of time "
                     "against activation peak: revolve (3), optimal (3), sqrt_n (1); store_all "
                     "never.")
    assert peaks.startswith("Peak and time against store_all's 9.79 MiB at 377 ms: revolve "
                            "66 KiB–162 KiB at 3.95x–2.42x; optimal 168 KiB–456 KiB at "
                            "1.89x–1.59x; sqrt_n(segments=32) 582 KiB at 0.96x")
    assert "16 of 16" in prediction and "revolve(slots=4) (218 KiB against 66 KiB, +230%)" in \
        prediction and "sqrt_n(segments=128) (+20%)" in prediction
    assert claim.startswith("Gruslys et al. (2016) report 5% of the memory at 1.33x the time")
    assert "gives 5.1% at 1.33x and 1.36x at 5%." in claim
    assert "costs 39% of store_all's time" in recompute and "1.6x the forward" in recompute
    assert whole.endswith("gives 5.3% at 1.33x.")
