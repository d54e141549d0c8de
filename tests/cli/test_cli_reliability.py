"""Inputs that used to escape the output folder, run forever, mix two runs or end in a
traceback (issues 14 and 16), each through a real ``python -m checkpoint_ad`` process: exit
status 2, exactly one line ``checkpoint-ad: error: ...`` on stderr, nothing on stdout, and
nothing written anywhere (the test folder is compared byte for byte before and after).
docs/errors.md lists each case, its message and its test."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from checkpoint_ad.cli import main as cli
from checkpoint_ad.cli import plan as plan_command
from helpers import REPO, TINY_EXPERIMENT, WAIT_S, run_cli, snapshot



def make(root: Path, files: dict[bytes, bytes | None]) -> None:
    """Files (bytes) and folders (None) under ``root``, named in bytes (not always UTF-8)."""
    for name, content in files.items():
        path = os.path.join(os.fsencode(root), name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if content is None:
            os.makedirs(path, exist_ok=True)
        else:
            with open(path, "wb") as handle:
                handle.write(content)


def refused(root: Path, *argv: str | bytes) -> str:
    """Run ``argv`` in ``root``: exit 2, one error line, nothing on stdout, nothing written."""
    before = snapshot(root)
    done = run_cli(root, *argv)
    err = done.stderr.decode("utf-8", "replace")
    lines = [line for line in err.splitlines() if line.strip()]
    assert done.returncode == 2, err
    assert done.stdout == b"", done.stdout
    assert len(lines) == 1 and lines[0].startswith("checkpoint-ad: error: "), err
    assert "Traceback" not in err
    assert snapshot(root) == before, "a refused command wrote something"
    return lines[0]


TINY = TINY_EXPERIMENT.encode()
BAD_DEEP_TOML = b"a = " + b"[" * 100_000 + b"]" * 100_000 + b"\n"

REFUSED = [
    # issue 14: names that would become paths outside --out
    ({b"esc.toml": b'name = "../../escaped"\n' + TINY}, ["run", "esc.toml"],
     "esc.toml: name must be a plain name (no / or \\, no control characters, not . or ..), "
     "got '../../escaped'", "traversal_name"),
    ({b"abs.toml": b'name = "/tmp/checkpoint-ad-escaped"\n' + TINY}, ["run", "abs.toml"],
     "name must be a plain name", "absolute_name"),
    ({b"empty.toml": b'name = ""\n' + TINY}, ["run", "empty.toml", "--out", "out"],
     "name must be a non-empty name, got ''", "empty_name"),
    ({b"nul.toml": b'name = "a\\u0000b"\n' + TINY}, ["run", "nul.toml", "--out", "out"],
     "name must be a plain name", "nul_name"),
    ({b"\xff.toml": TINY}, [b"run", b"\xff.toml", b"--out", b"out"],
     "the name taken from the file's name must be a plain name", "non_utf8_file_name"),
    # issue 14: experiment files
    ({b"latin.toml": b"workload = \"chain\"\n# caf\xe9\n"}, ["run", "latin.toml", "--out", "out"],
     "latin.toml: not UTF-8 text (byte 25)", "non_utf8_toml"),
    ({b"deep.toml": BAD_DEEP_TOML}, ["run", "deep.toml", "--out", "out"],
     "deep.toml: not a usable experiment: its tables or arrays are nested too deeply",
     "deep_toml"),
    ({b"tiny.toml": TINY, b"out/records.csv": None}, ["run", "tiny.toml", "--out", "out"],
     "cannot write out/records.csv: it exists and is not a file", "records_csv_is_a_folder"),
    ({b"tiny.toml": TINY, b"out/report.md": None}, ["run", "tiny.toml", "--out", "out"],
     "cannot write out/report.md: it exists and is not a file", "report_md_is_a_folder"),
    ({b"twice.toml": TINY.replace(b"n = [3, 5]", b"n = [3, 3]")},
     ["run", "twice.toml", "--out", "out"], "grid: n lists 3 twice; give each value once",
     "duplicate_grid_values"),
    ({b"slow.toml": TINY.replace(b"repeats = 1", b"repeats = 1000000")},
     ["run", "slow.toml", "--out", "out"], "repeats must be at most 1,000, got 1000000",
     "absurd_repeats"),
    # issue 14: numbers
    ({}, ["plan", "--policy", "optimal", "--n", "5", "--budget-bytes", "1e309"],
     "argument --budget-bytes: expected at most 9,223,372,036,854,775,807 bytes (8 EiB), "
     "got '1e309'", "budget_1e309"),
    ({}, ["plan", "--policy", "optimal", "--n", "5", "--budget-bytes", "1e999999999"],
     "expected at most 9,223,372,036,854,775,807 bytes", "budget_1e999999999"),
    ({}, ["compare", "--workload", "chain", "--width", "100000000000"],
     "workload 'chain' with n=64 width=100000000000 f=sin needs at least 1.6e+12 bytes",
     "width_1e11"),
    ({}, ["compare", "--workload", "mlp", "--batch", "100000000000"],
     "workload 'mlp' with n=32 width=128 batch=100000000000 needs at least", "batch_1e11"),
    ({b"huge.toml": TINY.replace(b"n = [3, 5]", b"n = [1000000000000]")},
     ["run", "huge.toml", "--out", "out"],
     "huge.toml: grid: workload 'chain' with n=1000000000000 width=1000 f=sin needs at least",
     "grid_n_1e12"),
    # issue 14: contradictions
    ({}, ["compare", "--policies", "revolve:slots=3:slots=4"],
     "--policies: revolve:slots=3:slots=4: slots is given twice", "parameter_given_twice"),
    ({b"both.toml": TINY.replace(b'params = { slots = 2 }',
                                 b'params = { slots = 2 }, sweep = { slots = [3, 4] }')},
     ["run", "both.toml", "--out", "out"],
     "policies[1]: slots is set both in params and in sweep", "params_and_sweep"),
    # issue 16: meaningless or contradictory parameters, unbounded counts
    ({}, ["plan", "--policy", "optimal", "--n", "10", "--slots", "3", "--resolution", "5"],
     "policy 'optimal': resolution applies only with budget_bytes or budget_fraction or "
     "store_budget_bytes",
     "resolution_with_slots"),
    ({}, ["plan", "--policy", "optimal", "--n", "10", "--slots", "3", "--resolution", "-5"],
     "argument --resolution: expected a positive whole number, got -5",
     "negative_resolution_with_slots"),
    ({}, ["compare", "--policies", "optimal:budget_bytes=1MB:budget_fraction=0.5"],
     "policy 'optimal': budget_bytes and budget_fraction are two budgets; give one of them",
     "two_budgets_on_the_command_line"),
    ({b"budgets.toml": TINY.replace(
        b'{ policy = "revolve", params = { slots = 2 } }',
        b'{ policy = "optimal", params = { budget_bytes = 5000, budget_fraction = 0.5 } }')},
     ["run", "budgets.toml", "--out", "out"],
     "policies[1]: policy 'optimal': budget_bytes and budget_fraction are two budgets",
     "two_budgets_in_a_file"),
    ({}, ["compare", "--repeats", "99999999999999999999"],
     "argument --repeats: expected a positive whole number at most 1,000, got "
     "99999999999999999999", "repeats_1e20"),
    ({}, ["compare", "--workload", "hetero_mlp", "--narrow", "99999999999999999999"],
     "argument --narrow: expected a positive whole number at most "
     "9,223,372,036,854,775,807, got 99999999999999999999", "narrow_1e20"),
]


@pytest.mark.parametrize("files, argv, message",
                         [pytest.param(*case[:3], id=case[3]) for case in REFUSED])
def test_refused_in_one_line_writing_nothing(tmp_path: Path, files, argv, message) -> None:
    root = tmp_path / "work"
    root.mkdir()
    make(root, files)
    line = refused(root, *argv)
    assert message in line, line
    assert not (tmp_path / "escaped").exists() and not Path("/tmp/checkpoint-ad-escaped").exists()


# -- one run at a time per output folder -----------------------------------------------------------

SLOW = TINY_EXPERIMENT.replace("n = [3, 5]", "n = [3, 5, 7, 9]")


def test_a_second_run_into_a_busy_folder_is_refused_naming_the_holder(tmp_path: Path) -> None:
    """Two real processes on one folder: the second (new, --resume or --overwrite) is refused
    while the first holds the folder's lock; the first writes every point once."""
    (tmp_path / "sweep.toml").write_text(SLOW)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    first = subprocess.Popen([sys.executable, "-m", "checkpoint_ad", "run", "sweep.toml",
                              "--out", "out", "--no-progress"], cwd=tmp_path, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    lock = tmp_path / "out" / ".checkpoint-ad.lock"
    deadline = time.monotonic() + WAIT_S
    while not (lock.exists() and lock.read_text().startswith("pid")):
        assert first.poll() is None and time.monotonic() < deadline, "the first run never locked"
        time.sleep(0.05)
    try:
        seconds = [subprocess.Popen([sys.executable, "-m", "checkpoint_ad", "run", "sweep.toml",
                                     "--out", "out", "--no-progress", *extra], cwd=tmp_path,
                                    env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                   for extra in ([], ["--resume"], ["--overwrite"])]  # all at once
        results = [second.communicate(timeout=WAIT_S) for second in seconds]
        if first.poll() is not None:
            pytest.skip("the first run ended before the others were refused (machine too fast)")
        for second, (out, err) in zip(seconds, results):
            lines = err.decode().splitlines()
            assert second.returncode == 2 and len(lines) == 1 and out == b"", err
            assert lines[0] == (f"checkpoint-ad: error: out is in use by another run "
                                f"(pid {first.pid}: checkpoint-ad run sweep.toml --out out "
                                f"--no-progress); wait for it to end, or choose another --out")
    finally:
        assert first.wait(WAIT_S) == 0, first.stderr.read()
        first.stderr.close()
    records = [json.loads(line) for line in (tmp_path / "out" / "records.jsonl").open()]
    assert len(records) == 8
    assert len({(r["sizes"]["n"], r["policy"]) for r in records}) == 8
    done = run_cli(tmp_path, "run", "sweep.toml", "--out", "out", "--resume", "--no-progress")
    assert done.returncode == 0, done.stderr  # the lock ended with its holder


# -- the last guard: resource errors are one line naming what was being done -----------------------

@pytest.mark.parametrize("error, words", [
    (MemoryError(), "out of memory while planning revolve for n=5"),
    (RecursionError("maximum recursion depth exceeded"), "nested too deeply while planning"),
    (OverflowError("int too large to convert to float"),
     "a number too large (int too large to convert to float) while planning"),
    (UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"),
     "text not encodable"),
])
def test_resource_errors_are_one_line_naming_the_activity(capsys, monkeypatch, error,
                                                          words) -> None:
    def exhausted(*args, **kwargs):
        raise error

    monkeypatch.setattr(plan_command, "make_plan", exhausted)
    assert cli.main(["plan", "--policy", "revolve", "--n", "5"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.splitlines()) == 1, captured.err
    assert captured.err.startswith("checkpoint-ad: error: ") and words in captured.err


def test_records_csv_is_never_left_half_written(tmp_path: Path, monkeypatch) -> None:
    """A failure while the CSV is written leaves the previous file whole and no partial one."""
    import csv

    from checkpoint_ad.lab import experiment as ex

    from checkpoint_ad.lab import specs
    from checkpoint_ad.records.files import write_csv

    (tmp_path / "tiny.toml").write_text(TINY_EXPERIMENT)
    records = ex.run_experiment(specs.load_experiment(str(tmp_path / "tiny.toml")),
                                tmp_path / "out", isolate=False)
    before = (tmp_path / "out" / "records.csv").read_bytes()

    def fails(self, rows):
        raise MemoryError

    monkeypatch.setattr(csv.DictWriter, "writerows", fails)
    with pytest.raises(MemoryError):
        write_csv(tmp_path / "out" / "records.csv", records)
    assert (tmp_path / "out" / "records.csv").read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if "partial" in p.name) == []
