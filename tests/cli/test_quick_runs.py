"""Examples that work on a fresh clone (issue 24): a quick run without ``--out`` writes under
``runs/`` (which git ignores), never into the committed ``reports/``, and ``run`` refuses an
output folder before it plans a single point (planning a sweep of graph planners takes many
seconds)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from checkpoint_ad.cli import main as cli
from checkpoint_ad.lab import experiment as ex
from checkpoint_ad.records.files import read_records
from helpers import TINY_EXPERIMENT

ROOT = Path(__file__).resolve().parents[2]
QUICK_TINY = TINY_EXPERIMENT + "[quick]\ngrid = { n = [3] }\n"


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` and its bytes."""
    return {str(path.relative_to(folder)): path.read_bytes()
            for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.fixture
def clone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder like a fresh clone's: an experiment file and a committed reference
    report of it under reports/; the test runs in it."""
    (tmp_path / "tiny.toml").write_text(QUICK_TINY)
    committed = tmp_path / "reports" / "tiny"
    committed.mkdir(parents=True)
    (committed / "records.jsonl").write_text('{"committed": "reference"}\n')
    (committed / "report.md").write_text("# the committed reference report\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_gitignore_lists_the_folder_of_quick_runs() -> None:
    assert "runs/" in (ROOT / ".gitignore").read_text().splitlines()


def test_a_quick_run_writes_under_runs_and_never_into_reports(capsys, clone: Path) -> None:
    committed = snapshot(clone / "reports")
    status = cli.main(["run", "tiny.toml", "--quick", "--no-progress"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert snapshot(clone / "reports") == committed
    records = read_records([clone / "runs" / "tiny-quick" / "records.jsonl"])
    assert {r.sizes["n"] for r in records} == {3} and len(records) == 2
    assert (clone / "runs" / "tiny-quick" / "report.md").is_file()
    last = captured.out.splitlines()[-1]
    assert "runs/" in last and "git ignores" in last and "reports/tiny" in last


def test_the_full_run_keeps_its_default_under_reports(capsys, clone: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --quick the default folder is reports/NAME, whose committed records are then
    refused (planning nothing)."""
    monkeypatch.setattr(ex, "check_points", planner_never_called)
    status = cli.main(["run", "tiny.toml", "--no-progress"])
    err = capsys.readouterr().err
    assert status == 2 and f"{Path('reports', 'tiny', 'records.jsonl')} already holds 1" in err


def planner_never_called(*args: object, **kwargs: object) -> None:
    raise AssertionError("the sweep was planned before its output folder was refused")


def _records(folder: Path, text: str) -> None:
    folder.mkdir(parents=True)
    (folder / "records.jsonl").write_text(text)


REFUSED_FOLDERS = {  # what is in the output folder "out" -> (extra arguments, message)
    "records_without_resume": (lambda out: _records(out, '{"a": 1}\n'), [],
                               "already holds 1 record line(s)"),
    "damage_on_resume": (lambda out: _records(out, '{"a": \n{"b": 2}\n'), ["--resume"],
                         "--resume repairs only a truncated last line"),
    "under_a_file": (lambda out: out.parent.joinpath("afile").write_text("x"), [],
                     "afile is a file, not a folder"),
    "report_md_is_a_folder": (lambda out: (out / "report.md").mkdir(parents=True), [],
                              "it exists and is not a file"),
}


@pytest.mark.parametrize("case", sorted(REFUSED_FOLDERS))
def test_an_output_folder_is_refused_before_any_point_is_planned(
        capsys, clone: Path, monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    prepare, extra, message = REFUSED_FOLDERS[case]
    out = clone / "out"
    prepare(out)
    target = clone / "afile" / "out" if case == "under_a_file" else out
    before = snapshot(clone)
    monkeypatch.setattr(ex, "check_points", planner_never_called)
    status = cli.main(["run", "tiny.toml", "--out", str(target), "--no-progress", *extra])
    err = capsys.readouterr().err
    assert status == 2 and message in err and len(err.splitlines()) == 1, err
    assert snapshot(clone) == before


def test_a_refused_planning_leaves_no_folder_behind(capsys, clone: Path) -> None:
    """The folder is created before planning (to prove it writable); a point refused at
    planning removes it again."""
    (clone / "bad.toml").write_text(QUICK_TINY.replace("slots = 2", "slots = 0"))
    status = cli.main(["run", "bad.toml", "--quick", "--no-progress"])
    assert status == 2 and "slots must be a positive integer" in capsys.readouterr().err
    assert not (clone / "runs").exists()


def test_a_second_quick_run_of_a_slow_experiment_is_refused_at_once(tmp_path: Path) -> None:
    """graph_budget's quick grid takes about 20 seconds to plan; its records already there,
    the refusal comes in well under that (a real process, its start-up included)."""
    _records(tmp_path / "runs" / "graph_budget-quick", '{"a": 1}\n')
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "checkpoint_ad", "run", "graph_budget", "--quick"],
                          cwd=tmp_path, env=environment, capture_output=True, text=True,
                          timeout=120)
    elapsed = time.perf_counter() - started
    assert done.returncode == 2 and "already holds 1 record line(s)" in done.stderr, done.stderr
    assert elapsed < 5, f"refused after {elapsed:.1f} s"
