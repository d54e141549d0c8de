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
import os
import platform
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

    * Counts: ``forward_evals`` (every stage evaluation, first sweep included), ``peak_stored``
      (checkpoints, x_0 included, plus held tapes), ``forward_cost`` (the sum over evaluations of
      the stage costs, normalised to a mean of 1 per stage, so it equals ``forward_evals`` for
      uniform chains).
    * Bytes: ``peak_bytes`` (the Meter's exact activation peak), ``peak_bytes_by_kind`` (that
      peak split into checkpoint/tape/working/cotangent), ``predicted_peak_bytes`` (the plan run
      symbolically before the real run), ``measured_peak_bytes`` (tracemalloc's peak over the
      run), ``rss_peak_increase_bytes`` (memory-profiler's sampled peak RSS minus the RSS before
      the run; coarse: runs shorter than the sampling interval show little),
      ``rss_high_water_increase_bytes`` (the kernel's RSS high-water mark of the worker process
      after the run minus the RSS before it; None where unavailable). Parameters and their
      gradients are apart: ``parameter_bytes``, ``parameter_gradient_bytes``.
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

    @property
    def n(self) -> int:
        return int(self.sizes["n"])

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
                              self.backend)

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
                return f"field {name} must be {fields[name].type}, got {value!r}"[:200]
        n = data["sizes"].get("n")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            return f"sizes must hold a positive integer n, got {data['sizes']!r}"[:200]
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


def point_identity(experiment: str, workload: str, sizes: dict[str, Any], policy: str,
                   params: dict[str, Any], seed: int, dtype: str, costs: str,
                   repeats: int, backend: str = "numpy") -> tuple[Any, ...]:
    """The identity of one measured point: the experiment, the workload and its resolved sizes,
    the policy and its resolved parameters (``budget_fraction`` already turned into
    ``budget_bytes``), the seed, dtype, cost mode, number of timed repeats and backend. Two records with
    the same identity measure the same thing (only timings and probed bytes may differ)."""
    return (experiment, workload, json.dumps(sizes, sort_keys=True), policy,
            json.dumps(params, sort_keys=True), seed, dtype, costs, repeats, backend)


def describe_identity(identity: tuple[Any, ...]) -> str:
    """A point's identity in words: ``fig69: chain n=4 width=1000 revolve(slots=8), seed 0,
    float64, model costs, 3 repeats``."""
    experiment, workload, sizes, policy, params, seed, dtype, costs, repeats, backend = identity
    point = point_label(workload, json.loads(sizes), policy, json.loads(params))
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

