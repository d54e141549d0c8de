"""The checkpoint-ad command line, in process against temporary folders (and once installed)."""
from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from checkpoint_ad.chains import policies
from checkpoint_ad.cli import main as cli
from checkpoint_ad.workloads import chain_models
from checkpoint_ad.chains.backprop import backprop, plan
from checkpoint_ad.lab.specs import experiment_names
from checkpoint_ad.records.files import read_records

TINY = """\
description = "two depths, three policies"
workload = "chain"
repeats = 1
sizes = { width = 40 }
grid = { n = [3, 6] }
detail = { n = 6 }
policies = [{ policy = "store_all" }, { policy = "recompute_all" },
            { policy = "revolve", params = { slots = 2 } }]
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_list_names_workloads_policies_parameters_and_experiments(capsys) -> None:
    status, out, _ = run(capsys, "list")
    assert status == 0
    for name in chain_models.names() + policies.names() + experiment_names():
        assert name in out
    assert "--width 1000" in out and "slots (int" in out
    graphs = out[out.index("Graph workloads"):out.index("Experiments")]
    from checkpoint_ad.graphs.policies import names as graph_policy_names
    from checkpoint_ad.workloads.graph_models import graph_names
    for name in graph_names() + graph_policy_names():
        assert f"\n  {name} " in graphs


def test_plan_prints_the_actions_and_counts(capsys) -> None:
    status, out, _ = run(capsys, "plan", "--policy", "revolve", "--n", "20", "--slots", "3")
    expected = plan("revolve", n=20, slots=3)
    assert status == 0
    assert out.splitlines()[0] == expected.describe().splitlines()[0]
    assert f"{expected.forward_evals} forward evaluations" in out
    assert "steps by action:" in out


@pytest.mark.parametrize("argv, policy, params", [
    (["--policy", "revolve", "--n", "20", "--slots", "3"], "revolve", {"slots": 3}),
    (["--policy", "sqrt_n", "--n", "30"], "sqrt_n", {}),
    (["--policy", "recompute_all", "--n", "7"], "recompute_all", {}),
])
def test_plan_json_equals_the_library(capsys, argv, policy, params) -> None:
    status, out, _ = run(capsys, "plan", *argv, "--json")
    data = json.loads(out)
    expected = plan(policy, n=int(argv[3]), **params)
    assert status == 0
    assert data["forward_evals"] == expected.forward_evals
    assert data["peak_stored"] == expected.peak_stored
    assert [(a["action"], a["stage"], a["end"]) for a in data["actions"]] == [
        (s.action.value, s.stage, s.end) for s in expected]
    assert sum(data["counts"].values()) == len(expected)


@pytest.mark.parametrize("argv, message", [
    (["plan", "--policy", "rewind", "--n", "5"], "unknown policy 'rewind'"),
    (["plan", "--policy", "revolve", "--n", "5", "--segments", "2"], "no parameter segments"),
    (["run", "fig70"], "unknown experiment 'fig70'"),
    (["report", "/nonexistent/records.jsonl"], "no such results"),
    (["compare", "--workload", "cnn"], "unknown workload 'cnn'"),
    (["compare", "--policies", "revolve:slots"], "expected key=value"),
    (["compare", "--workload", "chain", "--batch", "4"], "no size batch"),
])
def test_user_errors_are_one_line_and_status_2(capsys, argv, message) -> None:
    status, out, err = run(capsys, *argv)
    assert status == 2 and out == ""
    assert err.startswith("checkpoint-ad: error: ") and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_usage_errors_return_2(capsys) -> None:
    assert run(capsys, "plan", "--policy", "revolve", "--n", "0")[0] == 2
    assert run(capsys, "launch")[0] == 2


@pytest.mark.parametrize("command", [[], ["list"], ["plan"], ["run"], ["compare"], ["report"]])
def test_help_explains_with_an_example(capsys, command) -> None:
    status, out, _ = run(capsys, *command, "--help")
    assert status == 0
    assert "example" in out and "checkpoint-ad " in out.split("example", 1)[1]


def test_compare_json_matches_backprop_in_process(capsys) -> None:
    status, out, err = run(capsys, "compare", "--workload", "mlp", "--n", "6", "--width", "8",
                           "--batch", "3", "--policies", "store_all,revolve:slots=2,sqrt_n",
                           "--repeats", "1", "--seed", "3", "--json")
    assert status == 0
    records = json.loads(out)  # stdout holds nothing else
    assert "[3/3]" in err
    assert [r["policy"] for r in records] == ["store_all", "revolve", "sqrt_n"]
    workload = chain_models.build("mlp", {"n": 6, "width": 8, "batch": 3}, seed=3)
    for record in records:
        result = backprop(workload.chain, workload.x0, policy=record["policy"], seed=3,
                          **record["params"])
        stats = result.stats
        assert record["sizes"] == {"n": 6, "width": 8, "batch": 3}
        assert record["forward_evals"] == stats.forward_evals
        assert record["peak_stored"] == stats.peak_stored
        assert record["peak_bytes"] == stats.peak_bytes
        assert record["predicted_peak_bytes"] == stats.predicted_peak_bytes
        assert record["parameter_bytes"] == stats.parameter_bytes
        assert record["peak_bytes_by_kind"] == stats.peak_bytes_by_kind
        assert record["max_grad_diff"] == 0.0
        assert np.isclose(record["loss"], float(result.value), rtol=0, atol=0)


def test_compare_prints_an_aligned_table_with_defaults(capsys) -> None:
    status, out, _ = run(capsys, "compare", "--n", "5", "--policies", "store_all,recompute_all",
                         "--repeats", "1", "--no-progress")
    lines = out.splitlines()
    assert status == 0 and "width=1000" in lines[0]  # the default width of the chain
    header = next(line for line in lines if line.startswith("policy"))
    for column in ("evals", "stored", "activations", "dominant", "params+grads", "predicted",
                   "tracemalloc", "time", "mem/store_all", "time/store_all"):
        assert column in header
    rows = {line.split()[0]: line.split() for line in lines[lines.index(header) + 2:]}
    assert rows["store_all"][2:4] == ["5", "5"] and rows["recompute_all"][2:4] == ["15", "1"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, str, Path]:
    """``checkpoint-ad run tiny.toml --out OUT`` (TINY), run once through main() for the tests
    that read what it wrote: (status, stdout, stderr, OUT)."""
    folder = tmp_path_factory.mktemp("tiny_run")
    (folder / "tiny.toml").write_text(TINY)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main(["run", str(folder / "tiny.toml"), "--out", str(folder / "out")])
    return status, out.getvalue(), err.getvalue(), folder / "out"


def test_run_writes_records_plots_and_report(tiny_run) -> None:
    status, out, err, folder = tiny_run
    assert status == 0, err
    records = read_records([folder / "records.jsonl"])
    assert len(records) == 6 and {r.experiment for r in records} == {"tiny"}
    assert (folder / "records.csv").stat().st_size > 0
    for name in ("memory_vs_n", "evaluations_vs_n", "tradeoff", "timeline", "schedule",
                 "predicted_vs_measured"):
        assert (folder / f"{name}.png").stat().st_size > 0
    assert (folder / "report.md").exists() and "6 records" in out


def test_run_defaults_to_reports_under_the_working_directory(capsys, tmp_path, monkeypatch
                                                              ) -> None:
    (tmp_path / "tiny.toml").write_text(TINY.replace("grid = { n = [3, 6] }",
                                                     "grid = { n = [6] }"))
    monkeypatch.chdir(tmp_path)
    status, _, err = run(capsys, "run", "tiny.toml", "--no-progress")
    assert status == 0, err
    assert len(read_records([tmp_path / "reports" / "tiny"])) == 3


def test_report_rebuilds_from_saved_records(capsys, tiny_run, tmp_path: Path) -> None:
    assert tiny_run[0] == 0, tiny_run[2]
    saved = tmp_path / "saved"
    saved.mkdir()
    shutil.copy(tiny_run[3] / "records.jsonl", saved / "records.jsonl")
    status, out, _ = run(capsys, "report", str(saved / "records.jsonl"), "--out",
                         str(tmp_path / "rebuilt"))
    assert status == 0 and "6 records" in out
    assert (tmp_path / "rebuilt" / "report.md").read_text().count("![") == 6
    status, _, _ = run(capsys, "report", str(saved))  # a folder; the report goes beside it
    assert status == 0 and (saved / "report.md").exists() and (saved / "schedule.png").exists()


def test_installed_console_script_help() -> None:
    script = shutil.which("checkpoint-ad")
    if script is None:
        pytest.skip("the checkpoint-ad console script is not on PATH (pip install the package)")
    done = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert "usage: checkpoint-ad" in done.stdout and "compare" in done.stdout
