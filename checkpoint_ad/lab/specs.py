"""Experiment specs: the declarative TOML format, strict validation, grid expansion, loading.

An experiment names a workload, fixed ``sizes``, a ``grid`` of sizes to sweep, the ``policies``
with their parameters (a ``sweep`` table gives one configuration per value, ``max_n`` skips
large chains, ``max_ops`` graphs of more ops), ``repeats``, a ``seed``, a ``dtype``, the ``costs`` the planners see, and a
``detail`` point whose memory timeline and schedule are kept in the records. A ``quick`` table
replaces any of these top-level keys for a reduced run. Example::

    workload = "chain"
    description = "depth sweep of the Fig. 6.9 chain"
    repeats = 3
    sizes = { width = 1000 }
    grid = { n = [4, 16, 64] }
    detail = { n = 16 }
    [[policies]]
    policy = "revolve"
    sweep = { slots = [2, 4, 8] }
    [quick]
    grid = { n = [4, 16] }

A graph experiment says ``family = "graph"``: its ``workloads`` (an array; ``workload`` for
one) are graph workloads (:mod:`~checkpoint_ad.workloads.graph_models`), its policies graph policies,
``budget_fraction`` a fraction of store_all's activation peak; ``sizes`` and ``grid`` apply
to every workload listed (each must accept them), and a table in ``sizes`` (or ``grid``)
named after a workload sets that workload's own sizes (or grid, over the shared one)::

    family = "graph"
    workloads = ["residual", "unet"]
    sizes = { width = 32, residual = { n = 16 }, unet = { n = 4 } }
    [[policies]]
    policy = "dtr"
    sweep = { budget_fraction = [0.5, 0.7] }

An array of ``parts`` adds workloads of another family to the same experiment (its records
share its name and land in one report, a section per family); each part is written like an
experiment without ``name``, ``description`` or ``parts``, and takes the experiment's
``repeats``, ``seed`` and ``dtype`` unless it sets them::

    family = "graph"
    workloads = ["residual"]
    policies = [{ policy = "optimal", sweep = { budget_fraction = [0.5, 0.7] } }]
    [[parts]]
    workload = "hetero_mlp"
    policies = [{ policy = "optimal", sweep = { budget_fraction = [0.4, 0.6] } }]

A user's own workload is named by its function, ``workload = "model.py:build"`` (a path
relative to the experiment file's folder, or ``package.module:build``), with ``sizes`` and
``grid`` passed to it as keyword arguments; without a ``family`` key the experiment's family is
what ``build`` returns at the first grid point (:mod:`checkpoint_ad.workloads.user`)::

    workload = "model.py:build"
    sizes = { width = 16 }
    grid = { n = [4, 8] }
    policies = [{ policy = "store_all" }, { policy = "revolve", params = { slots = 2 } }]

The shipped experiments live in the top-level ``experiments/`` folder, installed as the
package ``checkpoint_ad.experiments``; :func:`load_experiment` also takes a path to any file.
Running them is :mod:`checkpoint_ad.lab.experiment`.
"""
from __future__ import annotations

import importlib.resources
import re
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..workloads import chain_models, graph_models
from ..workloads.user import is_user_reference, resolve_reference, workload_family
from ..errors import CheckpointADError, ExperimentError, UnknownNameError
from .points import COST_MODES
from ..records.fields import plain_name_problem
from .spec_checks import (LARGEST_WHOLE, check_arrays, check_combination, check_keys, check_param,
                          check_sizes, fail, no_duplicates, policy_spec, workload_spec)
from .spec_model import Experiment, PolicyEntry, fixed_sizes


DEFAULT_EXPERIMENT = "fig69"
MAX_REPEATS = 1000  # timed repeats of one point: more would run for hours and tell nothing new
TOP_KEYS = {"name": str, "description": str, "family": str, "workload": str, "workloads": list,
            "sizes": dict, "grid": dict, "policies": list, "repeats": int, "seed": int,
            "dtype": str, "costs": str, "detail": dict, "quick": dict, "parts": list}
QUICK_KEYS = set(TOP_KEYS) - {"name", "description", "family", "workload", "workloads", "quick",
                              "parts"}
WHOLE_KEYS = ("name", "description", "parts")  # the whole experiment's: a part may not set them
SHARED_KEYS = ("repeats", "seed", "dtype")  # a part takes the experiment's unless it sets them
GRAPH_COST_MODES = ("model", "unit")  # a graph workload's cost model is 1 per op: the same


POLICY_KEYS = {"policy": str, "params": dict, "sweep": dict, "max_n": int, "max_ops": int}


def _policy_entry(source: str, family: str, index: int, table: Any) -> PolicyEntry:
    where = f"policies[{index}]"
    if not isinstance(table, dict):
        raise fail(source, f"{where} must be a table, got {table!r}")
    check_keys(source, where, table, POLICY_KEYS, required=["policy"])
    policy = table["policy"]
    try:
        policy_spec(family, policy)
    except UnknownNameError as error:
        raise fail(source, f"{where}: {error}") from None
    params = {name: check_param(source, f"{where}.params", family, policy, name, value)
              for name, value in table.get("params", {}).items()}
    sweep = check_arrays(source, f"{where}.sweep", table.get("sweep", {}),
                         lambda name, value: check_param(source, f"{where}.sweep", family,
                                                         policy, name, value))
    both = sorted(set(params) & set(sweep))
    if both:
        raise fail(source, f"{where}: {', '.join(both)} is set both in params and in sweep; "
                            f"give it in one of them")
    if "max_ops" in table and family != "graph":
        raise fail(source, f"{where}: max_ops is for graph experiments (family = \"graph\"); "
                            f"a chain experiment limits its policies by n (max_n)")
    entry = PolicyEntry(policy, params, sweep, table.get("max_n"), table.get("max_ops"))
    try:
        check_combination(policy, entry.configurations()[0])
    except ExperimentError as error:
        raise fail(source, f"{where}: {error}") from None
    for key, limit in (("max_n", entry.max_n), ("max_ops", entry.max_ops)):
        if limit is not None and limit < 1:
            raise fail(source, f"{where}: {key} must be at least 1, got {limit}")
    return entry


def _grid(source: str, family: str, workloads: tuple[str, ...], grid: Mapping[str, Any]
          ) -> dict[str, Any]:
    """The grid: arrays every workload sweeps, and (graph experiments) a table named after a
    workload holding arrays only that workload sweeps, over the shared ones."""
    def checker(names: tuple[str, ...], where: str):
        def checked(key: str, value: Any) -> Any:
            check_sizes(source, where, family, names, {key: value})
            return value
        return checked

    own = {key: value for key, value in grid.items() if isinstance(value, dict)}
    for key in own:
        if key not in workloads:
            raise fail(source, f"grid: {key} = {{...}} is the grid of one workload, but {key!r} "
                                f"is not one of this experiment's ({', '.join(workloads)})")
    shared = {key: value for key, value in grid.items() if key not in own}
    checked: dict[str, Any] = check_arrays(source, "grid", shared, checker(workloads, "grid"))
    for key, table in own.items():
        checked[key] = check_arrays(source, f"grid.{key}", table,
                                    checker((key,), f"grid.{key}"))
    return checked


def parse_experiment(data: Mapping[str, Any], source: str, quick: bool = False,
                     name: str | None = None) -> Experiment:
    """Validate a spec (a parsed TOML document) strictly; ``source`` names it in errors."""
    check_keys(source, "the experiment", data, TOP_KEYS, required=["policies"])
    spec = dict(data)
    if quick and "quick" in spec:
        check_keys(source, "quick", spec["quick"], {k: TOP_KEYS[k] for k in QUICK_KEYS})
        spec.update(spec["quick"])
    spec = _resolved_references(spec, Path(source).parent)
    family, workloads = _workloads(source, spec)
    sizes = dict(spec.get("sizes", {}))
    check_sizes(source, "sizes", family, workloads, sizes)
    grid = _grid(source, family, workloads, spec.get("grid", {}))
    if not spec["policies"]:
        raise fail(source, "policies is empty")
    entries = tuple(_policy_entry(source, family, i, t) for i, t in enumerate(spec["policies"]))
    no_duplicates(source, "policies", [(e.policy, c) for e in entries
                                         for c in e.configurations()])
    for key, least, most in (("repeats", 1, MAX_REPEATS), ("seed", 0, LARGEST_WHOLE)):
        if spec.get(key, least) < least:
            raise fail(source, f"{key} must be at least {least}, got {spec[key]}")
        if spec.get(key, least) > most:
            raise fail(source, f"{key} must be at most {most:,}, got {spec[key]}")
    chosen_name = spec.get("name", name or Path(source).stem)
    problem = plain_name_problem(chosen_name)
    if problem is not None:
        given = "name" if "name" in spec else "the name taken from the file's name"
        raise fail(source, f"{given} {problem}; it names the output folder "
                            f"(set name = \"...\" in the file)")
    modes = GRAPH_COST_MODES if family == "graph" else COST_MODES
    if spec.get("costs", "model") not in modes:
        raise fail(source, f"costs must be one of {', '.join(modes)} for {family} workloads, "
                            f"got {spec['costs']!r}")
    experiment = Experiment(
        chosen_name, spec.get("description", ""), workloads,
        sizes, grid, entries, spec.get("repeats", 3), spec.get("seed", 0),
        spec.get("dtype", "float64"), spec.get("costs", "model"), spec.get("detail"), source,
        quick, family, _parts(source, spec, quick, chosen_name))
    try:
        chain_models.check_dtype(experiment.dtype)
    except CheckpointADError as error:
        raise fail(source, str(error)) from None
    if experiment.detail is not None:
        check_sizes(source, "detail", family, workloads, experiment.detail)
        for workload in workloads:
            if experiment.detail_point(workload) is None:
                raise fail(source, f"detail {experiment.detail} matches no grid point of "
                                    f"{workload}")
    if not experiment.tasks():
        raise fail(source, "no points to run: every policy's max_n is below the grid's n")
    return experiment


def _parts(source: str, spec: Mapping[str, Any], quick: bool, name: str
           ) -> tuple[Experiment, ...]:
    """The experiment's ``parts``: each a table of more workloads (of another family, say)
    run in the same experiment under its name, written like an experiment without
    ``name``, ``description`` or ``parts``; it takes the experiment's ``repeats``, ``seed``
    and ``dtype`` unless it sets them, and its own ``quick`` table."""
    parts = []
    for index, table in enumerate(spec.get("parts", [])):
        where = f"parts[{index}]"
        if not isinstance(table, dict):
            raise fail(source, f"{where} must be a table, got {table!r}")
        for key in WHOLE_KEYS:
            if key in table:
                raise fail(source, f"{where}: {key} is the whole experiment's; a part may not "
                                    f"set it")
        shared = {key: spec[key] for key in SHARED_KEYS if key in spec}
        try:
            parts.append(parse_experiment({**shared, **table}, source, quick, name=name))
        except ExperimentError as error:
            raise ExperimentError(str(error).replace(f"{source}: ", f"{source}: {where}: ", 1)
                                  ) from None
    return tuple(parts)


def _resolved_references(spec: Mapping[str, Any], folder: Path) -> dict[str, Any]:
    """``spec`` (its keys' types checked) with the relative file path of each user workload
    (``model.py:build``) taken from ``folder``, the experiment file's: in ``workload``,
    ``workloads`` and the names of per-workload tables in ``sizes``."""
    def resolve(name: Any) -> Any:
        return resolve_reference(name, folder) if isinstance(name, str) else name

    resolved = dict(spec)
    if "workload" in spec:
        resolved["workload"] = resolve(spec["workload"])
    if "workloads" in spec:
        resolved["workloads"] = [resolve(name) for name in spec["workloads"]]
    resolved["sizes"] = {resolve(key) if isinstance(value, dict) else key: value
                         for key, value in spec.get("sizes", {}).items()}
    return resolved


def _workloads(source: str, spec: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    """The experiment's family (:func:`_family`) and workload names: ``workload`` (one name)
    or ``workloads`` (an array of names; graph experiments only), each registered in the
    family or a user's ``FILE.py:FUNCTION``."""
    if ("workload" in spec) == ("workloads" in spec):
        raise fail(source, "give the workload (one name) or workloads (an array of names), "
                            "one of them")
    names = [spec["workload"]] if "workload" in spec else spec["workloads"]
    if not names or not all(isinstance(name, str) for name in names):
        raise fail(source, f"workloads must be a non-empty array of names, got {names!r}")
    no_duplicates(source, "workloads", names)
    family = _family(source, spec, names)
    if "workloads" in spec and family != "graph":
        raise fail(source, 'workloads (several) is for graph experiments (family = "graph"); '
                            'a chain experiment names one workload')
    for name in names:
        try:
            workload_spec(family, name)
        except (UnknownNameError, ExperimentError) as error:
            raise fail(source, str(error)) from None
    return family, tuple(names)


def _family(source: str, spec: Mapping[str, Any], names: list[str]) -> str:
    """``family`` as the experiment gives it; else the family of its first user workload,
    learnt by building it at its first grid point (sizes as written; they are checked later);
    else "chain"."""
    if "family" in spec:
        if spec["family"] not in graph_models.FAMILIES:
            raise fail(source, f"family must be one of {', '.join(graph_models.FAMILIES)}, "
                                f"got {spec['family']!r}")
        return spec["family"]
    users = [name for name in names if is_user_reference(name)]
    if not users:
        return "chain"
    grid = spec.get("grid", {})
    first = {key: values[0] for key, values in grid.items() if isinstance(values, list) and values}
    sizes = {**fixed_sizes(spec.get("sizes", {}), users[0]), **first}
    try:
        return workload_family(users[0], None, sizes, spec.get("dtype", "float64"))
    except CheckpointADError as error:
        raise fail(source, str(error)) from None


# -- finding and loading --------------------------------------------------------------------------

def experiments_dir() -> Any:
    """The shipped experiments: the top-level ``experiments/`` folder of the source checkout
    this package runs from (installed or not: an editable install maps the package
    ``checkpoint_ad.experiments`` to one checkout's folder, maybe not this one's), else the
    installed package ``checkpoint_ad.experiments``."""
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file() and (checkout / "experiments").is_dir():
        return checkout / "experiments"
    try:
        return importlib.resources.files("checkpoint_ad.experiments")
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[2] / "experiments"


def experiment_names() -> list[str]:
    """The names of the shipped experiments, sorted."""
    folder = experiments_dir()
    if not folder.is_dir():
        return []
    return sorted(entry.name[:-len(".toml")] for entry in folder.iterdir()
                  if entry.name.endswith(".toml"))


def load_experiment(name_or_path: str, quick: bool = False) -> Experiment:
    """A shipped experiment by name, or any spec file by path (``*.toml``)."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or len(path.parts) > 1:
        try:
            text, source = path.read_text(encoding="utf-8"), str(path)
        except UnicodeDecodeError as error:
            raise ExperimentError(f"{path}: not UTF-8 text (byte {error.start + 1}); an "
                                  f"experiment file is TOML, which is UTF-8") from None
        except OSError as error:
            raise ExperimentError(f"cannot read experiment file {path}: {error.strerror}; give "
                                  f"a path to a .toml file or a shipped experiment's name "
                                  f"({', '.join(experiment_names())})") from None
    else:
        names = experiment_names()
        if name_or_path not in names:
            raise UnknownNameError(f"unknown experiment {name_or_path!r}; known experiments: "
                                   f"{', '.join(names) or 'none'}")
        entry = experiments_dir() / f"{name_or_path}.toml"
        text, source = entry.read_text(encoding="utf-8"), f"{name_or_path}.toml"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ExperimentError(_toml_message(source, text, error)) from None
    except RecursionError:
        raise ExperimentError(f"{source}: not a usable experiment: its tables or arrays are "
                              f"nested too deeply") from None
    return parse_experiment(data, source, quick, name=path.stem)


def _toml_message(source: str, text: str, error: tomllib.TOMLDecodeError) -> str:
    """``file:line:column: not valid TOML: reason`` (tomllib puts the position in its text)."""
    message = str(error)
    found = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
    if found:
        reason = message[:found.start()]
        return f"{source}:{found[1]}:{found[2]}: not valid TOML: {reason}"
    if message.endswith("(at end of document)"):
        reason = message[:-len("(at end of document)")].rstrip()
        line = text.count("\n") + (0 if text.endswith("\n") else 1)
        return f"{source}:{max(line, 1)}: not valid TOML: {reason} (at the end of the file)"
    return f"{source}: not valid TOML: {message}"


def iter_experiments() -> Iterator[tuple[str, Experiment | CheckpointADError]]:
    """Each shipped experiment by name, loaded, or the error that loading it raised."""
    for name in experiment_names():
        try:
            yield name, load_experiment(name)
        except CheckpointADError as error:
            yield name, error
