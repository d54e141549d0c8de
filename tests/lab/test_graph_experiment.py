"""Graph workloads in the experiment machinery: specs with ``family = "graph"``, graph records,
sweeps that resume and survive damage like chain sweeps, the graph report, and ``compare`` on
graph workloads. The shipped ``graph_budget`` experiment's quick grid runs here in full."""
from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path

import pytest

from checkpoint_ad import plotting
from checkpoint_ad.cli import main as cli
from checkpoint_ad.errors import ExperimentError
from checkpoint_ad.graphs.policies import plan_graph
from checkpoint_ad.lab import experiment as ex
from checkpoint_ad.lab import specs
from checkpoint_ad.lab.graph_measure import store_all_peak, trace_task
from checkpoint_ad.records.files import scan_records, scan_results
from checkpoint_ad.report import graphs as graph_report
from checkpoint_ad.report.markdown import build_report
from checkpoint_ad.records.schema import Record
from helpers import draw_small

TINY_GRAPHS = """\
family = "graph"
workloads = ["residual", "unet"]
repeats = 1
sizes = { width = 8, batch = 4, residual = { n = 2 }, unet = { n = 2 } }
[[policies]]
policy = "store_all"
[[policies]]
policy = "optimal"
sweep = { budget_fraction = [0.8, 1.0] }
[[policies]]
policy = "dtr"
sweep = { budget_fraction = [0.05, 0.9] }
"""


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Record], Path]:
    """TINY_GRAPHS measured once for the tests that read its records or damage a copy."""
    folder = tmp_path_factory.mktemp("tiny_graphs")
    return ex.run_experiment(load(folder), folder / "out", isolate=False), folder / "out"


def copied_run(tiny_run: tuple[list[Record], Path], tmp_path: Path) -> list[Record]:
    """The records of :func:`tiny_run`, its output folder copied to ``tmp_path / "out"``."""
    records, out = tiny_run
    shutil.copytree(out, tmp_path / "out")
    return records


def load(tmp_path: Path, text: str = TINY_GRAPHS) -> specs.Experiment:
    (tmp_path / "graphs.toml").write_text(text)
    return specs.load_experiment(str(tmp_path / "graphs.toml"))


@pytest.fixture(scope="module")
def quick_records(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Record], Path]:
    """The shipped graph_budget experiment's quick grid, measured in-process."""
    return quick_run("graph_budget", tmp_path_factory)


def quick_run(name: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Record], Path]:
    """A shipped experiment's quick grid measured in-process, and its report, in a fresh
    folder: (records, folder)."""
    out = tmp_path_factory.mktemp(name)
    records = ex.run_experiment(specs.load_experiment(name, quick=True), out, isolate=False)
    with pytest.MonkeyPatch.context() as patch:  # what the report holds, not its pixels
        patch.setattr(graph_report, "save_png", draw_small)
        patch.setattr(plotting, "save_png", draw_small)
        build_report(records, out, [out / "records.jsonl"])
    return records, out


def test_the_quick_grid_measures_every_planner_soundly(quick_records) -> None:
    records, _ = quick_records
    assert {r.workload for r in records} == {"residual", "unet", "transformer"}
    assert {r.policy for r in records} >= {"store_all", "optimal", "checkmate", "dtr", "chen"}
    for record in records:
        assert record.family == "graph" and record.max_grad_diff == 0.0, record.label
        assert record.predicted_peak_bytes == record.peak_bytes, record.label
        if record.budget_bytes is not None:
            assert record.peak_bytes <= record.budget_bytes, record.label
        assert record.store_all_cost <= record.forward_cost, record.label
        assert record.lower_bound is not None and record.lower_bound <= record.forward_cost
    for record in records:  # where optimal proved its plan, nothing at its budget is cheaper
        if record.policy == "optimal" and record.status == "optimal":
            rivals = [r for r in records if r.workload == record.workload
                      and r.budget_bytes == record.budget_bytes]
            assert record.forward_cost == min(r.forward_cost for r in rivals)


def test_the_quick_grid_report_draws_the_graph_figures(quick_records) -> None:
    records, out = quick_records
    text = (out / "report.md").read_text()
    for workload in ("residual", "unet", "transformer"):
        for kind in ("overhead", "plan_matrices", "plan_graph"):
            found = list(out.glob(f"{kind}_{workload}_*.png"))
            assert len(found) == 1, (kind, workload)
            assert f"({found[0].name})" in text
    assert "cost/store_all" in text and "lower bound" in text and "| status |" in text
    assert "lower bounds above their record's cost: 0" in text


def test_budget_fraction_is_a_fraction_of_store_alls_peak(tmp_path: Path) -> None:
    experiment = load(tmp_path)
    sweep = ex.prepare_sweep(experiment, tmp_path / "out")
    for check in sweep.checks:
        if "budget_fraction" in check.task.params:
            traced = trace_task(check.task)[1]
            peak = store_all_peak(traced.program.costs)
            assert check.params["budget_bytes"] == int(check.task.params["budget_fraction"]
                                                        * peak)
    sweep.close()


def test_a_planner_without_a_plan_is_left_out_with_a_note(tmp_path: Path) -> None:
    sweep = ex.prepare_sweep(load(tmp_path), tmp_path / "out")
    sweep.close()
    notes = [note for note in sweep.notes if note.startswith("no plan, left out")]
    assert len(notes) == 2 and all("dtr" in note and "too small" in note for note in notes)
    assert len(sweep.checks) == 2 * 4  # store_all, optimal x2, dtr at 0.9, per workload


def test_a_graph_sweep_resumes_like_a_chain_sweep(tiny_run, tmp_path: Path, monkeypatch) -> None:
    experiment = load(tmp_path)
    first = copied_run(tiny_run, tmp_path)
    path = tmp_path / "out" / "records.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:2] + lines[3:-1]) + lines[-1][:40])  # one lost, one cut
    sweep = ex.prepare_sweep(experiment, tmp_path / "out", mode="resume")
    assert [check.identity for check in sweep.pending] == [first[2].identity, first[-1].identity]
    assert any("cutting off a truncated last line" in note for note in sweep.notes)
    again = ex.run_sweep(sweep, isolate=False)
    assert [r.identity for r in again] == [r.identity for r in first]
    assert scan_records(path).bad == [] and len(scan_records(path).records) == len(first)

    def must_not_run(*args, **kwargs):
        raise AssertionError("a recorded point ran again")

    monkeypatch.setattr(ex, "run_points", must_not_run)
    done = ex.run_experiment(experiment, tmp_path / "out", mode="resume", isolate=False)
    assert [r.identity for r in done] == [r.identity for r in first]


def test_a_damaged_graph_record_is_skipped_by_report_and_refused_by_resume(tiny_run,
                                                                          tmp_path) -> None:
    experiment = load(tmp_path)
    copied_run(tiny_run, tmp_path)
    path = tmp_path / "out" / "records.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    damaged = json.loads(lines[1])
    damaged["graph_steps"] = [["teleport", 0]] if damaged["graph_steps"] else [["compute", -1]]
    path.write_text("".join(lines[:1] + [json.dumps(damaged) + "\n"] + lines[2:]))
    records, bad = scan_results([path])
    assert len(records) == len(lines) - 1 and len(bad) == 1 and bad[0].number == 2
    assert "graph_steps" in str(bad[0])
    build_report(records, tmp_path / "report")
    with pytest.raises(ExperimentError, match="--resume repairs only a truncated last line"):
        ex.prepare_sweep(experiment, tmp_path / "out", mode="resume")


def test_graph_and_chain_records_of_one_name_have_different_identities(tiny_run) -> None:
    records, _ = tiny_run
    graph = records[0]
    chain = dataclasses.replace(graph, family="chain")
    assert graph.identity != chain.identity


def test_graph_records_are_validated_field_by_field(tiny_run) -> None:
    record = tiny_run[0][1]
    data = record.to_dict()
    assert Record.problem(data) is None and "n" in data["sizes"]
    without_n = {**data, "sizes": {k: v for k, v in data["sizes"].items() if k != "n"}}
    assert Record.problem(without_n) is None  # graph workloads need not have n
    assert "n" in Record.problem({**without_n, "family": "chain"})
    assert "needs ops" in Record.problem({**data, "ops": None})
    assert "family" in Record.problem({**data, "family": "tree"})
    assert "parents of node" in Record.problem(
        {**data, "graph": {"parents": [[], [5]], "ops": [None, "x"]}, "graph_steps": None})


@pytest.mark.parametrize("change, message", [
    ('family = "tree"', "family must be one of chain, graph"),
    ('family = "chain"', "workloads (several) is for graph experiments"),
    ('workload = "unet"', "give the workload (one name) or workloads"),
    ('costs = "measure"', "costs must be one of model, unit for graph workloads"),
])
def test_graph_spec_mistakes_are_named(tmp_path: Path, change: str, message: str) -> None:
    text = TINY_GRAPHS.replace('family = "graph"', change) if change.startswith("family") \
        else change + "\n" + TINY_GRAPHS
    with pytest.raises(ExperimentError, match=re.escape(message)):
        load(tmp_path, text)


def test_graph_spec_names_workloads_policies_and_size_tables(tmp_path: Path) -> None:
    with pytest.raises(ExperimentError, match="unknown graph workload 'mlp'"):
        load(tmp_path, TINY_GRAPHS.replace('"unet"]', '"mlp"]'))
    with pytest.raises(ExperimentError, match="unknown graph policy 'revolve'"):
        load(tmp_path, TINY_GRAPHS.replace('policy = "dtr"', 'policy = "revolve"'))
    with pytest.raises(ExperimentError, match="'densenet' is not one of this experiment's"):
        load(tmp_path, TINY_GRAPHS.replace("unet = { n = 2 }", "densenet = { n = 2 }"))
    experiment = load(tmp_path)
    assert [t.sizes["n"] for t in experiment.tasks()] == [2] * len(experiment.tasks())


def test_compare_runs_graph_policies_under_one_budget(capsys) -> None:
    status = cli.main(["compare", "--workload", "unet", "--n", "2", "--width", "8", "--batch",
                       "4", "--repeats", "1", "--no-progress", "--budget", "1700",
                       "--policies", "store_all,optimal,dtr", "--json"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    records = [Record.from_dict(data) for data in json.loads(captured.out)]
    assert [r.policy for r in records] == ["store_all", "optimal", "dtr"]
    assert [r.budget_bytes for r in records] == [None, 1700, 1700]  # store_all peaks at 2,048
    assert all(r.family == "graph" and r.peak_bytes <= 1700 for r in records[1:])


def test_compare_budget_must_apply_to_some_policy(capsys) -> None:
    status = cli.main(["compare", "--workload", "unet", "--budget", "1MiB",
                       "--policies", "store_all,recompute_all", "--no-progress"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1
    assert "--budget applies to no policy of --policies" in err


def test_compare_family_graph_picks_the_graph_workload_of_a_shared_name(capsys) -> None:
    status = cli.main(["compare", "--workload", "residual", "--family", "graph", "--n", "2",
                       "--width", "8", "--batch", "4", "--repeats", "1", "--no-progress",
                       "--policies", "store_all", "--json"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    (record,) = json.loads(captured.out)
    assert record["family"] == "graph" and record["ops"] == 10
    status = cli.main(["compare", "--workload", "mlp", "--family", "graph"])
    assert status == 2 and "unknown graph workload 'mlp'" in capsys.readouterr().err


def test_a_preflight_plan_is_the_plan_that_runs(tmp_path: Path) -> None:
    sweep = ex.prepare_sweep(load(tmp_path), tmp_path / "out")
    records = ex.run_sweep(sweep, isolate=False)
    for check, record in zip(sweep.checks, records):
        plan = check.task.plan
        assert (record.forward_evals, record.peak_bytes) == (plan.forward_evals, plan.peak_bytes)
        assert record.solve_s == plan.solve_s
        again = plan_graph(check.task.policy, trace_task(check.task)[1].program.costs,
                           **check.params)
        assert again.steps == plan.steps  # the planners are deterministic


GRAPH_SPEC_MISTAKES = {
    'family = "tree"\nworkload = "unet"': "family must be one of chain, graph, got 'tree'",
    'workloads = ["unet"]': "workloads (several) is for graph experiments",
    'family = "graph"\nworkload = "unet"\nworkloads = ["unet"]':
        "give the workload (one name) or workloads (an array of names), one of them",
    'family = "graph"\nworkloads = ["unet"]\nsizes = { residual = { n = 2 } }':
        "sizes: residual = {...} sizes one workload, but 'residual' is not one of this "
        "experiment's (unet)",
    'family = "graph"\nworkloads = ["unet"]\ncosts = "measure"':
        "costs must be one of model, unit for graph workloads, got 'measure'",
}


@pytest.mark.parametrize("head", list(GRAPH_SPEC_MISTAKES))
def test_graph_spec_mistakes_are_refused_writing_nothing(capsys, tmp_path, head) -> None:
    (tmp_path / "bad.toml").write_text(head + '\npolicies = [{ policy = "store_all" }]\n')
    status = cli.main(["run", str(tmp_path / "bad.toml"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and GRAPH_SPEC_MISTAKES[head] in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("policies, message", [
    ('[{ policy = "revolve" }]', "unknown graph policy 'revolve'; known graph policies: "),
    ('[{ policy = "dtr", params = { budget_fraction = 0.01 } }]',
     "no point has a plan; "),
])
def test_a_graph_sweep_without_plans_is_refused(capsys, tmp_path, policies, message) -> None:
    (tmp_path / "bad.toml").write_text(f'family = "graph"\nworkloads = ["unet"]\n'
                                       f'policies = {policies}\n')
    status = cli.main(["run", str(tmp_path / "bad.toml"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "out").exists()
