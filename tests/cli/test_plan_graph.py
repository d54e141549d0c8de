"""``checkpoint-ad plan --workload`` (graph and chain workloads) and ``checkpoint-ad
recommend``, run as real subprocesses: what they print is what the library plans; and each
mistake, through ``main()`` in process, is one line on stderr with exit status 2."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import checkpoint_ad
from checkpoint_ad.cli import main as cli
from checkpoint_ad.chains.chain import profile_chain
from checkpoint_ad.chains.replay import predict_meter as predict_chain
from checkpoint_ad.lab.points import store_all_peak
from checkpoint_ad.chains.policies import make_plan
from checkpoint_ad.graphs.costs import GraphCosts
from checkpoint_ad.graphs.plans import GraphAction, GraphStep
from checkpoint_ad.graphs.replay import replay
from checkpoint_ad.graphs.policies import plan_graph
from checkpoint_ad.workloads import chain_models, graph_models
from checkpoint_ad.lab.recommend import trace_program

REPO = Path(checkpoint_ad.__file__).resolve().parent.parent
RESIDUAL = ["--workload", "residual", "--family", "graph", "--n", "2", "--width", "4",
            "--batch", "2"]
MLP = ["--workload", "mlp", "--n", "5", "--width", "8", "--batch", "2"]


def run_cli(*argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
    return subprocess.run([sys.executable, "-m", "checkpoint_ad", *argv], env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_a_graph_plan_as_json_is_the_policys_plan_and_replays() -> None:
    done = run_cli("plan", *RESIDUAL, "--policy", "optimal", "--budget-fraction", "0.8",
                   "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    program = trace_program(graph_models.build_graph("residual", {"n": 2, "width": 4,
                                                                  "batch": 2}))
    costs = program.costs
    budget = int(0.8 * plan_graph("store_all", costs).peak_bytes)
    expected = plan_graph("optimal", costs, budget_bytes=budget)
    assert data["params"] == {"budget_bytes": budget}
    assert (data["policy"], data["method"], data["status"]) == ("optimal", "exact", "optimal")
    assert (data["forward_evals"], data["cost"], data["peak_bytes"]) == (
        expected.forward_evals, expected.cost, expected.peak_bytes)
    assert data["predicted_peak_bytes"] == data["peak_bytes"] <= budget
    assert data["lower_bound"] == expected.cost and data["gap"] == 0
    assert data["ops"] == list(costs.ops) and data["parents"] == [list(p) for p in costs.parents]
    rebuilt = GraphCosts(data["parents"], data["sizes_bytes"], residuals=data["residuals"],
                         ops=data["ops"], differentiable=data["differentiable"])
    steps = [GraphStep(GraphAction(action), node) for action, node in data["steps"]]
    counted = replay(rebuilt, steps)
    assert (counted.forward_evals, counted.cost, counted.peak_bytes) == (
        data["forward_evals"], data["cost"], data["peak_bytes"])


def test_a_graph_plan_as_text_lists_its_steps_and_summary_does_not() -> None:
    full = run_cli("plan", *RESIDUAL, "--policy", "dtr", "--budget", "1MiB")
    summary = run_cli("plan", *RESIDUAL, "--policy", "dtr", "--budget", "1MiB", "--summary")
    assert full.returncode == summary.returncode == 0, full.stderr + summary.stderr
    head = full.stdout.splitlines()[0]
    assert head.startswith("graph plan dtr(") and "forward evaluations" in head
    assert "compute v" in full.stdout and "backward v" in full.stdout
    assert summary.stdout.splitlines()[0] == head
    assert "compute v" not in summary.stdout and "predicted peak" in summary.stdout


def test_a_chain_workload_is_planned_with_its_own_sizes() -> None:
    done = run_cli("plan", *MLP, "--policy", "optimal", "--budget-fraction", "0.8", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    workload = chain_models.build("mlp", {"n": 5, "width": 8, "batch": 2})
    profile = profile_chain(workload.chain, workload.x0, 0)
    costs = profile.costs()
    budget = int(0.8 * store_all_peak(profile))
    plan = make_plan("optimal", costs, budget_bytes=budget)
    assert data["params"]["budget_bytes"] == budget
    assert (data["family"], data["n"], data["forward_evals"]) == ("chain", 5, plan.forward_evals)
    assert [[a["action"], a["stage"], a["end"]] for a in data["actions"]] == [
        [s.action.value, s.stage, s.end] for s in plan]
    assert data["predicted_peak_bytes"] == predict_chain(plan, costs).peak <= budget


def test_plan_of_unit_stages_is_unchanged() -> None:
    done = run_cli("plan", "--policy", "revolve", "--n", "5", "--slots", "2")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == ("plan revolve(slots=2) for n=5: 15 steps, 11 forward "
                                           "evaluations, peak_stored 2")


def test_recommend_prints_the_best_plan_then_every_candidate() -> None:
    done = run_cli("recommend", *MLP, "--budget", "900", "--policies",
                   "store_all,revolve,optimal,dtr")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # progress only on a terminal
    lines = done.stdout.splitlines()
    assert lines[0].startswith("mlp (chain workload; n=5, width=8, batch=2) under 900 bytes")
    assert lines[1].startswith("best: ") and "overhead" in lines[1]
    table = lines[3:]
    assert table[0].split()[:3] == ["rank", "family", "policy"]
    assert table[2].split()[0] == "1" and " ".join(table[2].split()[1:3]) in lines[1]
    assert any("over budget: predicted peak" in line for line in table)


def test_recommend_as_json_ranks_like_the_library() -> None:
    done = run_cli("recommend", *RESIDUAL, "--budget", "300", "--json", "--policies",
                   "store_all,recompute_all,dtr,chen")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["family"] == "graph" and data["budget_bytes"] == 300
    fits = [c for c in data["candidates"] if c["fits"]]
    assert data["best"] == fits[0]
    assert [c["overhead"] for c in fits] == sorted(c["overhead"] for c in fits)
    assert all(c["peak_bytes"] <= 300 for c in fits)
    assert data["least_peak_bytes"] == min(c["peak_bytes"] for c in data["candidates"]
                                           if c["peak_bytes"] is not None)


def test_recommend_with_a_bandwidth_shows_and_ranks_by_time(capsys) -> None:
    argv = ["recommend", "--workload", "unet", "--family", "graph", "--n", "2", "--width", "8",
            "--batch", "4", "--budget", "1600", "--policies", "store_all,dtr,chen",
            "--no-progress"]
    assert cli.main([*argv, "--bandwidth", "256"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "time overhead" in lines[1] and "bandwidth 256 bytes per cost unit" in lines[1]
    head = lines[3].split("  ")
    assert "time overhead" in [cell.strip() for cell in head]
    at = lines[3].index("time overhead")
    ranked = [line for line in lines[5:] if line[0].isdigit()]
    times = [float(line[at:].split()[0]) for line in ranked]
    assert ranked and times == sorted(times) and times[0] < times[-1]
    assert cli.main([*argv, "--bandwidth", "0"]) == 0
    assert "time overhead" not in capsys.readouterr().out


def test_recommend_with_a_bandwidth_offers_the_chain_optimal_with_offload(capsys) -> None:
    argv = ["recommend", "--workload", "mlp", "--n", "5", "--width", "8", "--batch", "4",
            "--seed", "3", "--budget", "1792", "--policies", "store_all,optimal", "--json",
            "--no-progress"]
    assert cli.main([*argv, "--bandwidth", "1024"]) == 0
    data = json.loads(capsys.readouterr().out)
    chain = [c for c in data["candidates"] if (c["family"], c["policy"]) == ("chain", "optimal")]
    moved = [c for c in chain if c["params"].get("bandwidth") == 1024]
    assert len(chain) == 3 and len(moved) == 1 and moved[0]["fits"]
    assert moved[0]["time_overhead"] == 1.0 < min(c["time_overhead"] for c in chain
                                                  if c is not moved[0])


@pytest.mark.parametrize("argv, message", [
    (["recommend", *MLP, "--budget", "10", "--policies", "store_all,recompute_all"],
     "recommend: no plan of mlp fits budget 10 bytes; the least peak any plan reaches is "),
    (["recommend", "--workload", "cnn", "--budget", "1MiB"], "unknown workload 'cnn'"),
    (["recommend", "--workload", "mlp", "--budget", "0"], "argument --budget: expected a "
                                                          "positive number of bytes"),
    (["recommend", "--workload", "mlp"], "required: --budget"),
    (["recommend", "--workload", "unet", "--budget", "1MiB", "--policies", "revolve"],
     "recommend: unknown policy 'revolve'; policies for this workload: store_all"),
    (["recommend", "--workload", "mlp", "--budget", "1MiB", "--bandwidth", "-1"],
     "argument --bandwidth: expected a finite number of bytes per cost unit >= 0 (0: no "
     "offload), got '-1'"),
    (["recommend", "--workload", "mlp", "--budget", "1MiB", "--bandwidth", "nan"],
     "argument --bandwidth: expected a finite number of bytes per cost unit >= 0"),
    (["recommend", "--workload", "mlp", "--budget", "1MiB", "--bandwidth", "fast"],
     "argument --bandwidth: expected a finite number of bytes per cost unit >= 0 (0: no "
     "offload), got 'fast'"),
    (["recommend", "--workload", "mlp", "--budget", "1MiB", "--time-limit", "0"],
     "recommend: time_limit (seconds) must be a finite number > 0, got 0.0"),
    (["plan", "--workload", "unet", "--family", "chain", "--policy", "dtr"],
     "unknown chain workload 'unet'"),
    (["plan", "--workload", "unet", "--policy", "revolve"], "unknown graph policy 'revolve'"),
    (["plan", "--workload", "unet", "--policy", "store_all", "--budget", "1000"],
     "policy 'store_all' has no parameter budget_bytes"),
    (["plan", "--workload", "unet", "--policy", "dtr", "--slots", "3"],
     "policy 'dtr' has no parameter slots (accepted: bandwidth, budget_bytes, heuristic, "
     "host_budget_bytes, time_limit)"),
    (["plan", *RESIDUAL, "--policy", "optimal", "--budget", "10"],
     "policy 'optimal': budget_bytes=10 is below the minimum of"),
    (["plan", *MLP, "--policy", "optimal", "--budget", "1KiB", "--budget-fraction", "0.5"],
     "plan: --budget and --budget-fraction are two budgets; give one of them"),
    (["plan", "--workload", "unet", "--policy", "dtr", "--budget-fraction", "-1"],
     "plan: --budget-fraction must be a number in (0, 1]"),
    (["plan", "--n", "4", "--policy", "revolve", "--budget-fraction", "0.5"],
     "plan: --budget-fraction applies with --workload only"),
    (["plan", "--policy", "revolve"], "plan: give --n (a chain of n unit stages) or --workload"),
])
def test_each_mistake_is_one_line_and_status_2(capsys, argv, message) -> None:
    """Through main() in this process (a fresh interpreter each would add a second apiece; the
    other tests here run the real ``python -m checkpoint_ad``)."""
    status = cli.main(argv)
    done = capsys.readouterr()
    lines = done.err.splitlines()
    assert (status, done.out, len(lines)) == (2, "", 1), done.err
    assert lines[0].startswith("checkpoint-ad: error: ") and message in lines[0], lines[0]


def test_a_chain_plan_given_a_bandwidth_shows_its_time_and_host_peak(capsys) -> None:
    base = ["plan", "--workload", "hetero_mlp", "--policy", "optimal", "--budget", "500000",
            "--summary"]
    assert cli.main(base + ["--json"]) == 0
    alone = json.loads(capsys.readouterr().out)
    assert "time" not in alone and "host_peak_bytes" not in alone
    assert cli.main(base + ["--bandwidth", "100", "--json"]) == 0
    moved = json.loads(capsys.readouterr().out)
    assert moved["host_peak_bytes"] > 0 and moved["predicted_peak_bytes"] <= 500_000
    assert moved["counts"]["offload"] > 0 and moved["time"] > 0
    assert cli.main(base + ["--bandwidth", "100"]) == 0
    assert (f"; time {moved['time']:g} cost units; host peak {moved['host_peak_bytes']:,} bytes"
            in capsys.readouterr().out)
