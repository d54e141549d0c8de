"""Nothing is lost: a sweep killed at any moment keeps every completed record and no partial
line, and ``checkpoint-ad run --resume`` finishes it with the records an uninterrupted run
gives (timings and probed bytes apart). The first tests kill a real ``checkpoint-ad run``
subprocess; the others check the pieces in-process."""
from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import checkpoint_ad
from checkpoint_ad.cli import main as cli
from checkpoint_ad.lab import experiment as ex
from checkpoint_ad.lab import specs
from checkpoint_ad.records import files as records_module
from checkpoint_ad.report import markdown
from checkpoint_ad.records.files import RecordWriter, interrupts_deferred, scan_records
from helpers import TINY_EXPERIMENT

# Six points of about 0.2 s each (a fresh worker process per point), one with a timeline.
SWEEP = """\
workload = "chain"
repeats = 1
seed = 3
sizes = { width = 40 }
grid = { n = [3, 5, 7] }
detail = { n = 7 }
policies = [{ policy = "store_all" }, { policy = "revolve", params = { slots = 2 } }]
"""
POINTS = 6
SAME = ("forward_evals", "peak_stored", "peak_bytes", "predicted_peak_bytes", "max_grad_diff",
        "peak_bytes_by_kind", "forward_cost", "loss", "params", "plan_params", "schedule")
REPO = Path(checkpoint_ad.__file__).resolve().parent.parent
WAIT_S = 90


def start(tmp_path: Path, name: str, *extra: str) -> tuple[subprocess.Popen, Path]:
    """``python -m checkpoint_ad run sweep.toml --out NAME --no-progress EXTRA`` in its own
    process group, stdout and stderr to files (a pipe could be held open by a worker)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
    command = [sys.executable, "-m", "checkpoint_ad", "run", "sweep.toml", "--out", name,
               "--no-progress", *extra]
    with open(tmp_path / f"{name}.out", "ab") as out, open(tmp_path / f"{name}.err", "ab") as err:
        process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=out, stderr=err,
                                   start_new_session=True)
    return process, tmp_path / name / "records.jsonl"


def complete_lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def wait_for_lines(process: subprocess.Popen, path: Path, count: int) -> None:
    deadline = time.monotonic() + WAIT_S
    while complete_lines(path) < count:
        assert process.poll() is None, "the run ended before it could be interrupted"
        assert time.monotonic() < deadline, "no records appeared in time"
        time.sleep(0.005)


def finish(process: subprocess.Popen) -> int:
    try:
        return process.wait(WAIT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


def lines_of(path: Path) -> list[dict]:
    """Every line of a records file, each required to be a whole JSON object."""
    data = path.read_bytes()
    assert data.endswith(b"\n"), "a partial last line"
    return [json.loads(line) for line in data.decode().splitlines()]


def identity(record: dict) -> tuple:
    return (record["experiment"], record["workload"], json.dumps(record["sizes"], sort_keys=True),
            record["policy"], json.dumps(record["params"], sort_keys=True), record["seed"],
            record["dtype"], record["costs"], record["repeats"])


def assert_same_records(resumed: Path, reference: Path) -> None:
    ours, theirs = lines_of(resumed), lines_of(reference)
    assert len(theirs) == POINTS
    assert len({identity(r) for r in ours}) == len(ours), "a point was recorded twice"
    assert {identity(r) for r in ours} == {identity(r) for r in theirs}
    by_identity = {identity(r): r for r in theirs}
    for record in ours:
        expected = by_identity[identity(record)]
        assert {k: record[k] for k in SAME} == {k: expected[k] for k in SAME}, identity(record)
        assert (record["timeline"] is None) == (expected["timeline"] is None)
    assert sum(r["timeline"] is not None for r in ours) == 2  # both policies at n = 7


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    (tmp_path / "sweep.toml").write_text(SWEEP)
    return tmp_path


def test_sigkill_mid_sweep_then_resume_equals_an_uninterrupted_run(sweep: Path) -> None:
    reference, reference_records = start(sweep, "reference")  # runs meanwhile, on the other core
    victim, records = start(sweep, "victim")
    wait_for_lines(victim, records, 2)
    victim.send_signal(signal.SIGKILL)
    assert finish(victim) == -signal.SIGKILL
    data = records.read_bytes()
    complete = data[:data.rfind(b"\n") + 1]
    kept = [json.loads(line) for line in complete.decode().splitlines()]
    assert 2 <= len(kept) < POINTS
    if complete == data:  # what a SIGKILL in the middle of an append leaves (Linux stops a
        with open(records, "ab") as handle:  # write between pages): half a line, no newline
            handle.write(json.dumps(kept[0]).encode()[:150])
    resumed, _ = start(sweep, "victim", "--resume")
    assert finish(resumed) == 0, (sweep / "victim.err").read_text()
    err = (sweep / "victim.err").read_text()
    assert err.splitlines() == [
        f"checkpoint-ad: warning: victim/records.jsonl:{len(kept) + 1}: cutting off a truncated "
        f"last line (left by an interrupted write); {len(kept)} complete record(s) kept"]
    out = (sweep / "victim.out").read_text()
    assert f"{POINTS} records ({len(kept)} already recorded, {POINTS - len(kept)} run now)" in out
    assert finish(reference) == 0, (sweep / "reference.err").read_text()
    assert_same_records(records, reference_records)
    assert lines_of(records)[:len(kept)] == kept  # the kept records were not rewritten
    assert (sweep / "victim" / "report.md").exists()


def test_ctrl_c_mid_sweep_says_how_to_resume_and_exits_130(sweep: Path) -> None:
    victim, records = start(sweep, "victim")
    wait_for_lines(victim, records, 1)
    os.killpg(victim.pid, signal.SIGINT)  # as Ctrl-C does: the run and its workers
    assert finish(victim) == 130
    kept = lines_of(records)
    assert 1 <= len(kept) < POINTS
    assert (sweep / "victim.err").read_text().splitlines() == [
        f"checkpoint-ad: interrupted: {len(kept)} of {POINTS} points recorded in "
        f"victim/records.jsonl; continue with: checkpoint-ad run sweep.toml --out victim "
        f"--resume"]
    resumed, _ = start(sweep, "victim", "--resume")
    assert finish(resumed) == 0, (sweep / "victim.err").read_text()
    assert len(lines_of(records)) == POINTS
    assert len({identity(r) for r in lines_of(records)}) == POINTS


# -- in-process ------------------------------------------------------------------------------------

MIXED = """\
workload = "hetero_mlp"
repeats = 1
sizes = { batch = 2, wide = 16, narrow = 4, period = 3 }
grid = { n = [4, 6] }
policies = [{ policy = "store_all" },
            { policy = "optimal", sweep = { budget_fraction = [0.9, 1.0] } }]
"""


def load(tmp_path: Path, text: str = MIXED) -> specs.Experiment:
    (tmp_path / "mixed.toml").write_text(text)
    return specs.load_experiment(str(tmp_path / "mixed.toml"))


def test_resume_skips_recorded_points_by_identity(tmp_path: Path, monkeypatch) -> None:
    """budget_fraction is recorded as budget_bytes: the identity is the resolved one."""
    experiment = load(tmp_path)
    first = ex.run_experiment(experiment, tmp_path / "out", isolate=False)
    assert {r.params.keys() == {"budget_bytes"} for r in first if r.policy == "optimal"} == {True}
    path = tmp_path / "out" / "records.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:2] + lines[3:]))  # the third point was never recorded
    sweep = ex.prepare_sweep(experiment, tmp_path / "out", mode="resume")
    assert [check.identity for check in sweep.pending] == [first[2].identity]
    again = ex.run_sweep(sweep, isolate=False)
    assert [r.identity for r in again] == [r.identity for r in first]  # the experiment's order
    assert len(path.read_text().splitlines()) == len(first)

    def must_not_run(*args, **kwargs):
        raise AssertionError("a recorded point ran again")

    monkeypatch.setattr(ex, "run_points", must_not_run)
    done = ex.run_experiment(experiment, tmp_path / "out", mode="resume", isolate=False)
    assert [r.identity for r in done] == [r.identity for r in first]


def test_resume_keeps_an_unterminated_but_whole_last_line(tmp_path: Path) -> None:
    experiment = load(tmp_path, MIXED.replace("n = [4, 6]", "n = [4]"))
    ex.run_experiment(experiment, tmp_path / "out", isolate=False)
    path = tmp_path / "out" / "records.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:2]))  # the newline of the second record was lost
    sweep = ex.prepare_sweep(experiment, tmp_path / "out", mode="resume")
    assert sweep.notes == [] and len(sweep.recorded) == 2
    ex.run_sweep(sweep, isolate=False)
    assert scan_records(path).bad == [] and len(scan_records(path).records) == len(lines)


def test_overwrite_replaces_the_records(tmp_path: Path) -> None:
    experiment = load(tmp_path, MIXED.replace("n = [4, 6]", "n = [4]"))
    ex.run_experiment(experiment, tmp_path / "out", isolate=False)
    sweep = ex.prepare_sweep(experiment, tmp_path / "out", mode="overwrite")
    assert sweep.replaced == 3 and len(sweep.pending) == 3
    ex.run_sweep(sweep, isolate=False)
    assert len(scan_records(tmp_path / "out" / "records.jsonl").records) == 3


def test_each_record_is_one_write_of_a_whole_line(tmp_path: Path, monkeypatch) -> None:
    experiment = load(tmp_path, MIXED.replace("n = [4, 6]", "n = [4]"))
    record = ex.run_experiment(experiment, tmp_path / "first", isolate=False)[0]
    writes: list[bytes] = []
    real_write = os.write

    def spy(fd: int, data: bytes) -> int:
        writes.append(bytes(data))
        return real_write(fd, data)

    monkeypatch.setattr(records_module.os, "write", spy)
    with RecordWriter(tmp_path / "r.jsonl") as writer:
        writer.write(record)
        writer.write(record)
    assert len(writes) == 2 and all(w.endswith(b"\n") and w.count(b"\n") == 1 for w in writes)


@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="POSIX signal masks")
def test_an_interrupt_waits_for_the_line_being_written() -> None:
    reached = False
    with pytest.raises(KeyboardInterrupt):
        with interrupts_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # a KeyboardInterrupt raised here would skip the next line
            reached = True
    assert reached




def interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def test_an_interrupt_while_drawing_keeps_every_record(tmp_path, monkeypatch, capsys) -> None:
    (tmp_path / "tiny.toml").write_text(TINY_EXPERIMENT)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(markdown, "build_report", interrupt)
    assert cli.main(["run", "tiny.toml", "--out", "out", "--no-progress"]) == 130
    assert capsys.readouterr().err.splitlines() == [
        "checkpoint-ad: interrupted while drawing the report; all 4 records are in "
        "out/records.jsonl; draw it with: checkpoint-ad report out"]
    assert len(lines_of(tmp_path / "out" / "records.jsonl")) == 4


def test_an_interrupt_before_any_point_writes_nothing(tmp_path, monkeypatch, capsys) -> None:
    (tmp_path / "tiny.toml").write_text(TINY_EXPERIMENT)
    monkeypatch.setattr(ex, "check_points", interrupt)
    assert cli.main(["run", str(tmp_path / "tiny.toml"), "--out", str(tmp_path / "out")]) == 130
    assert capsys.readouterr().err.splitlines() == [
        "checkpoint-ad: interrupted; nothing was written"]
    assert not (tmp_path / "out").exists()


def test_no_sampling_process_outlives_a_measurement() -> None:
    """memory-profiler forks a sampling process per measurement and waits for it only a few
    milliseconds; one left alive shares the output folder's lock and refuses the next run."""
    from checkpoint_ad.lab.rss import rss_run
    before = set(multiprocessing.active_children())
    for _ in range(5):
        rss_run(lambda: sum(range(10_000)))
        assert {child.pid for child in multiprocessing.active_children()} == {
            child.pid for child in before}
