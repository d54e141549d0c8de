"""The measurement record: its versioned schema, its identity, and the provenance it carries.

One :class:`Record` per grid point and policy configuration. Every record carries what is needed
to read it alone: the schema version, the experiment, the workload and its sizes, the policy and
its parameters, the seed and dtype, the package version, the git commit (when the package runs
from a git checkout; ``git_dirty`` says whether tracked files had changes) and the machine
(platform, Python, numpy, CPU count, BLAS thread settings of the worker). Units: bytes,
seconds, evaluations. :mod:`.files` reads and writes records files; :mod:`.fields` says what each field may
hold; :mod:`.provenance` finds the commit and the machine.
"""
from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import ExperimentError
from .fields import shown, value_problem

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
      null, ...]}) and ``graph_steps`` ([[action, node], ...], the plan). Graph records
      also keep the planner's own bound, ``plan_lower_bound`` (whatever it bounds: every plan
      for ``optimal`` and ``cpsat``, Checkmate's formulation for ``checkmate``; None for
      heuristics), and an anytime planner's ``trajectory`` ({"incumbents": [[seconds, cost],
      ...], "bounds": [[seconds, bound], ...]}, each better plan and each better bound of
      every plan, seconds since planning started; None for the others). Chain records
      measured since offload also hold ``budget_bytes``, ``store_all_peak_bytes`` and
      ``store_all_cost`` (n: their costs have a mean of 1).
    * Offload (docs/offload_model.md; None in records written before, and ``bandwidth`` None
      for a planner given none): ``bandwidth`` (bytes per cost unit between device and host
      the planner was given; 0: none), ``predicted_time`` (the plan's time in cost units:
      its steps' times, transfers overlapping compute), ``store_all_time`` (store_all's:
      every op once plus every backward step), ``predicted_host_peak_bytes`` (the replay's
      peak of host copies) and ``host_peak_bytes`` (the host Meter's, measured).
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
    bandwidth: float | None = None
    predicted_time: float | None = None
    store_all_time: float | None = None
    predicted_host_peak_bytes: int | None = None
    host_peak_bytes: int | None = None
    plan_lower_bound: float | None = None
    trajectory: dict[str, Any] | None = None

    @property
    def n(self) -> int:
        return int(self.sizes["n"])

    @property
    def overhead(self) -> float | None:
        """A record's cost over store_all's (1.0: nothing recomputed), None without
        ``store_all_cost``."""
        return self.forward_cost / self.store_all_cost if self.store_all_cost else None

    @property
    def time_overhead(self) -> float | None:
        """A record's predicted time over store_all's (1.0: as fast), None without it."""
        if self.predicted_time is None or not self.store_all_time:
            return None
        return self.predicted_time / self.store_all_time

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
            listed = ", ".join(missing[:6]) + (", ..." if len(missing) > 6 else "")
            return (f"missing fields {listed}" if len(missing) <= 6
                    else f"missing {len(missing)} of the {len(required)} required fields: {listed}")
        unknown = sorted(set(data) - set(fields))
        if unknown:
            return f"unknown fields {', '.join(unknown)}"
        for name, value in data.items():
            if not _has_type(value, str(fields[name].type)):
                return f"field {name} must be {fields[name].type}, got {shown(value)}"
        for name in ["sizes", *data]:  # sizes first: the schedule's check reads n
            problem = value_problem(name, data[name], data)
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
    """``policy(key=value, ...)``, or ``policy`` alone when there are no parameters; names
    are joined by + as on the command line (``save_ops(ops=matmul+tanh)``)."""
    if not params:
        return policy
    shown = {k: "+".join(map(str, v)) if isinstance(v, (list, tuple)) else v
             for k, v in params.items()}
    return f"{policy}({separator.join(f'{k}={v}' for k, v in shown.items())})"


def point_label(workload: str, sizes: dict[str, Any], policy: str, params: dict[str, Any],
                separator: str = ", ") -> str:
    """``workload key=value ... policy(key=value, ...)``: one point, as messages name it."""
    words = [workload, *(f"{k}={v}" for k, v in sizes.items()),
             configuration_label(policy, params, separator)]
    return " ".join(words)
