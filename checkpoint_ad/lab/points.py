"""The vocabulary of a measured point, shared by the chain, graph and torch measurers: the task
(:class:`PointTask`), cost modes and backends, derived parameters (``budget_fraction``), and
the small pieces every record needs (gradient differences, timelines, plain parameters, the
worker's environment).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..chains import policies
from ..workloads import chain_models
from ..engine.backend import xp
from ..chains.chain import ChainProfile
from ..chains.replay import peak_bytes
from ..errors import ExperimentError, PolicyError
from ..records.schema import point_label
from .worker import THREAD_VARIABLES


COST_MODES = ("model", "unit", "measure")
DERIVED = {"budget_fraction": "budget_bytes"}  # experiment-level parameter -> policy parameter
TIMELINE_POINTS = 1000


@dataclass(frozen=True)
class PointTask:
    """Everything one measurement needs (picklable: it crosses into the worker process).

    ``params`` are the policy's parameters as the experiment gives them; ``budget_fraction``
    is translated to ``budget_bytes`` (a fraction of the bytes store_all holds) in the worker.
    ``costs`` is "model" (the workload's cost model, or unit costs when it has none), "unit"
    or "measure" (profiled seconds). ``max_memory`` (bytes, or None) makes the worker refuse,
    before running, a plan whose predicted activation peak exceeds it
    (:func:`~.preflight.check_points` refuses such points earlier; this guards the "measure"
    cost mode, whose plan depends on the worker's own timings). ``backend`` is "numpy" (the
    package's own engine) or "torch" (the workload rebuilt as torch modules, run by
    :class:`checkpoint_ad.torch.CheckpointedSequential`; see :func:`torch_backend`).
    ``family`` "graph" makes ``workload`` a graph workload planned by a graph policy (see
    :mod:`.graph_measure`). ``plan`` is the plan made before the run (preflight), which the
    worker runs instead of planning again (None: the worker plans; always so for chains with
    "measure" costs, whose plan depends on the worker's timings), and ``bound`` the lower bound
    of a graph point's budget (None: the worker finds it). ``max_ops``: a graph point whose
    traced graph has more ops is not planned (the policy line's ``max_ops``).
    """

    experiment: str
    workload: str
    sizes: dict[str, Any]
    policy: str
    params: dict[str, Any]
    seed: int = 0
    dtype: str = "float64"
    costs: str = "model"
    repeats: int = 3
    detail: bool = False
    environment: dict[str, Any] = field(default_factory=dict)
    max_memory: int | None = None
    backend: str = "numpy"
    family: str = "chain"
    plan: Any = None
    bound: Any = None
    max_ops: int | None = None

    @property
    def label(self) -> str:
        label = point_label(self.workload, self.sizes, self.policy, self.params, separator=",")
        return label if self.family == "chain" else f"graph {label}"


def planning_costs(workload: chain_models.Workload, mode: str) -> str | list[float]:
    """The ``costs`` argument of :func:`backprop` for cost mode ``mode``."""
    if mode not in COST_MODES:
        raise ExperimentError(f"costs must be one of {', '.join(COST_MODES)}, got {mode!r}")
    if mode == "model":
        return list(workload.stage_costs) if workload.stage_costs else "unit"
    return mode


def store_all_peak(profile: ChainProfile) -> int:
    """store_all's whole activation peak on the chain (bytes: checkpoints, held tapes, the
    working value and the cotangents, :func:`~..chains.replay.peak_bytes`), the reference for
    ``budget_fraction``, as for graphs."""
    costs = profile.costs()
    return peak_bytes(policies.make_plan("store_all", costs), costs)


def offload_fields(params: Mapping[str, Any], time: float, store_all_time: float,
                   stats: Any) -> dict[str, Any]:
    """A record's offload fields (docs/offload_model.md, docs/chain_offload.md), either
    family: the bandwidth the planner was given (bytes per cost unit, None if none), the
    plan's predicted time and store_all's (cost units), and its host peak predicted (the
    executor on sized placeholders) and measured by the host Meter (``stats``: the run's)."""
    bandwidth = params.get("bandwidth")
    return {"bandwidth": None if bandwidth is None else float(bandwidth),
            "predicted_time": float(time), "store_all_time": float(store_all_time),
            "predicted_host_peak_bytes": stats.predicted_host_peak_bytes,
            "host_peak_bytes": stats.host_peak_bytes}


def policy_parameters(policy: str, params: Mapping[str, Any],
                      profile: Callable[[], ChainProfile]) -> dict[str, Any]:
    """The chain policy's own parameters: ``budget_fraction`` becomes ``budget_bytes``."""
    return resolve_fractions(policy, params, policies.get_policy(policy).parameters,
                             lambda: store_all_peak(profile()))


def resolve_fractions(policy: str, params: Mapping[str, Any], accepted: Any,
                      reference: Callable[[], int]) -> dict[str, Any]:
    """``params`` with each derived parameter (``budget_fraction``) turned into its target
    (``budget_bytes``): that fraction of ``reference()`` bytes, rounded down. ``accepted`` are
    the policy's parameters; a target it lacks is refused with :class:`PolicyError`."""
    resolved = dict(params)
    for derived, target in DERIVED.items():
        if derived in resolved:
            if target not in {p.name for p in accepted}:
                raise PolicyError(f"policy {policy!r} has no {target} parameter, so "
                                  f"{derived} does not apply to it")
            resolved[target] = int(resolved.pop(derived) * reference())
    return resolved


def downsample(timeline: list[tuple[int, int]], limit: int = TIMELINE_POINTS) -> list[list[int]]:
    """At most ``limit`` points of a (event, bytes) timeline, keeping each bucket's minimum and
    maximum in order, so the peak survives."""
    if len(timeline) <= limit:
        return [[int(e), int(b)] for e, b in timeline]
    points = xp.asarray(timeline, dtype=xp.int64)
    kept: list[int] = []
    for chunk in xp.array_split(xp.arange(len(points)), limit // 2):
        values = points[chunk, 1]
        kept += sorted({int(chunk[xp.argmin(values)]), int(chunk[xp.argmax(values)])})
    return [[int(points[i, 0]), int(points[i, 1])] for i in kept]


def largest_difference(ours: list[Any], theirs: list[Any]) -> float:
    """The largest absolute difference between two lists of arrays (0.0: bit-identical)."""
    if len(ours) != len(theirs):
        raise ExperimentError("the two runs have different gradient structures")
    return max((float(xp.max(xp.abs(xp.asarray(a) - xp.asarray(b)), initial=0.0))
                for a, b in zip(ours, theirs)), default=0.0)


BACKENDS = ("numpy", "torch")


def check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ExperimentError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    return backend


def worker_environment(shared: Mapping[str, Any]) -> dict[str, Any]:
    """The run's shared environment, with this process's BLAS thread settings added."""
    environment = dict(shared)
    machine = dict(environment.get("machine", {}))
    machine["threads"] = {name: os.environ[name] for name in THREAD_VARIABLES
                          if name in os.environ}
    environment["machine"] = machine
    return environment


def plain_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-ready parameters (numpy scalars become Python numbers)."""
    return {k: v.item() if hasattr(v, "item") else v for k, v in params.items()}
