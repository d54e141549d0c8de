"""Experiment specs (strict validation, grid expansion), measurement records and their files."""
from __future__ import annotations

import csv
import dataclasses
import json
import textwrap
from pathlib import Path

import pytest

from checkpoint_ad.lab import experiment as ex

from checkpoint_ad.lab import specs
from checkpoint_ad.report.headline import headline
from checkpoint_ad.chains import policies
from checkpoint_ad.workloads import chain_models
from checkpoint_ad.chains.backprop import backprop
from checkpoint_ad.chains.chain import profile_chain
from checkpoint_ad.errors import ExperimentError, PolicyError, UnknownNameError
from checkpoint_ad.lab.measure import measure_point, run_points
from checkpoint_ad.lab.points import PointTask, downsample, store_all_peak
from checkpoint_ad.records.files import RecordWriter, iter_records, read_records, write_csv
from checkpoint_ad.records.provenance import environment
from checkpoint_ad.records.schema import Record, SCHEMA_VERSION

TINY = """\
description = "tiny"
workload = "chain"
repeats = 1
seed = 4
sizes = { width = 50 }
grid = { n = [3, 6] }
detail = { n = 6 }

[[policies]]
policy = "store_all"

[[policies]]
policy = "recompute_all"
max_n = 3

[[policies]]
policy = "revolve"
sweep = { slots = [2, 3] }

[quick]
grid = { n = [3] }
detail = { n = 3 }
"""


def write_spec(folder: Path, text: str = TINY, name: str = "tiny.toml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# -- shipped experiments ---------------------------------------------------------------------------

def test_the_issue_experiments_are_shipped_and_valid() -> None:
    assert {"fig69", "mlp_depth", "revolve_slots", "hetero_budget", "rnn_bptt"} <= set(specs.experiment_names())
    for name in specs.experiment_names():
        full, quick = specs.load_experiment(name), specs.load_experiment(name, quick=True)
        assert full.description and full.name == name
        assert 0 < len(quick.tasks()) <= len(full.tasks())
        assert any(task.detail for task in quick.tasks())


def test_fig69_sweeps_4_to_1024_with_recompute_all_capped() -> None:
    fig69 = specs.load_experiment("fig69")
    assert fig69.workload == "chain"
    assert min(fig69.grid["n"]) == 4 and max(fig69.grid["n"]) == 1024
    tasks = fig69.tasks()
    assert {t.policy for t in tasks} == {"store_all", "recompute_all", "sqrt_n", "revolve"}
    assert max(t.sizes["n"] for t in tasks if t.policy == "recompute_all") <= 256
    assert max(t.sizes["n"] for t in tasks if t.policy == "revolve") == 1024


def test_hetero_budget_compares_optimal_with_revolve_and_sqrt_n() -> None:
    spec = specs.load_experiment("hetero_budget")
    assert spec.workload == "hetero_mlp"
    by_policy = {e.policy: e for e in spec.policies}
    assert {"optimal", "revolve", "sqrt_n", "store_all", "recompute_all"} <= set(by_policy)
    assert len(by_policy["optimal"].configurations()) >= 5


def test_rnn_bptt_sweeps_1000_steps_and_its_quick_grid_runs_to_a_headline() -> None:
    full = specs.load_experiment("rnn_bptt")
    assert full.workload == "rnn" and {t.sizes["n"] for t in full.tasks()} == {1000}
    assert {"store_all", "sqrt_n", "revolve", "optimal"} == {p.policy for p in full.policies}
    assert len({t.params["slots"] for t in full.tasks() if t.policy == "revolve"}) >= 3
    quick = specs.load_experiment("rnn_bptt", quick=True)
    records = ex.run_tasks(quick.tasks(), isolate=False)
    assert len(records) == len(quick.tasks()) == 10
    assert all(r.max_grad_diff == 0 and r.predicted_peak_bytes == r.peak_bytes
               for r in records)
    sentences = headline(records)
    claim = next(s for s in sentences if s.startswith("Gruslys et al. (2016) report 5%"))
    assert "on 100 steps here, the measured front gives" in claim


def test_unknown_experiment_lists_the_known_ones() -> None:
    with pytest.raises(UnknownNameError, match="fig69"):
        specs.load_experiment("fig70")


# -- validation ------------------------------------------------------------------------------------

PARTS = """\
family = "graph"
workloads = ["unet"]
repeats = 2
sizes = { n = 2, width = 8, batch = 4 }
policies = [{ policy = "store_all" }]
[[parts]]
workload = "chain"
sizes = { n = 4, width = 8 }
policies = [{ policy = "revolve", sweep = { slots = [2, 3] } }]
[parts.quick]
policies = [{ policy = "store_all" }]
"""


def test_parts_add_another_familys_points_under_the_experiments_name(tmp_path: Path) -> None:
    experiment = specs.load_experiment(str(write_spec(tmp_path, PARTS)))
    tasks = experiment.tasks()
    assert [(t.family, t.workload, t.policy) for t in tasks] == [
        ("graph", "unet", "store_all"), ("chain", "chain", "revolve"),
        ("chain", "chain", "revolve")]
    assert {t.experiment for t in tasks} == {experiment.name} and {t.repeats for t in tasks} == {2}
    quick = specs.load_experiment(str(write_spec(tmp_path, PARTS)), quick=True)
    assert [(t.family, t.policy) for t in quick.tasks()] == [("graph", "store_all"),
                                                            ("chain", "store_all")]


@pytest.mark.parametrize("old, new, message", [
    ('workload = "chain"\n', 'workload = "chain"\nname = "other"\n',
     r"parts\[0\]: name is the whole experiment's; a part may not set it"),
    ('policy = "revolve"', 'policy = "rewind"',
     r"parts\[0\]: policies\[0\]: unknown policy 'rewind'"),
])
def test_a_part_is_checked_like_an_experiment(tmp_path: Path, old: str, new: str,
                                              message: str) -> None:
    path = write_spec(tmp_path, PARTS.replace(old, new))
    with pytest.raises(ExperimentError, match=message) as caught:
        specs.load_experiment(str(path))
    assert str(caught.value).startswith(f"{path}: parts[0]: ")

@pytest.mark.parametrize("change, message", [
    ('repeat = 3\n', "unknown key repeat in the experiment"),
    ('repeats = "3"\n', "repeats must be an integer, got str"),
    ('[[policies]]\npolicy = "revolve"\nslots = 3\n', r"unknown key slots in policies\[3\]"),
    ('[[policies]]\npolicy = "revolve"\nparams = { slot = 3 }\n', "has no parameter 'slot'"),
    ('[[policies]]\npolicy = "revolve"\nparams = { slots = 2.5 }\n', "slots must be an integer"),
    ('[[policies]]\npolicy = "revolve"\nsweep = { slots = [] }\n', "non-empty array"),
    ('[[policies]]\npolicy = "rewind"\n', "unknown policy 'rewind'"),
    ('[[policies]]\npolicy = "revolve"\nparams = { budget_fraction = 0.5 }\n',
     "has no parameter 'budget_fraction'"),
])
def test_spec_errors_name_the_file_and_the_problem(tmp_path: Path, change: str,
                                                   message: str) -> None:
    text = (TINY.replace("repeats = 1\n", change) if not change.startswith("[[")
            else TINY.replace("[quick]", change + "\n[quick]"))
    path = write_spec(tmp_path, text)
    with pytest.raises(ExperimentError, match=message) as caught:
        specs.load_experiment(str(path))
    assert str(caught.value).startswith(str(path))


@pytest.mark.parametrize("text, message", [
    ('workload = "chain"\n', "missing policies"),
    ('workload = "cnn"\npolicies = [{ policy = "store_all" }]\n', "unknown workload 'cnn'"),
    ('workload = "chain"\nsizes = { depth = 3 }\npolicies = [{ policy = "store_all" }]\n',
     "no size depth"),
    ('workload = "chain"\ngrid = { n = 4 }\npolicies = [{ policy = "store_all" }]\n',
     "grid: n must be a non-empty array"),
    ('workload = "chain"\ngrid = { n = [4] }\ndetail = { n = 5 }\n'
     'policies = [{ policy = "store_all" }]\n', "matches no grid point"),
    ('workload = "chain"\ngrid = { n = [4, 8] }\n'
     'policies = [{ policy = "store_all", max_n = 2 }]\n', "no points to run"),
    ('workload = "chain"\ncosts = "flops"\npolicies = [{ policy = "store_all" }]\n', "costs"),
    ('workload = "chain"\ndtype = "int8"\npolicies = [{ policy = "store_all" }]\n', "float"),
    ('workload = "chain"\npolicies = [{ policy = "store_all" }]\n[quick]\nname = "x"\n',
     "unknown key name in quick"),
    ('workload = "chain"\npolicies = [{ policy = "store_all" }\n', "not valid TOML"),
])
def test_more_spec_errors(tmp_path: Path, text: str, message: str) -> None:
    path = write_spec(tmp_path, text, "bad.toml")
    with pytest.raises(ExperimentError, match=message):
        specs.load_experiment(str(path), quick=True)


def test_grid_expansion_sweeps_caps_and_detail(tmp_path: Path) -> None:
    spec = specs.load_experiment(str(write_spec(tmp_path)))
    labels = [(t.sizes["n"], t.policy, t.params) for t in spec.tasks()]
    assert labels == [(3, "store_all", {}), (3, "recompute_all", {}),
                      (3, "revolve", {"slots": 2}), (3, "revolve", {"slots": 3}),
                      (6, "store_all", {}), (6, "revolve", {"slots": 2}),
                      (6, "revolve", {"slots": 3})]
    detailed = [(t.sizes["n"], t.policy, t.params) for t in spec.tasks() if t.detail]
    assert detailed == [(6, "store_all", {}), (6, "revolve", {"slots": 2})]
    quick = specs.load_experiment(str(write_spec(tmp_path)), quick=True)
    assert {t.sizes["n"] for t in quick.tasks()} == {3}


# -- measurement -----------------------------------------------------------------------------------

def test_a_point_matches_backprop_and_store_all(tmp_path: Path) -> None:
    task = PointTask("unit", "mlp", {"n": 6, "width": 8, "batch": 4}, "revolve", {"slots": 3},
                     seed=5, repeats=2, detail=True, environment=environment())
    record = measure_point(task)
    workload = chain_models.build("mlp", task.sizes, seed=5)
    result = backprop(workload.chain, workload.x0, policy="revolve", seed=5, slots=3)
    stats = result.stats
    assert (record.forward_evals, record.peak_stored, record.peak_bytes,
            record.predicted_peak_bytes) == (stats.forward_evals, stats.peak_stored,
                                             stats.peak_bytes, stats.predicted_peak_bytes)
    assert record.forward_cost == stats.forward_evals  # uniform chain: unit costs
    assert record.parameter_bytes == stats.parameter_bytes > 0
    assert record.max_grad_diff == 0.0
    assert record.loss == float(result.value)
    assert record.measured_peak_bytes >= record.predicted_peak_bytes
    assert record.wall_s_min <= record.wall_s_median <= record.wall_s_max and record.repeats == 2
    assert record.params == {"slots": 3} and record.plan_params == {"slots": 3}
    assert record.schedule == [[s.action.value, s.stage, s.end] for s in result.plan]
    assert 0 < record.forward_events < record.timeline[-1][0]
    assert max(b for _, b in record.timeline) == record.peak_bytes
    assert record.machine["cpu_count"] and record.package_version
    assert record.schema_version == SCHEMA_VERSION


def test_budget_fraction_becomes_budget_bytes() -> None:
    if "optimal" not in policies.names():
        pytest.skip("the optimal policy is not registered")
    sizes = {"n": 8, "batch": 2, "wide": 16, "narrow": 4, "period": 3}
    record = measure_point(PointTask("unit", "hetero_mlp", sizes, "optimal",
                                     {"budget_fraction": 0.8}, repeats=1))
    workload = chain_models.build("hetero_mlp", sizes)
    expected = int(0.8 * store_all_peak(profile_chain(workload.chain, workload.x0, 0)))
    assert record.params == {"budget_bytes": expected}
    assert record.max_grad_diff == 0.0
    recompute = measure_point(PointTask("unit", "hetero_mlp", sizes, "recompute_all", {},
                                        repeats=1))
    units = [u / (sum(workload.stage_costs) / 8) for u in workload.stage_costs]
    expected_cost = sum((8 - t) * u for t, u in enumerate(units))  # stage t+1 runs 8-t times
    assert recompute.forward_cost == pytest.approx(expected_cost) != recompute.forward_evals
    with pytest.raises(PolicyError, match="budget_fraction"):
        measure_point(PointTask("unit", "chain", {"n": 3}, "revolve", {"budget_fraction": 0.5}))


def test_downsample_keeps_the_peak_and_the_limit() -> None:
    timeline = [(i, (i * 7919) % 1000) for i in range(1, 10001)]
    timeline[4321] = (4322, 5000)
    kept = downsample(timeline, 500)
    assert len(kept) <= 500 and [4322, 5000] in kept
    assert kept == sorted(kept) and downsample(timeline[:10], 500) == [list(p) for p in
                                                                      timeline[:10]]


def test_points_run_isolated_in_fresh_processes() -> None:
    tasks = [PointTask("iso", "chain", {"n": 4, "width": 20}, policy, {}, repeats=1)
             for policy in ("store_all", "recompute_all")]
    isolated = list(run_points(tasks, isolate=True))
    inline = list(run_points(tasks, isolate=False))
    for a, b in zip(isolated, inline):
        assert (a.forward_evals, a.peak_bytes, a.loss) == (b.forward_evals, b.peak_bytes, b.loss)
    assert isolated[0].machine["threads"]  # the workers run single-threaded BLAS


def test_run_experiment_writes_jsonl_and_csv(tmp_path: Path) -> None:
    spec = specs.load_experiment(str(write_spec(tmp_path)))
    records = ex.run_experiment(spec, tmp_path / "out", isolate=False)
    lines = (tmp_path / "out" / "records.jsonl").read_text().splitlines()
    assert len(lines) == len(records) == len(spec.tasks())
    data = json.loads(lines[0])
    for field in ("schema_version", "experiment", "workload", "sizes", "policy", "params",
                  "seed", "package_version", "git_commit", "machine", "forward_evals",
                  "peak_stored", "peak_bytes", "predicted_peak_bytes", "measured_peak_bytes",
                  "rss_peak_increase_bytes", "wall_s_median", "max_grad_diff"):
        assert field in data
    assert data["experiment"] == "tiny" and data["seed"] == 4
    assert all(r.max_grad_diff == 0.0 and r.predicted_peak_bytes == r.peak_bytes
               for r in records)
    rows = list(csv.DictReader(open(tmp_path / "out" / "records.csv")))
    assert len(rows) == len(records) and json.loads(rows[0]["params"]) == records[0].params
    assert "timeline" not in rows[0]
    assert read_records([tmp_path / "out"]) == records


def test_an_interrupted_sweep_keeps_completed_records(tmp_path: Path) -> None:
    spec = specs.load_experiment(str(write_spec(tmp_path)))

    def stop_after_two(done: int, total: int, following: PointTask, record: Record | None
                       ) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ex.run_experiment(spec, tmp_path, stop_after_two, isolate=False)
    assert len(list(iter_records(tmp_path / "records.jsonl"))) == 2


# -- record files ----------------------------------------------------------------------------------

def _record(**changes: object) -> Record:
    fields = dict(experiment="e", workload="chain", sizes={"n": 2}, policy="store_all",
                  params={}, plan_params={}, seed=0, dtype="float64", costs="model", repeats=1,
                  forward_evals=2, peak_stored=2, forward_cost=2.0, peak_bytes=10,
                  peak_bytes_by_kind={"tape": 10}, predicted_peak_bytes=10,
                  measured_peak_bytes=12, rss_peak_increase_bytes=0,
                  rss_high_water_increase_bytes=None, parameter_bytes=0,
                  parameter_gradient_bytes=0, wall_s_median=0.1, wall_s_min=0.1,
                  wall_s_max=0.1, max_grad_diff=0.0, loss=1.0)
    fields.update(changes)
    return Record(**fields)


def test_records_round_trip_and_reject_malformed_lines(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    with RecordWriter(path) as writer:
        writer.write(_record())
        writer.write(_record(policy="revolve", params={"slots": 2}))
    assert [r.label for r in iter_records(path)] == ["store_all", "revolve(slots=2)"]
    with open(path, "a") as handle:
        handle.write('{"schema_version": 99}\n')
    with pytest.raises(ExperimentError, match=r"r.jsonl:3: schema_version 99"):
        list(iter_records(path))
    data = _record().to_dict()
    del data["peak_bytes"]
    data["colour"] = 1
    path.write_text(json.dumps(data) + "\nnot json\n")
    with pytest.raises(ExperimentError, match="missing fields peak_bytes"):
        list(iter_records(path))
    with pytest.raises(ExperimentError, match="no such results"):
        read_records([tmp_path / "absent.jsonl"])


def test_csv_export_flattens_dicts(tmp_path: Path) -> None:
    write_csv(tmp_path / "r.csv", [_record(params={"slots": 3}, timeline=[[1, 2]])])
    row = next(csv.DictReader(open(tmp_path / "r.csv")))
    assert json.loads(row["params"]) == {"slots": 3} and "timeline" not in row


def test_a_budget_sweep_plans_once_and_its_workers_run_the_preflight_plans(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Preflight reads every budget of the sweep from one optimal table; each point's worker
    (here in this process) runs the plan made there and plans nothing itself."""
    from checkpoint_ad.chains import backprop as backprop_module
    from checkpoint_ad.chains.policies import optimal_table as optimal
    optimal.clear_cache()
    solved: list[int] = []
    original = optimal.solve
    monkeypatch.setattr(optimal, "solve", lambda problem: solved.append(1) or original(problem))
    spec = specs.load_experiment("hetero_budget", quick=True)
    sweep = ex.prepare_sweep(spec, tmp_path / "out")
    budgets = [check for check in sweep.checks if check.task.policy == "optimal"]
    assert len(budgets) >= 4 and len(solved) == 1  # the tapes=True table, once
    optimal.clear_cache()

    make_plan = backprop_module.policies.make_plan

    def no_planning(policy, *args, **kwargs):  # the store_all reference still plans
        assert policy != "optimal", "a worker planned again"
        return make_plan(policy, *args, **kwargs)

    monkeypatch.setattr(backprop_module.policies, "make_plan", no_planning)
    for check in budgets:
        task = check.task
        record = measure_point(dataclasses.replace(task, repeats=1))
        assert record.forward_evals == task.plan.forward_evals
        assert record.plan_params == {k: v for k, v in task.plan.params}
