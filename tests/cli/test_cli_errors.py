"""Every mistake on the command line ends with exactly one line on stderr, ``checkpoint-ad:
error: ...``, saying what was wrong and what is accepted, exit status 2, no usage dump, no
traceback, and nothing written. ``report`` skips damaged lines of a results file with one
warning each and fails only when no valid record remains. docs/errors.md lists these cases."""
from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import pytest

from checkpoint_ad.cli import main as cli
from checkpoint_ad.cli.options import byte_count
from checkpoint_ad.workloads import chain_models
from checkpoint_ad.lab import experiment as ex
from checkpoint_ad.lab import specs
from checkpoint_ad.chains.chain import profile_chain
from checkpoint_ad.lab.budgets import minimum_budget
from checkpoint_ad.lab.specs import experiment_names
from checkpoint_ad.chains.policies import names as policy_names
from helpers import TINY_EXPERIMENT


HETERO = {"n": 8, "batch": 2, "wide": 16, "narrow": 4, "period": 3}


def one_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run ``argv``; require exit 2, nothing on stdout and exactly one error line on stderr."""
    status = cli.main(list(argv))
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert status == 2, captured.err
    assert captured.out == ""
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("checkpoint-ad: error: ")
    assert "Traceback" not in captured.err and "usage:" not in captured.err
    return lines[0]


def assert_mentions(line: str, *texts: str) -> None:
    for text in texts:
        assert text in line, f"{text!r} not in {line!r}"


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """An output folder that must still not exist after the failing command."""
    yield tmp_path / "out"
    assert not (tmp_path / "out").exists(), "a failing command wrote its output folder"


def spec(tmp_path: Path, text: str, name: str = "spec.toml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def records_lines(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The lines of a real records file (a tiny experiment measured in-process)."""
    folder = tmp_path_factory.mktemp("records")
    experiment = specs.load_experiment(spec(folder, TINY_EXPERIMENT, "tiny.toml"))
    ex.run_experiment(experiment, folder / "run", isolate=False)
    return (folder / "run" / "records.jsonl").read_text().splitlines()


# -- unknown names ---------------------------------------------------------------------------------

def test_unknown_workload_lists_the_known_ones(capsys) -> None:
    line = one_error(capsys, "compare", "--workload", "cnn")
    assert_mentions(line, "unknown workload 'cnn'", *chain_models.names())


def test_unknown_policy_lists_the_known_ones(capsys) -> None:
    line = one_error(capsys, "plan", "--policy", "rewind", "--n", "5")
    assert_mentions(line, "unknown policy 'rewind'", *policy_names())
    line = one_error(capsys, "compare", "--policies", "store_all,rewind")
    assert_mentions(line, "unknown policy 'rewind'", *policy_names())


def test_unknown_experiment_lists_the_known_ones(capsys, out) -> None:
    line = one_error(capsys, "run", "fig70", "--out", str(out))
    assert_mentions(line, "unknown experiment 'fig70'", *experiment_names())


def test_unknown_command_lists_the_commands(capsys) -> None:
    line = one_error(capsys, "launch")
    assert_mentions(line, "invalid choice: 'launch'", "list", "plan", "run", "compare", "report",
                    "checkpoint-ad --help")


def test_unknown_option_and_missing_arguments(capsys) -> None:
    assert_mentions(one_error(capsys, "plan", "--policy", "revolve", "--n", "5", "--bogus"),
                    "unrecognized arguments: --bogus")
    assert_mentions(one_error(capsys, "plan"), "required: --policy",
                    "checkpoint-ad plan --help")
    assert_mentions(one_error(capsys, "plan", "--policy", "revolve"), "give --n",
                    "or --workload")


def test_unknown_policy_parameter_lists_the_accepted_ones(capsys) -> None:
    line = one_error(capsys, "compare", "--policies", "revolve:slot=3")
    assert_mentions(line, "no parameter 'slot'", "accepted: slots")


# -- sizes and budgets ------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["plan", "--policy", "revolve", "--n", "0"], "argument --n: expected a positive whole number, got 0"),
    (["plan", "--policy", "revolve", "--n", "x"], "argument --n: expected a whole number, got 'x'"),
    (["compare", "--n", "-1"], "argument --n: expected a positive whole number, got -1"),
    (["compare", "--width", "0"], "argument --width: expected a positive whole number, got 0"),
    (["compare", "--workload", "mlp", "--batch", "1.5"],
     "argument --batch: expected a whole number, got '1.5'"),
    (["plan", "--policy", "revolve", "--n", "5", "--slots", "0"],
     "argument --slots: expected a positive whole number, got 0"),
    (["plan", "--policy", "sqrt_n", "--n", "5", "--segments", "-2"],
     "argument --segments: expected a positive whole number, got -2"),
    (["compare", "--repeats", "0"], "argument --repeats: expected a positive whole number, got 0"),
    (["compare", "--seed", "-1"], "argument --seed: expected a whole number >= 0, got -1"),
])
def test_sizes_must_be_positive_whole_numbers(capsys, argv, message) -> None:
    assert_mentions(one_error(capsys, *argv), message, f"checkpoint-ad {argv[0]} --help")


def test_sizes_in_an_experiment_file(capsys, tmp_path, out) -> None:
    path = spec(tmp_path, TINY_EXPERIMENT.replace("n = [3, 5]", "n = [3, 0]"))
    line = one_error(capsys, "run", path, "--out", str(out))
    assert_mentions(line, path, "grid", "size n must be a positive integer, got 0")
    path = spec(tmp_path, TINY_EXPERIMENT.replace('policy = "revolve", params = { slots = 2 }',
                                       'policy = "revolve", params = { slots = 0 }'))
    line = one_error(capsys, "run", path, "--out", str(out))
    assert_mentions(line, path, "slots must be a positive integer, got 0")


@pytest.mark.parametrize("value", ["-3", "abc", "0", "0.5", "12 parsecs"])
def test_a_budget_must_be_a_positive_number_of_bytes(capsys, value) -> None:
    line = one_error(capsys, "plan", "--policy", "optimal", "--n", "5", "--budget-bytes", value)
    assert_mentions(line, "argument --budget-bytes: expected a positive number of bytes",
                    "64MiB", repr(value))
    line = one_error(capsys, "compare", "--policies", f"optimal:budget_bytes={value}")
    assert_mentions(line, "optimal:budget_bytes: expected a positive number of bytes",
                    repr(value))


@pytest.mark.parametrize("value", ["-1.5", "0", "nan", '"big"'])
def test_a_budget_in_an_experiment_file(capsys, tmp_path, out, value) -> None:
    path = spec(tmp_path, 'workload = "chain"\n'
                          f'policies = [{{ policy = "optimal", params = {{ budget_bytes = {value} }} }}]\n')
    line = one_error(capsys, "run", path, "--out", str(out))
    assert_mentions(line, path, "budget_bytes must be a positive number of bytes")


def test_byte_counts_take_units() -> None:
    assert byte_count("800000") == 800000
    assert byte_count("64MiB") == 64 * 2**20
    assert byte_count("1.5GB") == 1_500_000_000
    assert byte_count("2 kib") == 2048
    assert byte_count("1e5") == 100_000


def test_a_budget_below_the_minimum_names_the_minimum(capsys, tmp_path, out) -> None:
    line = one_error(capsys, "compare", "--n", "4", "--policies", "optimal:budget_bytes=10")
    fig69 = chain_models.build("chain", {"n": 4})
    least = minimum_budget(profile_chain(fig69.chain, fig69.x0).costs())
    assert_mentions(line, f"budget_bytes=10 is below the minimum of {least:,} bytes", "chain n=4")
    workload = chain_models.build("hetero_mlp", HETERO)
    minimum = f"{minimum_budget(profile_chain(workload.chain, workload.x0).costs()):,}"
    path = spec(tmp_path, f"""\
        workload = "hetero_mlp"
        sizes = {json.dumps(HETERO).replace('"', '').replace(':', ' =')}
        policies = [{{ policy = "store_all" }},
                    {{ policy = "optimal", params = {{ budget_bytes = 10 }} }}]
        """)
    line = one_error(capsys, "run", path, "--out", str(out))
    assert_mentions(line, path, f"below the minimum of {minimum} bytes")


# -- --max-memory ----------------------------------------------------------------------------------

def test_max_memory_refuses_compare_before_anything_runs(capsys, monkeypatch) -> None:
    def must_not_run(*args, **kwargs):
        raise AssertionError("a point ran")

    monkeypatch.setattr(ex, "run_points", must_not_run)
    line = one_error(capsys, "compare", "--n", "3", "--max-memory", "10kB")
    # store_all on chain n=3, width 1000: x_0, two held tapes, working value, cotangent
    assert_mentions(line, "max_memory 10,000 bytes refuses 4 of 4 points",
                    "chain n=3 width=1000 f=sin store_all", "40,000 bytes of activations")


def test_max_memory_refuses_the_whole_run_naming_the_first_point(capsys, tmp_path, out
                                                                 ) -> None:
    path = spec(tmp_path, TINY_EXPERIMENT)
    # 320-byte states: store_all at n=5 holds x_0, 4 tapes, the working value and a cotangent
    line = one_error(capsys, "run", path, "--out", str(out), "--max-memory", "2000")
    assert_mentions(line, "max_memory 2,000 bytes refuses 1 of 4 points before anything runs",
                    "chain n=5 width=40 f=sin store_all", "2,240 bytes of activations",
                    "smallest prediction: 1,600 bytes")


@pytest.mark.parametrize("value", ["-5", "lots", "0"])
def test_max_memory_must_be_a_positive_number_of_bytes(capsys, value) -> None:
    line = one_error(capsys, "compare", "--max-memory", value)
    assert_mentions(line, "argument --max-memory: expected a positive number of bytes")


# -- experiment files ------------------------------------------------------------------------------

def test_bad_toml_names_the_file_line_and_column(capsys, tmp_path, out) -> None:
    path = spec(tmp_path, 'workload = "chain"\nrepeats = = 3\n')
    line = one_error(capsys, "run", path, "--out", str(out))
    assert_mentions(line, f"{path}:2:11: not valid TOML: Invalid value")
    path = spec(tmp_path, 'workload = "chain"\npolicies = [{ policy = "store_all" }\n')
    line = one_error(capsys, "run", path, "--out", str(out))
    assert_mentions(line, f"{path}:2: not valid TOML")


def test_unknown_keys_list_the_accepted_ones(capsys, tmp_path, out) -> None:
    path = spec(tmp_path, TINY_EXPERIMENT + "repeat = 3\n")
    line = one_error(capsys, "run", path, "--out", str(out))
    assert_mentions(line, path, "unknown key repeat in the experiment",
                    "allowed: costs, description, detail, dtype, family, grid, name, parts, "
                    "policies, quick, repeats, seed, sizes, workload, workloads")
    path = spec(tmp_path, TINY_EXPERIMENT.replace("{ policy = \"store_all\" }",
                                       "{ policy = \"store_all\", slots = 3 }"))
    line = one_error(capsys, "run", path, "--out", str(out))
    assert_mentions(line, r"unknown key slots in policies[0]", "allowed: max_n, max_ops, params, policy, sweep")


@pytest.mark.parametrize("change, message", [
    ('repeats = "3"', "repeats must be an integer, got str '3'"),
    ("seed = -1", "seed must be at least 0, got -1"),
    ("grid = 5", "grid must be a table, got int 5"),
    ('policies = "store_all"', "policies must be an array, got str"),
])
def test_wrong_types_are_named(capsys, tmp_path, out, change, message) -> None:
    key = change.split(" =")[0]
    text = "\n".join(line for line in TINY_EXPERIMENT.splitlines() if not line.startswith(key + " "))
    path = spec(tmp_path, text + "\n" + change + "\n")
    assert_mentions(one_error(capsys, "run", path, "--out", str(out)), path, message)


def test_a_missing_experiment_file(capsys, tmp_path, out) -> None:
    line = one_error(capsys, "run", str(tmp_path / "absent.toml"), "--out", str(out))
    assert_mentions(line, "cannot read experiment file", "No such file", "fig69")


# -- output folders and existing records -----------------------------------------------------------

def test_an_output_folder_under_a_file(capsys, tmp_path) -> None:
    path = spec(tmp_path, TINY_EXPERIMENT)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    line = one_error(capsys, "run", path, "--out", str(blocker / "out"))
    assert_mentions(line, f"cannot write to output folder {blocker / 'out'}",
                    "is a file, not a folder", "choose another --out")
    assert blocker.read_text() == "not a folder"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")
def test_an_output_folder_that_cannot_be_created(capsys, tmp_path) -> None:
    line = one_error(capsys, "run", spec(tmp_path, TINY_EXPERIMENT), "--out", "/proc/forbidden")
    assert_mentions(line, "cannot write to output folder /proc/forbidden")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="root writes into read-only folders")
def test_a_read_only_output_folder(capsys, tmp_path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        line = one_error(capsys, "run", spec(tmp_path, TINY_EXPERIMENT), "--out", str(folder / "out"))
    finally:
        folder.chmod(0o700)
    assert_mentions(line, "cannot write to output folder", "Permission denied")
    assert list(folder.iterdir()) == []


def test_report_into_an_unwritable_folder(capsys, tmp_path, records_lines) -> None:
    (tmp_path / "r.jsonl").write_text("\n".join(records_lines) + "\n")
    (tmp_path / "a_file").write_text("")
    line = one_error(capsys, "report", str(tmp_path / "r.jsonl"), "--out",
                     str(tmp_path / "a_file" / "x"))
    assert_mentions(line, "cannot write to output folder", "is a file, not a folder")


def test_a_run_never_mixes_into_existing_records(capsys, tmp_path, records_lines) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    text = "\n".join(records_lines) + "\n"
    (folder / "records.jsonl").write_text(text)
    line = one_error(capsys, "run", spec(tmp_path, TINY_EXPERIMENT), "--out", str(folder))
    assert_mentions(line, "records.jsonl already holds 4 record line(s)", "--resume",
                    "--overwrite", "another --out")
    assert (folder / "records.jsonl").read_text() == text
    assert sorted(p.name for p in folder.iterdir()) == ["records.jsonl"]


def test_resume_refuses_records_of_another_run(capsys, tmp_path, records_lines) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "records.jsonl").write_text("\n".join(records_lines) + "\n")
    other = spec(tmp_path, TINY_EXPERIMENT.replace("repeats = 1", "repeats = 2"), "tiny.toml")
    line = one_error(capsys, "run", other, "--out", str(folder), "--resume")
    assert_mentions(line, "records.jsonl:1: not a point of this run", "1 repeats",
                    "4 such record(s)", "same experiment and options")


def test_resume_refuses_damage_it_cannot_repair(capsys, tmp_path, records_lines) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    lines = list(records_lines)
    lines[1] = lines[1][:40]
    (folder / "records.jsonl").write_text("\n".join(lines) + "\n")
    line = one_error(capsys, "run", spec(tmp_path, TINY_EXPERIMENT, "tiny.toml"), "--out", str(folder),
                     "--resume")
    assert_mentions(line, "records.jsonl:2: not JSON", "repairs only a truncated last line",
                    "delete line 2")


def test_resume_and_overwrite_exclude_each_other(capsys, tmp_path, out) -> None:
    line = one_error(capsys, "run", spec(tmp_path, TINY_EXPERIMENT), "--out", str(out), "--resume",
                     "--overwrite")
    assert_mentions(line, "argument --overwrite: not allowed with argument --resume")


# -- damaged results files for report --------------------------------------------------------------

def report(capsys, *argv: str) -> tuple[int, str, list[str]]:
    status = cli.main(["report", *argv])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return status, captured.out, captured.err.splitlines()


def test_report_skips_bad_lines_naming_each_and_draws_the_rest(capsys, tmp_path,
                                                               records_lines) -> None:
    first, second, third, fourth = records_lines
    data = json.loads(third)
    data["forward_evals"] = "many"
    lines = [first,                                     # 1 valid
             second.replace('"policy":', '"policy"', 1),  # 2 a lost byte
             "",                                        # 3 blank: ignored
             '{"schema_version": 1}',                   # 4 not a record
             json.dumps(data),                          # 5 wrong type
             '{"schema_version": 99}',                  # 6 another schema
             fourth,                                    # 7 valid
             first[:90]]                                # 8 truncated, no newline
    path = tmp_path / "records.jsonl"
    path.write_text("\n".join(lines))
    status, out, err = report(capsys, str(path), "--out", str(tmp_path / "drawn"))
    assert status == 0
    assert err == [
        f"checkpoint-ad: warning: {path}:2: not JSON: Expecting ':' delimiter at column 86; "
        "line skipped",
        f"checkpoint-ad: warning: {path}:4: missing 26 of the 26 required fields: costs, dtype, "
        "experiment, forward_cost, forward_evals, loss, ...; line skipped",
        f"checkpoint-ad: warning: {path}:5: field forward_evals must be int, got 'many'; "
        "line skipped",
        f"checkpoint-ad: warning: {path}:6: schema_version 99 is not supported (this package "
        "reads version 1); line skipped",
        f"checkpoint-ad: warning: {path}:8: truncated last line, without its newline (an "
        "interrupted write?): not JSON: Unterminated string starting at column 87; "
        "line skipped"]
    assert "2 records from 1 file(s) (5 bad line(s) skipped)" in out
    assert "2 records" in (tmp_path / "drawn" / "report.md").read_text()
    assert (tmp_path / "drawn" / "memory_vs_n.png").stat().st_size > 0


def test_report_of_an_empty_file_fails(capsys, tmp_path) -> None:
    (tmp_path / "records.jsonl").write_text("")
    line = one_error(capsys, "report", str(tmp_path / "records.jsonl"))
    assert_mentions(line, "no valid records in", "(empty)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["records.jsonl"]


def test_report_with_no_valid_line_warns_then_fails(capsys, tmp_path, records_lines) -> None:
    path = tmp_path / "records.jsonl"
    path.write_text("\n".join(["not json"] * 13 + [records_lines[0][:50]]))
    status, out, err = report(capsys, str(path))
    assert status == 2 and out == ""
    assert [line.split(": ")[2] for line in err[:10]] == [f"{path}:{i}" for i in range(1, 11)]
    assert err[10] == f"checkpoint-ad: warning: {path}: 4 more bad lines skipped: 11-14"
    assert err[11].startswith("checkpoint-ad: error: no valid records in")
    assert "14 bad line(s) skipped" in err[11] and len(err) == 12
    assert sorted(p.name for p in tmp_path.iterdir()) == ["records.jsonl"]


def test_report_of_missing_results(capsys, tmp_path) -> None:
    assert_mentions(one_error(capsys, "report", str(tmp_path / "absent.jsonl")),
                    "no such results file or directory")
    assert_mentions(one_error(capsys, "report", str(tmp_path)), "no results (*.jsonl) under")


@pytest.mark.parametrize("command", [["compare", "--workload", "mlp"], ["run", "--quick"]],
                         ids=["compare", "run"])
def test_the_torch_backend_without_torch_says_how_to_install_it(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, out: Path,
        command: list[str]) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    more = ["--out", str(out)] if command[0] == "run" else []
    line = one_error(capsys, *command, *more, "--backend", "torch")
    assert_mentions(line, "--backend torch needs PyTorch, which is not installed",
                    'pip install -e ".[torch]" in the repository\'s folder')
