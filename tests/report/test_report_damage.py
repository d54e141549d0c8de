"""``report`` reads records it did not write: every field a table or a figure reads is checked
when the record is read (:meth:`Record.problem`), so a damaged record is one skipped line with
its number and the figures are drawn without it, never a traceback (issues 14 and 16). The
property test mutates a real records file at random (bytes and JSON values). docs/errors.md
lists the cases."""
from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checkpoint_ad import plotting
from checkpoint_ad.cli import main as cli
from checkpoint_ad.lab import experiment as ex
from checkpoint_ad.lab import specs
from helpers import TINY_EXPERIMENT, draw_small, run_cli, snapshot


@pytest.fixture(scope="module")
def lines(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The lines of a real records file; the n=5 records hold a timeline and a schedule."""
    folder = tmp_path_factory.mktemp("records")
    (folder / "tiny.toml").write_text(textwrap.dedent(TINY_EXPERIMENT))
    ex.run_experiment(specs.load_experiment(str(folder / "tiny.toml")), folder / "run",
                      isolate=False)
    return (folder / "run" / "records.jsonl").read_text().splitlines()


def changed(line: str, **fields: Any) -> str:
    data = json.loads(line)
    data.update(fields)
    return json.dumps(data)


HUGE = "9" * 5000

# (name, how the detail record is damaged, words of the warning)
DAMAGE = [
    ("huge_integer", lambda l: l.replace('"peak_bytes":', f'"peak_bytes":{HUGE},"x":', 1),
     "not a record: Exceeds the limit (4300 digits) for integer string conversion"),
    ("deep_nesting", lambda l: "[" * 200_000 + "]" * 200_000,
     "not a record: its JSON is nested too deeply"),
    ("zero_forward_cost", lambda l: changed(l, forward_cost=0),
     "field forward_cost: must be a positive finite number, got 0"),
    ("zero_peak_bytes", lambda l: changed(l, peak_bytes=0),
     "field peak_bytes: must be a whole number from 1 to 2**63-1, got 0"),
    ("nan_time", lambda l: changed(l, wall_s_median=float("nan")),
     "field wall_s_median: must be a positive finite number of seconds, got nan"),
    ("inconsistent_times", lambda l: changed(l, wall_s_min=5.0, wall_s_max=1.0),
     "times must satisfy wall_s_min <= wall_s_median <= wall_s_max"),
    ("bad_bytes_by_kind", lambda l: changed(l, peak_bytes_by_kind={"checkpoint": "x"}),
     "field peak_bytes_by_kind: checkpoint must be a whole number of bytes >= 0, got 'x'"),
    ("nul_name", lambda l: changed(l, experiment="a\x00b"),
     "field experiment: must be a plain name"),
    ("surrogate_name", lambda l: changed(l, workload="chain\ud800"),
     "field workload: holds a control character or a lone surrogate"),
    ("escaping_name", lambda l: changed(l, experiment="../../escaped"),
     "field experiment: must be a plain name"),
    ("schedule_strings", lambda l: changed(l, schedule=["x", "y"]),
     "field schedule: entry 0 must be [action, stage, end], got 'x'"),
    ("schedule_ragged", lambda l: changed(l, schedule=[[1, 2], [3]]),
     "field schedule: entry 0 must be [action, stage, end], got [1, 2]"),
    ("schedule_nulls", lambda l: changed(l, schedule=[None, None]),
     "field schedule: entry 0 must be [action, stage, end], got None"),
    ("schedule_number", lambda l: changed(l, schedule=[0]),
     "field schedule: entry 0 must be [action, stage, end], got 0"),
    ("schedule_flat", lambda l: changed(l, schedule=[1, 2, 3]),
     "field schedule: entry 0 must be [action, stage, end], got 1"),
    ("schedule_unknown_action", lambda l: changed(l, schedule=[["jump", 1, None]]),
     "field schedule: entry 0: unknown action 'jump'"),
    ("schedule_advance_without_end", lambda l: changed(l, schedule=[["advance", 1, None]]),
     "field schedule: entry 0: advance needs an end >= its stage"),
    ("timeline_strings", lambda l: changed(l, timeline=["a", "b"]),
     "field timeline: entry 0 must be [event, live bytes], two whole numbers >= 0, got 'a'"),
    ("timeline_objects", lambda l: changed(l, timeline=[{"t": 1}]),
     "field timeline: entry 0 must be [event, live bytes]"),
    ("timeline_empty", lambda l: changed(l, timeline=[]),
     "field timeline: must be null or a non-empty list of [event, live bytes] pairs, got []"),
]


def test_each_damaged_record_is_a_skipped_line_and_the_rest_is_drawn(tmp_path: Path,
                                                                      lines) -> None:
    """One folder, not UTF-8 in its name, holds the valid records and one file per damage."""
    results = os.path.join(os.fsencode(tmp_path), b"results\xff")
    os.mkdir(results)
    with open(os.path.join(results, b"good.jsonl"), "w") as handle:
        handle.write("\n".join(lines) + "\n")
    detail = next(line for line in lines if json.loads(line)["timeline"])
    for index, (_name, damage, _words) in enumerate(DAMAGE):
        with open(os.path.join(results, b"bad%02d.jsonl" % index), "wb") as handle:
            handle.write(damage(detail).encode("utf-8", "surrogatepass") + b"\n")
    (tmp_path / "elsewhere").mkdir()
    before = snapshot(tmp_path / "elsewhere")
    done = run_cli(tmp_path, b"report", b"results\xff")
    err = done.stderr.decode("utf-8", "replace").splitlines()
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr.decode("utf-8", "replace")
    for index, (name, _damage, words) in enumerate(DAMAGE):
        warning = [line for line in err if f"bad{index:02d}.jsonl:1: " in line]
        assert len(warning) == 1 and words in warning[0], (name, warning)
        assert warning[0].endswith("; line skipped")
    assert len(err) == len(DAMAGE)
    assert f"{len(lines)} records from {len(DAMAGE) + 1} file(s) ({len(DAMAGE)} bad line(s) " \
           f"skipped)" in done.stdout.decode("utf-8", "replace")
    report = open(os.path.join(results, b"report.md"), "rb").read().decode("utf-8")
    assert "results%FF/good.jsonl" not in report and "good.jsonl" in report
    drawn = sorted(name for name in os.listdir(results) if name.endswith(b".png"))
    assert b"timeline.png" in drawn and b"schedule.png" in drawn
    assert snapshot(tmp_path / "elsewhere") == before
    assert not (tmp_path.parent / "escaped").exists()


def test_a_report_md_folder_is_refused_before_any_figure(tmp_path: Path, lines) -> None:
    (tmp_path / "records.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "report.md").mkdir()
    done = run_cli(tmp_path, "report", ".")
    err = done.stderr.decode().splitlines()
    assert done.returncode == 2 and len(err) == 1, done.stderr
    assert err[0] == ("checkpoint-ad: error: cannot write report.md: it exists and is not a "
                      "file; move it away or choose another --out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["records.jsonl", "report.md"]


# -- property: report never raises, whatever the records file holds ------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner,
                                                                max_size=4),
    max_leaves=12)


@st.composite
def mutated_files(draw: st.DrawFn, lines: list[str]) -> bytes:
    """The records file with random fields replaced by random JSON values, and random bytes
    deleted, inserted or changed."""
    chosen = [json.loads(line) for line in lines]
    for _ in range(draw(st.integers(0, 4))):
        record = chosen[draw(st.integers(0, len(chosen) - 1))]
        record[draw(st.sampled_from(sorted(record)))] = draw(json_values)
    data = bytearray("\n".join(json.dumps(r) for r in chosen).encode() + b"\n")
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(data) - 1))
        how = draw(st.sampled_from(["delete", "insert", "change"]))
        if how == "delete":
            del data[at]
        else:
            data[at:at + (how == "change")] = bytes([draw(st.integers(0, 255))])
    return bytes(data)


@settings(max_examples=8, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                  HealthCheck.too_slow])
@given(data=st.data())
def test_report_never_raises_on_mutated_records(tmp_path_factory, lines, data) -> None:
    folder = tmp_path_factory.mktemp("mutated")
    (folder / "records.jsonl").write_bytes(data.draw(mutated_files(lines)))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plotting, "save_png", draw_small)
        status = cli.main(["report", str(folder / "records.jsonl"), "--out",
                           str(folder / "out")])
    assert status in (0, 2)
    if status == 0:
        assert (folder / "out" / "report.md").read_text(encoding="utf-8").startswith("# ")


def test_build_report_refuses_a_name_that_is_a_path(tmp_path: Path, lines) -> None:
    """Records made in-process skip the reading checks: the report checks the name itself."""
    from checkpoint_ad.errors import ExperimentError
    from checkpoint_ad.report.markdown import build_report
    from checkpoint_ad.records.schema import Record

    records = [Record(**json.loads(line)) for line in lines]
    records[0] = Record(**{**records[0].to_dict(), "experiment": "../escaped"})
    with pytest.raises(ExperimentError, match="experiment name must be a plain name"):
        build_report(records, tmp_path / "out")
    assert not (tmp_path / "escaped").exists()
