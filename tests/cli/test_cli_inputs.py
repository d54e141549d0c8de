"""Inputs of issue 22 that the command line took wrongly, each run as a real ``python -m
checkpoint_ad`` process in a fresh folder: ``--planner-memory`` on every form of ``plan``
(F2), progress lines of size-less graph workloads (F3), ``save_ops``' op names from a file or
``--policies`` (F10), one rule for budget fractions (F15), and the step cap of graph plans."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import checkpoint_ad
from checkpoint_ad.lab.specs import parse_experiment

REPO = Path(checkpoint_ad.__file__).resolve().parent.parent
RESIDUAL = ["--workload", "residual", "--family", "graph", "--width", "2", "--batch", "1"]
# the CLI with plan's step cap lowered, so that a plan of a small graph is too long to list
LOWERED_CAP = ("import sys; import checkpoint_ad.cli.plan as plan; plan.MAX_LISTED_STEPS = 100; "
               "from checkpoint_ad.cli.main import main; sys.exit(main(sys.argv[1:]))")


def run_cli(cwd: Path, *argv: str, code: tuple[str, ...] = ("-m", "checkpoint_ad")
            ) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
    return subprocess.run([sys.executable, *code, *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def refused(cwd: Path, *argv: str, code: tuple[str, ...] = ("-m", "checkpoint_ad")) -> str:
    """Run ``argv`` in ``cwd``: exit 2, one error line, nothing on stdout, nothing written;
    the line."""
    before = sorted(cwd.rglob("*"))
    done = run_cli(cwd, *argv, code=code)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr
    assert done.stdout == "" and len(lines) == 1, done.stdout + done.stderr
    assert lines[0].startswith("checkpoint-ad: error: ") and "Traceback" not in done.stderr
    assert sorted(cwd.rglob("*")) == before, "a refused command wrote something"
    return lines[0]


@pytest.mark.parametrize("argv, says", [
    (["plan", "--n", "5000", "--policy", "revolve", "--slots", "10", "--summary"],
     "policy 'revolve': planning n=5,000 with slots=10 needs about"),
    (["plan", "--workload", "chain", "--n", "5000", "--width", "2", "--policy", "revolve",
      "--slots", "10", "--summary"],
     "policy 'revolve': planning n=5,000 with slots=10 needs about"),
    (["plan", *RESIDUAL, "--n", "3", "--policy", "recompute_all", "--summary"],
     "policy 'recompute_all': planning this graph of 14 ops needs about 57,200 bytes"),
], ids=["unit_chain", "chain_workload", "graph_workload"])
def test_planner_memory_applies_to_every_form_of_plan(tmp_path: Path, argv: list[str],
                                                       says: str) -> None:
    line = refused(tmp_path, *argv, "--planner-memory", "1KB")
    assert says in line and "planner memory limit of 1,000 bytes (as set)" in line, line


@pytest.mark.parametrize("workload", ["logistic", "relu_layer"])
def test_compare_shows_progress_for_graph_workloads_without_n(tmp_path: Path,
                                                               workload: str) -> None:
    done = run_cli(tmp_path, "compare", "--workload", workload, "--policies", "store_all",
                   "--repeats", "1", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["workload"] == workload
    assert done.stderr.startswith(f"[1/1] {workload} width=16 batch=32 store_all: "), done.stderr


def test_a_run_takes_op_names_from_a_file_and_shows_progress_without_n(tmp_path: Path
                                                                        ) -> None:
    (tmp_path / "ops.toml").write_text(
        'family = "graph"\nworkloads = ["relu_layer"]\nrepeats = 1\npolicies = [{ policy = '
        '"save_ops", params = { ops = ["matmul", "tanh"] } }]\n')
    done = run_cli(tmp_path, "run", "ops.toml", "--out", "out")
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("[1/1] relu_layer width=16 batch=32 save_ops(ops=matmul+tanh): "
                                  "9 evaluations"), done.stderr
    record = json.loads((tmp_path / "out/records.jsonl").read_text())
    assert record["params"] == record["plan_params"] == {"ops": ["matmul", "tanh"]}


def test_arrays_of_op_names_become_the_tuples_save_ops_takes() -> None:
    spec = parse_experiment({"family": "graph", "workloads": ["relu_layer"], "policies": [
        {"policy": "save_ops", "params": {"ops": ["matmul"]}},
        {"policy": "save_ops", "sweep": {"ops": [["add"], ["matmul", "add"]]}}]}, "ops.toml")
    assert [c for entry in spec.policies for c in entry.configurations()] == [
        {"ops": ("matmul",)}, {"ops": ("add",)}, {"ops": ("matmul", "add")}]


def test_compare_takes_op_names_joined_by_plus(tmp_path: Path) -> None:
    done = run_cli(tmp_path, "compare", "--workload", "relu_layer", "--policies",
                   "save_ops:ops=matmul+add", "--repeats", "1", "--json", "--no-progress")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["plan_params"] == {"ops": ["matmul", "add"]}


@pytest.mark.parametrize("argv, message", [
    (["compare", "--workload", "relu_layer", "--policies", "save_ops:ops=+"],
     "--policies: save_ops:ops: expected names joined by +, such as matmul+tanh, got '+'"),
    (["plan", "--workload", "relu_layer", "--policy", "save_ops", "--ops", "+"],
     "argument --ops: expected names joined by +, such as matmul+tanh, got '+' (see "
     "`checkpoint-ad plan --help`)"),
], ids=["policies", "plan"])
def test_empty_op_names_are_refused(tmp_path: Path, argv: list[str], message: str) -> None:
    assert refused(tmp_path, *argv) == f"checkpoint-ad: error: {message}"


def test_op_names_that_are_not_names_are_refused_in_a_file(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text(
        'family = "graph"\nworkloads = ["relu_layer"]\npolicies = [{ policy = "save_ops", '
        'params = { ops = [1, 2] } }]\n')
    line = refused(tmp_path, "run", "bad.toml", "--out", "out")
    assert line == ("checkpoint-ad: error: bad.toml: policies[0].params: save_ops parameter "
                    "ops must be a non-empty array of names, got (1, 2)")


FRACTION = "must be a number in (0, 1] (a fraction of store_all's bytes), got 1.5"


@pytest.mark.parametrize("argv, where", [
    (["plan", "--workload", "relu_layer", "--policy", "dtr", "--budget-fraction", "1.5"],
     "plan: --budget-fraction"),
    (["compare", "--workload", "relu_layer", "--policies", "dtr:budget_fraction=1.5"],
     "compare: policies[0].params: budget_fraction"),
    (["run", "fraction.toml", "--out", "out"], "fraction.toml: policies[0].params: "
                                                "budget_fraction"),
], ids=["plan", "compare", "file"])
def test_budget_fractions_above_one_are_refused_alike(tmp_path: Path, argv: list[str],
                                                      where: str) -> None:
    (tmp_path / "fraction.toml").write_text(
        'family = "graph"\nworkloads = ["relu_layer"]\npolicies = [{ policy = "dtr", '
        'params = { budget_fraction = 1.5 } }]\n')
    before = set(tmp_path.iterdir())
    done = run_cli(tmp_path, *argv)
    assert done.returncode == 2 and done.stdout == "", done.stderr
    assert done.stderr == f"checkpoint-ad: error: {where} {FRACTION}\n"
    assert set(tmp_path.iterdir()) == before


@pytest.mark.parametrize("argv, message", [
    (["--n", "20", "--policy", "recompute_all", "--json"],
     "plan: this recompute_all plan has 5,126 steps, more than the 100 it lists at most; add "
     "--summary for its counts only, or plan smaller sizes"),
    (["--n", "30", "--policy", "store_all"],
     "plan: a plan of this graph of 122 ops has at least 122 steps, more than the 100 it "
     "lists at most; add --summary for its counts only, or plan smaller sizes"),
], ids=["after_planning", "before_planning"])
def test_graph_plans_too_long_to_list_are_refused(tmp_path: Path, argv: list[str],
                                                  message: str) -> None:
    line = refused(tmp_path, "plan", *RESIDUAL, *argv, code=("-c", LOWERED_CAP))
    assert line == f"checkpoint-ad: error: {message}"
    summary = run_cli(tmp_path, "plan", *RESIDUAL, *argv, "--summary", code=("-c", LOWERED_CAP))
    assert summary.returncode == 0 and summary.stdout, summary.stderr
