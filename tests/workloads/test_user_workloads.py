"""Your own workload (issue 24): a ``build(**sizes)`` in a file of yours, named
``FILE.py:build`` on the command line and in experiment files, planned, compared, recommended
and run like a registered workload (its family is what ``build`` returns); every mistake in
it is one line and exit status 2 (docs/errors.md lists them)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from checkpoint_ad.cli.main import main
from checkpoint_ad.records.schema import Record
from helpers import run_cli

CHAIN_MODEL = """\
import numpy as np
import checkpoint_ad as ca


def dense(x, params):
    weights, bias = params
    return ca.tanh(x @ weights + bias)


def build(n=4, width=8, batch=2):
    rng = np.random.default_rng(0)
    stages = [ca.Stage(dense, (rng.normal(size=(width, width)) / np.sqrt(width),
                               np.zeros(width)), f"dense{t}") for t in range(1, n + 1)]
    return ca.Chain(stages), rng.normal(size=(batch, width))
"""

GRAPH_MODEL = """\
import numpy as np
import checkpoint_ad as ca


def loss(x, weights):
    h = x
    for w in weights:
        h = h + ca.tanh(h @ w)
    return ca.sum(h * h)


def build(blocks=3, width=8, scale=0.1):
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=(width, width)) * scale for _ in range(blocks)]
    return loss, (rng.normal(size=(4, width)), weights)
"""

MISTAKES = {
    "broken.py": "import not_a_module_anywhere\n",
    "raising.py": "def build(n=3):\n    raise ValueError('n must be even')\n",
    "wrong.py": "def build():\n    return [1, 2, 3]\n",
    "needs.py": "def build(n):\n    return None\n",
    "doubled.py": CHAIN_MODEL + "\n\ndef twice(n=2):\n    return build(n=2 * n)\n",
    "numpy_ops.py": GRAPH_MODEL.replace("ca.tanh", "np.tanh"),
}


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder, made the current one, holding the two models and the faulty files."""
    for name, text in {"chain_model.py": CHAIN_MODEL, "graph_model.py": GRAPH_MODEL,
                       **MISTAKES}.items():
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def ok(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 0, capsys.readouterr().err
    return capsys.readouterr().out


def refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The one line of a refusal, without its ``checkpoint-ad: error: `` (exit status 2,
    nothing on stdout)."""
    status = main(list(argv))
    out, err = capsys.readouterr()
    assert (status, out, len(err.splitlines())) == (2, "", 1), err
    assert err.startswith("checkpoint-ad: error: ")
    return err.strip()[len("checkpoint-ad: error: "):]


# -- planned, compared and recommended ------------------------------------------------------------

def test_a_chain_workload_is_planned_with_its_sizes(models, capsys):
    planned = json.loads(ok(capsys, "plan", "--workload", "chain_model.py:build", "--size",
                            "n=5", "--policy", "revolve", "--slots", "2", "--json"))
    assert (planned["workload"], planned["family"]) == ("chain_model.py:build", "chain")
    assert planned["sizes"] == {"n": 5, "width": 8, "batch": 2}  # build's defaults recorded
    assert planned["n"] == 5 and planned["forward_evals"] > 5


def test_a_graph_workload_is_planned_by_a_graph_policy(models, capsys):
    planned = json.loads(ok(capsys, "plan", "--workload", "graph_model.py:build", "--size",
                            "blocks=2", "--policy", "optimal", "--budget-fraction", "0.7",
                            "--json"))
    assert planned["family"] == "graph"
    assert planned["sizes"] == {"blocks": 2, "width": 8, "scale": 0.1}  # a size may be a float
    assert planned["predicted_peak_bytes"] == planned["peak_bytes"]


def test_a_module_on_the_import_path_is_named_by_its_dotted_name(models, capsys, monkeypatch):
    (models / "mymodels").mkdir()
    (models / "mymodels" / "__init__.py").write_text("")
    (models / "mymodels" / "dense.py").write_text(CHAIN_MODEL)
    monkeypatch.syspath_prepend(str(models))
    planned = json.loads(ok(capsys, "plan", "--workload", "mymodels.dense:build", "--n", "3",
                            "--policy", "store_all", "--json"))
    assert (planned["workload"], planned["n"]) == ("mymodels.dense:build", 3)


def test_size_reaches_registered_workloads_too(models, capsys):
    planned = json.loads(ok(capsys, "plan", "--workload", "mlp", "--size", "n=3", "--size",
                            "width=4", "--batch", "2", "--policy", "store_all", "--json"))
    assert planned["sizes"] == {"n": 3, "width": 4, "batch": 2}


@pytest.mark.parametrize("model, policies, family", [
    ("chain_model.py:build", "store_all,revolve:slots=2", "chain"),
    ("graph_model.py:build", "store_all,recompute_all", "graph"),
])
def test_compare_gives_the_gradients_of_store_all(models, capsys, model, policies, family):
    """Each configuration runs in a fresh worker, which rebuilds the model from its file."""
    records = json.loads(ok(capsys, "compare", "--workload", model, "--size", "width=6",
                            "--policies", policies, "--repeats", "1", "--json",
                            "--no-progress"))
    assert [r["policy"] for r in records] == policies.replace(":slots=2", "").split(",")
    assert {(r["workload"], r["family"], r["sizes"]["width"]) for r in records} == {
        (model, family, 6)}
    assert [r["max_grad_diff"] for r in records] == [0.0, 0.0]
    assert records[1]["forward_evals"] > records[0]["forward_evals"]


@pytest.mark.parametrize("model, family", [("chain_model.py:build", "chain"),
                                           ("graph_model.py:build", "graph")])
def test_recommend_ranks_the_plans_of_your_model(models, capsys, model, family):
    found = json.loads(ok(capsys, "recommend", "--workload", model, "--budget", "1MiB",
                          "--policies", "store_all,recompute_all", "--json", "--no-progress"))
    assert (found["workload"], found["family"]) == (model, family)
    assert (found["best"]["policy"], found["best"]["overhead"]) == ("store_all", 1.0)


# -- experiment files -----------------------------------------------------------------------------

@pytest.mark.parametrize("model, family", [("chain_model.py", "chain"),
                                           ("graph_model.py", "graph")])
def test_an_experiment_file_runs_your_model_from_its_own_folder(models, capsys, model, family):
    """The path in the file is relative to the file's folder; the family is what build
    returns; every point, in its worker, agrees with store_all bit for bit."""
    (models / "exp").mkdir()
    (models / "exp" / "tiny.toml").write_text(
        f'workload = "../{model}:build"\nrepeats = 1\nsizes = {{ width = 4 }}\n'
        f'policies = [{{ policy = "store_all" }}, {{ policy = "recompute_all" }}]\n')
    ok(capsys, "run", "exp/tiny.toml", "--out", "out", "--no-progress")
    records = [json.loads(line) for line in (models / "out" / "records.jsonl").open()]
    assert {(r["workload"], r["family"]) for r in records} == {
        (f"exp/../{model}:build", family)}
    assert [r["max_grad_diff"] for r in records] == [0.0, 0.0]
    assert all(Record.from_dict(r) for r in records)  # readable again (a float size too)
    assert (models / "out" / "report.md").is_file()


# -- mistakes: one line each ----------------------------------------------------------------------

EXPECTED = ("(chain, x0), a checkpoint_ad.Chain and its input array, or (fn, args), a function "
            "of arrays returning a scalar and the tuple of its positional arguments")


@pytest.mark.parametrize("argv, message", [
    (["--workload", "missing.py:build"], "workload 'missing.py:build': file missing.py not found"),
    (["--workload", "no_such_package.model:build"],
     "workload 'no_such_package.model:build': importing no_such_package.model raised "
     "ModuleNotFoundError: No module named 'no_such_package'"),
    (["--workload", "broken.py:build"], "workload 'broken.py:build': importing broken.py "
                                        "raised ModuleNotFoundError: No module named "
                                        "'not_a_module_anywhere'"),
    (["--workload", "chain_model.py:make"],
     "workload 'chain_model.py:make': chain_model.py has no function 'make'"),
    (["--workload", "chain_model.py:np"],
     "workload 'chain_model.py:np': chain_model.py: np is a module, not a function"),
    (["--workload", "raising.py:build"],
     "workload 'raising.py:build': build(n=3) raised ValueError: n must be even"),
    (["--workload", "wrong.py:build"],
     f"workload 'wrong.py:build': build() returned a list of 3 (int, int, int); expected "
     f"{EXPECTED}"),
    (["--workload", "chain_model.py:build", "--size", "depth=3"],
     "workload 'chain_model.py:build': build takes no size depth (its sizes: n, width, batch)"),
    (["--workload", "needs.py:build"], "workload 'needs.py:build': build needs size n (--size "
                                       "n=VALUE, or sizes in an experiment)"),
    (["--workload", "doubled.py:twice", "--size", "n=3"],
     "workload 'doubled.py:twice': twice(n=3) returned a chain of 6 stages; a chain "
     "workload's size n is its number of stages (give yours another name, such as layers)"),
    (["--workload", "numpy_ops.py:build"],
     "workload 'numpy_ops.py:build': loss applied numpy to a value being differentiated "
     "(TypeError: operand 'Tracer' does not support ufuncs (__array_ufunc__=None)); use "
     "checkpoint_ad's ops on it (ca.tanh, ca.sum, @, ...)"),
    (["--workload", "graph_model.py:build", "--family", "chain"],
     "workload 'graph_model.py:build' returned a graph workload, but the family asked for is "
     "chain (--family, or family in an experiment)"),
    (["--workload", "chain_model.py:"], "workload 'chain_model.py:': expected FILE.py:FUNCTION "
                                        "or MODULE:FUNCTION, such as model.py:build"),
    (["--workload", "chain_model.py:build", "--size", "n=3", "--size", "n=4"],
     "size n is given twice; give each size once"),
    (["--workload", "chain_model.py:build", "--size", "n"],
     "argument --size: expected KEY=VALUE, such as n=8, got 'n' (see `checkpoint-ad plan "
     "--help`)"),
    (["--n", "4", "--size", "width=3"], "plan: --size applies with --workload only; a chain of "
                                        "n unit stages takes --budget or --slots"),
])
def test_each_mistake_in_plan_is_one_line(models, capsys, argv, message):
    assert refused(capsys, "plan", "--policy", "store_all", *argv) == message


def test_arrays_of_another_dtype_are_refused(models, capsys):
    assert refused(capsys, "recommend", "--workload", "chain_model.py:build", "--budget", "1MiB",
                   "--dtype", "float32") == (
        "workload 'chain_model.py:build': build(n=4, width=8, batch=2) returned an array of "
        "dtype float64, but the run's dtype is float32 (--dtype, or dtype in an experiment); "
        "every array must have it")


def test_a_mistake_in_an_experiment_file_names_the_file(models, capsys):
    (models / "bad.toml").write_text('workload = "chain_model.py:build"\nsizes = { depth = 2 }\n'
                                     'policies = [{ policy = "store_all" }]\n')
    assert refused(capsys, "run", "bad.toml", "--out", "out") == (
        "bad.toml: workload 'chain_model.py:build': build takes no size depth (its sizes: n, "
        "width, batch)")
    assert not (models / "out").exists()


def test_a_real_process_plans_your_model_and_refuses_a_missing_one(models):
    planned = run_cli(models, "plan", "--workload", "chain_model.py:build", "--size", "n=3",
                      "--policy", "store_all", "--summary")
    assert planned.returncode == 0, planned.stderr
    assert b"chain_model.py:build: 3 stages" in planned.stdout
    missing = run_cli(models, "compare", "--workload", "absent.py:build")
    assert (missing.returncode, missing.stdout, missing.stderr.decode()) == (
        2, b"", "checkpoint-ad: error: workload 'absent.py:build': file absent.py not found\n")
