"""The measurement record: its versioned schema, its identity, and the provenance it carries.

One :class:`Record` per grid point and policy configuration. Every record carries what is needed
to read it alone: the schema version, the experiment, the workload and its sizes, the policy and
its parameters, the seed and dtype, the package version, the git commit (when the package runs
from a git checkout; ``git_dirty`` says whether tracked files had changes) and the machine
(platform, Python, numpy, CPU count, BLAS thread settings of the worker). Units: bytes,
seconds, evaluations. :mod:`checkpoint_ad.lab.records` reads and writes records files.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import re
import subprocess
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ExperimentError

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Record:
    """The measurement of one policy configuration at one grid point.

    * Counts and bytes as docs/cost_model.md defines them: ``forward_evals``, ``peak_stored``,
      ``forward_cost``, ``peak_bytes``, ``peak_bytes_by_kind``, ``predicted_peak_bytes``,
      ``measured_peak_bytes``, ``parameter_bytes``, ``parameter_gradient_bytes``. Besides:
      ``rss_peak_increase_bytes`` (memory-profiler's sampled peak RSS minus the RSS before
      the run; coarse: runs shorter than the sampling interval show little),
      ``rss_high_water_increase_bytes`` (the kernel's RSS high-water mark of the worker process
      after the run minus the RSS before it; None where unavailable).
    * Times (seconds): ``wall_s_median``, ``wall_s_min``, ``wall_s_max`` over ``repeats`` runs
      after a warm-up, each the executor's forward and reverse sweeps (no planning or profiling).
    * ``max_grad_diff``: the largest absolute difference between this run's gradients (input and
      parameters) and store_all's on the same inputs and seed (0.0 means bit-identical).
    * Detail (None except on the experiment's detail point): ``timeline``, [[event, live
      bytes], ...] of the Meter during one run, downsampled keeping each bucket's extremes;
      ``forward_events``, the Meter event at which the forward sweep ended; ``schedule``,
      [[action, stage, end], ...], the plan's steps.
    * ``backend``: "numpy" (the package's engine) or "torch" (the workload as torch modules,
      ``--backend torch``; then ``measured_peak_bytes`` is None and ``max_grad_diff`` compares
      with plain torch autograd).
    * ``family``: "chain" (a chain workload run by a chain policy) or "graph" (a graph
      workload traced and run by a graph policy, docs/graph_model.md). Graph records count
      ops: ``forward_evals`` and ``forward_cost`` are op computations and their cost (1 per op),
      ``peak_stored`` is the most op values resident at once, ``peak_bytes_by_kind`` splits
      ``value`` and ``cotangent``, ``parameter_bytes`` and ``parameter_gradient_bytes`` are the
      differentiated arguments and their gradients. They add ``ops`` (op nodes of the graph),
      ``store_all_cost`` (store_all's cost: one computation of every op), ``budget_bytes``
      (the activation budget the planner was given, None for fixed policies),
      ``store_all_peak_bytes`` (store_all's activation peak, which ``budget_fraction``
      scales), the planner's ``method``, ``status`` ("optimal" when proven, else "feasible",
      "time_limit", ...) and ``solve_s`` (planning seconds), ``lower_bound`` (the best
      lower bound of the cost at this budget the package proved,
      :func:`checkpoint_ad.graph_lower_bound`, within a small effort) and
      ``bound_formulation`` (the plans it bounds: "all plans", or "checkmate" for Checkmate's
      formulation only), ``bound_note`` (why a stronger bound was not tried or not found
      within that effort, e.g. Checkmate's model too large; None when nothing was cut
      short); on the detail point ``graph`` ({"parents": [[...], ...], "ops": [name or
      null, ...]}) and ``graph_steps`` ([[action, node], ...], the plan).
    """

    experiment: str
    workload: str
    sizes: dict[str, Any]
    policy: str
    params: dict[str, Any]
    plan_params: dict[str, Any]
    seed: int
    dtype: str
    costs: str
    repeats: int
    forward_evals: int
    peak_stored: int
    forward_cost: float
    peak_bytes: int
    peak_bytes_by_kind: dict[str, int]
    predicted_peak_bytes: int
    measured_peak_bytes: int | None
    rss_peak_increase_bytes: int | None
    rss_high_water_increase_bytes: int | None
    parameter_bytes: int
    parameter_gradient_bytes: int
    wall_s_median: float
    wall_s_min: float
    wall_s_max: float
    max_grad_diff: float
    loss: float
    package_version: str = ""
    git_commit: str | None = None
    git_dirty: bool | None = None
    machine: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    timeline: list[list[int]] | None = None
    forward_events: int | None = None
    schedule: list[list[Any]] | None = None
    schema_version: int = SCHEMA_VERSION
    backend: str = "numpy"
    family: str = "chain"
    ops: int | None = None
    store_all_cost: float | None = None
    budget_bytes: int | None = None
    store_all_peak_bytes: int | None = None
    method: str | None = None
    status: str | None = None
    lower_bound: float | None = None
    bound_formulation: str | None = None
    bound_note: str | None = None
    solve_s: float | None = None
    graph: dict[str, Any] | None = None
    graph_steps: list[list[Any]] | None = None

    @property
    def n(self) -> int:
        return int(self.sizes["n"])

    @property
    def overhead(self) -> float | None:
        """A graph record's cost over store_all's (1.0: nothing recomputed), else None."""
        return self.forward_cost / self.store_all_cost if self.store_all_cost else None

    @property
    def gap(self) -> float | None:
        """cost / lower_bound - 1 where a positive bound is known, else None."""
        return self.forward_cost / self.lower_bound - 1 if self.lower_bound else None

    @property
    def label(self) -> str:
        """``policy(key=value, ...)`` with the parameters as given (``policy`` alone if none)."""
        return configuration_label(self.policy, self.params)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def identity(self) -> tuple[Any, ...]:
        """What makes two records the same point of a sweep (see :func:`point_identity`)."""
        return point_identity(self.experiment, self.workload, self.sizes, self.policy,
                              self.params, self.seed, self.dtype, self.costs, self.repeats,
                              self.backend, self.family)

    @classmethod
    def problem(cls, data: Any) -> str | None:
        """Why ``data`` (a parsed JSON value) is not a record of this schema, or None."""
        if not isinstance(data, dict):
            return f"expected a JSON object, got {type(data).__name__}"
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            return (f"schema_version {version!r} is not supported "
                    f"(this package reads version {SCHEMA_VERSION})")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        missing_default = dataclasses.MISSING
        required = {name for name, f in fields.items()
                    if f.default is missing_default and f.default_factory is missing_default}
        missing = sorted(required - set(data))
        if missing:
            shown = ", ".join(missing[:6]) + (", ..." if len(missing) > 6 else "")
            return (f"missing fields {shown}" if len(missing) <= 6
                    else f"missing {len(missing)} of the {len(required)} required fields: {shown}")
        unknown = sorted(set(data) - set(fields))
        if unknown:
            return f"unknown fields {', '.join(unknown)}"
        for name, value in data.items():
            if not _has_type(value, str(fields[name].type)):
                return f"field {name} must be {fields[name].type}, got {_shown(value)}"
        for name in ["sizes", *data]:  # sizes first: the schedule's check reads n
            problem = _value_problem(name, data[name], data)
            if problem is not None:
                return f"field {name}: {problem}"
        return None

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "record") -> Record:
        """A record from its JSON object; raises :class:`ExperimentError` if it is malformed."""
        problem = cls.problem(data)
        if problem is not None:
            raise ExperimentError(f"{source}: {problem}")
        return cls(**data)


_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,), "int": (int,), "float": (int, float), "bool": (bool,), "dict": (dict,),
    "list": (list,), "None": (type(None),), "Any": (object,)}


def _has_type(value: Any, annotation: str) -> bool:
    """Whether a JSON value fits a field annotation such as ``int | None`` or ``dict[str, Any]``
    (the outer type only; ``bool`` is not accepted as a number)."""
    for option in annotation.split("|"):
        base = option.strip().split("[", 1)[0]
        accepted = _TYPES.get(base, (object,))
        if isinstance(value, bool) and bool not in accepted and object not in accepted:
            continue
        if isinstance(value, accepted):
            return True
    return False


# -- values: one validator per field a report or a figure reads -----------------------------------

LARGEST_INT = 2**63 - 1  # what numpy and matplotlib take as an integer
UNSAFE_CHARACTER = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")  # control or lone surrogate


def _shown(value: Any) -> str:
    """``repr(value)`` cut to 80 characters (a damaged record may hold anything)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def plain_name_problem(name: Any) -> str | None:
    """Why ``name`` cannot be used as a file or folder name, or None: a plain name is a
    non-empty string without path separators, control characters (NUL included) or lone
    surrogates, and is not "." or ".."."""
    if not isinstance(name, str) or not name:
        return f"must be a non-empty name, got {_shown(name)}"
    if name in (".", "..") or "/" in name or "\\" in name or UNSAFE_CHARACTER.search(name):
        return (f"must be a plain name (no / or \\, no control characters, not . or ..), "
                f"got {_shown(name)}")
    return None


def _text_problem(value: Any) -> str | None:
    """Control characters and lone surrogates anywhere in the strings of ``value``."""
    if isinstance(value, str):
        return f"holds a control character or a lone surrogate: {_shown(value)}" \
            if UNSAFE_CHARACTER.search(value) else None
    items = value.items() if isinstance(value, dict) else enumerate(value) \
        if isinstance(value, list) else ()
    for key, item in items:
        problem = _text_problem(key) if isinstance(key, str) else None
        problem = problem or _text_problem(item)
        if problem:
            return problem
    return None


def _is_int(value: Any, least: int = 0) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)
            and least <= value <= LARGEST_INT)


def _is_number(value: Any, least: float = 0.0) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and least <= value <= LARGEST_INT)


def _count(least: int) -> Callable[[Any, dict[str, Any]], str | None]:
    def check(value: Any, data: dict[str, Any]) -> str | None:
        if value is None or _is_int(value, least):
            return None
        return f"must be a whole number from {least} to 2**63-1, got {_shown(value)}"
    return check


def _seconds(value: Any, data: dict[str, Any]) -> str | None:
    if not _is_number(value) or value <= 0:
        return f"must be a positive finite number of seconds, got {_shown(value)}"
    if not data.get("wall_s_min", 0) <= data.get("wall_s_median", 0) \
            <= data.get("wall_s_max", math.inf):
        return (f"times must satisfy wall_s_min <= wall_s_median <= wall_s_max, got "
                f"{data['wall_s_min']!r}, {data['wall_s_median']!r}, {data['wall_s_max']!r}")
    return None


def _positive(value: Any, data: dict[str, Any]) -> str | None:
    return None if _is_number(value) and value > 0 else \
        f"must be a positive finite number, got {_shown(value)}"


def _difference(value: Any, data: dict[str, Any]) -> str | None:
    return None if _is_number(value) else \
        f"must be a finite number >= 0, got {_shown(value)}"


def _sizes(value: dict[str, Any], data: dict[str, Any]) -> str | None:
    if data.get("family", "chain") == "chain" and not _is_int(value.get("n"), 1) \
            or "n" in value and not _is_int(value["n"], 1):
        return f"must hold a whole number n from 1 to 2**63-1, got {_shown(value)}"
    bad = [key for key, size in value.items() if not (_is_int(size, 1) or isinstance(size, str))]
    return f"size {bad[0]} must be a positive whole number or a name, got " \
           f"{_shown(value[bad[0]])}" if bad else None


def _scalars(value: dict[str, Any], data: dict[str, Any]) -> str | None:
    for key, item in value.items():
        if isinstance(item, bool) or item is None or isinstance(item, str):
            continue
        if not _is_number(item, -math.inf):
            return f"{key} must be a string, a finite number, true, false or null, got " \
                   f"{_shown(item)}"
    return None


def _bytes_by_kind(value: dict[str, Any], data: dict[str, Any]) -> str | None:
    bad = [kind for kind, size in value.items() if not _is_int(size)]
    return f"{bad[0]} must be a whole number of bytes >= 0, got {_shown(value[bad[0]])}" \
        if bad else None


def _plain_name(value: Any, data: dict[str, Any]) -> str | None:
    return plain_name_problem(value)


def _timeline(value: list[Any] | None, data: dict[str, Any]) -> str | None:
    if value is None:
        return None
    if not value:
        return "must be null or a non-empty list of [event, live bytes] pairs, got []"
    for index, entry in enumerate(value):
        if not (isinstance(entry, list) and len(entry) == 2 and all(map(_is_int, entry))):
            return (f"entry {index} must be [event, live bytes], two whole numbers >= 0, got "
                    f"{_shown(entry)}")
    return None


ACTIONS_WITH_END = ("advance",)


def _schedule(value: list[Any] | None, data: dict[str, Any]) -> str | None:
    if value is None:
        return None
    from ..chains.plans import Action  # the plan's own action names

    actions = {action.value for action in Action}
    n = data["sizes"]["n"]
    for index, entry in enumerate(value):
        if not isinstance(entry, list) or len(entry) != 3:
            return f"entry {index} must be [action, stage, end], got {_shown(entry)}"
        action, stage, end = entry
        if action not in actions:
            return f"entry {index}: unknown action {_shown(action)} (known: " \
                   f"{', '.join(sorted(actions))})"
        if not _is_int(stage) or stage > n:
            return f"entry {index}: stage must be a whole number from 0 to n={n}, got " \
                   f"{_shown(stage)}"
        if end is not None and not (_is_int(end) and end <= n):
            return f"entry {index}: end must be null or a whole number from 0 to n={n}, got " \
                   f"{_shown(end)}"
        if action in ACTIONS_WITH_END and (end is None or end < stage):
            return f"entry {index}: {action} needs an end >= its stage, got {_shown(entry)}"
    return None


FAMILIES = ("chain", "graph")


def _family(value: Any, data: dict[str, Any]) -> str | None:
    return None if value in FAMILIES else f"must be one of {', '.join(FAMILIES)}, got " \
                                          f"{_shown(value)}"


def _optional_number(value: Any, data: dict[str, Any]) -> str | None:
    return None if value is None or _is_number(value) else \
        f"must be null or a finite number >= 0, got {_shown(value)}"


def _graph(value: dict[str, Any] | None, data: dict[str, Any]) -> str | None:
    if value is None:
        return None
    parents, ops = value.get("parents"), value.get("ops")
    if sorted(value) != ["ops", "parents"] or not isinstance(parents, list) \
            or not isinstance(ops, list) or len(parents) != len(ops) or len(parents) < 2:
        return 'must be {"parents": [...], "ops": [...]}, two lists of one entry per node'
    for node, sources in enumerate(parents):
        if not isinstance(sources, list) or not all(_is_int(p) and p < node for p in sources):
            return f"parents of node {node} must be earlier nodes, got {_shown(sources)}"
    return None


def _graph_steps(value: list[Any] | None, data: dict[str, Any]) -> str | None:
    if value is None:
        return None
    from ..graphs.plans import GraphAction  # the plan's own action names

    actions = {action.value for action in GraphAction}
    nodes = len((data.get("graph") or {}).get("parents") or [])
    for index, entry in enumerate(value):
        if not (isinstance(entry, list) and len(entry) == 2 and entry[0] in actions
                and _is_int(entry[1]) and (not nodes or entry[1] < nodes)):
            return (f"entry {index} must be [action, node] with an action of "
                    f"{', '.join(sorted(actions))} and a node of the graph, got {_shown(entry)}")
    return None


FIELD_CHECKS: dict[str, Callable[[Any, dict[str, Any]], str | None]] = {
    "experiment": _plain_name, "sizes": _sizes, "params": _scalars, "plan_params": _scalars,
    "seed": _count(0), "repeats": _count(1), "forward_evals": _count(1), "peak_stored": _count(1),
    "forward_cost": _positive, "peak_bytes": _count(1), "peak_bytes_by_kind": _bytes_by_kind,
    "predicted_peak_bytes": _count(0), "measured_peak_bytes": _count(0),
    "rss_peak_increase_bytes": _count(-LARGEST_INT),
    "rss_high_water_increase_bytes": _count(-LARGEST_INT),
    "parameter_bytes": _count(0), "parameter_gradient_bytes": _count(0),
    "wall_s_median": _seconds, "wall_s_min": _seconds, "wall_s_max": _seconds,
    "max_grad_diff": _difference, "timeline": _timeline, "forward_events": _count(0),
    "schedule": _schedule, "family": _family, "ops": _count(1),
    "store_all_cost": _optional_number, "budget_bytes": _count(1),
    "store_all_peak_bytes": _count(0), "lower_bound": _optional_number,
    "solve_s": _optional_number, "graph": _graph, "graph_steps": _graph_steps}


GRAPH_FIELDS = ("ops", "store_all_cost", "store_all_peak_bytes")  # a graph record has them all


def _value_problem(name: str, value: Any, data: dict[str, Any]) -> str | None:
    """Why the (well-typed) field ``name`` holds a value no report can use, or None."""
    if name == "family" and value == "graph":
        missing = [field for field in GRAPH_FIELDS if data.get(field) is None]
        if missing:
            return f"a graph record needs {', '.join(missing)}"
    check = FIELD_CHECKS.get(name)
    problem = check(value, data) if check else None
    return problem or _text_problem(value)


def point_identity(experiment: str, workload: str, sizes: dict[str, Any], policy: str,
                   params: dict[str, Any], seed: int, dtype: str, costs: str,
                   repeats: int, backend: str = "numpy", family: str = "chain"
                   ) -> tuple[Any, ...]:
    """The identity of one measured point: the experiment, the workload and its resolved sizes,
    the policy and its resolved parameters (``budget_fraction`` already turned into
    ``budget_bytes``), the seed, dtype, cost mode, number of timed repeats, backend and workload
    family. Two records with
    the same identity measure the same thing (only timings and probed bytes may differ)."""
    return (experiment, workload, json.dumps(sizes, sort_keys=True), policy,
            json.dumps(params, sort_keys=True), seed, dtype, costs, repeats, backend, family)


def describe_identity(identity: tuple[Any, ...]) -> str:
    """A point's identity in words: ``fig69: chain n=4 width=1000 revolve(slots=8), seed 0,
    float64, model costs, 3 repeats``."""
    experiment, workload, sizes, policy, params, seed, dtype, costs, repeats, backend, family = \
        identity
    point = point_label(workload, json.loads(sizes), policy, json.loads(params))
    point = point if family == "chain" else f"graph {point}"
    return (f"{experiment}: {point}, seed {seed}, {dtype}, {costs} costs, {repeats} repeats"
            + ("" if backend == "numpy" else f", {backend} backend"))


def group_records(records: Iterable[Record], key: Callable[[Record], str]
                  ) -> dict[str, list[Record]]:
    """``records`` grouped by ``key(record)``; groups, and records within, in first-seen order."""
    groups: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        groups[key(record)].append(record)
    return dict(groups)


def configuration_label(policy: str, params: dict[str, Any], separator: str = ", ") -> str:
    """``policy(key=value, ...)``, or ``policy`` alone when there are no parameters."""
    if not params:
        return policy
    return f"{policy}({separator.join(f'{k}={v}' for k, v in params.items())})"


def point_label(workload: str, sizes: dict[str, Any], policy: str, params: dict[str, Any],
                separator: str = ", ") -> str:
    """``workload key=value ... policy(key=value, ...)``: one point, as messages name it."""
    sizes_text = " ".join(f"{k}={v}" for k, v in sizes.items())
    return f"{workload} {sizes_text} {configuration_label(policy, params, separator)}"


# -- environment --------------------------------------------------------------------------------

def machine_info() -> dict[str, Any]:
    """Platform, Python and numpy versions, processor and CPU count."""
    import numpy

    return {"platform": platform.platform(), "machine": platform.machine(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(), "numpy": numpy.__version__,
            "cpu_count": os.cpu_count()}


def _git(*arguments: str) -> str | None:
    """The output of ``git ARGUMENTS`` in the package's directory, or None on any failure."""
    try:
        done = subprocess.run(["git", *arguments], cwd=Path(__file__).parent,
                              capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_commit() -> str | None:
    """``git rev-parse HEAD`` in the package's directory, or None (not a checkout, no git)."""
    return _git("rev-parse", "HEAD") or None


def git_dirty() -> bool | None:
    """Whether tracked files differ from that commit (None when there is no checkout)."""
    status = _git("status", "--porcelain", "--untracked-files=no")
    return None if status is None else bool(status)


def environment() -> dict[str, Any]:
    """The fields every record of one run shares: package version, commit, machine."""
    from .. import __version__

    commit = git_commit()
    return {"package_version": __version__, "git_commit": commit,
            "git_dirty": git_dirty() if commit else None, "machine": machine_info()}

