"""A validated experiment (:class:`Experiment`, its policy lines :class:`PolicyEntry`) and its
expansion into the point tasks of a sweep. Reading and checking experiment files is
:mod:`checkpoint_ad.lab.specs`."""
from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .points import PointTask
from .spec_checks import workload_spec


def fixed_sizes(sizes: Mapping[str, Any], workload: str | None) -> dict[str, Any]:
    """The fixed sizes of ``workload`` in an experiment's ``sizes``: the shared ones, and the
    table named after it over them."""
    shared = {k: v for k, v in sizes.items() if not isinstance(v, dict)}
    own = sizes.get(workload) if workload is not None else None
    return {**shared, **own} if isinstance(own, dict) else shared


def combinations(fixed: Mapping[str, Any], swept: Mapping[str, list[Any]]
                 ) -> list[dict[str, Any]]:
    """``fixed`` with one value of each array of ``swept``: every combination, the first key
    varying slowest."""
    keys = list(swept)
    return [{**fixed, **dict(zip(keys, values))}
            for values in itertools.product(*(swept[k] for k in keys))]


@dataclass(frozen=True)
class PolicyEntry:
    """One line of an experiment's policy list: a policy, fixed params, swept params."""

    policy: str
    params: dict[str, Any]
    sweep: dict[str, list[Any]]
    max_n: int | None = None
    max_ops: int | None = None

    def configurations(self) -> list[dict[str, Any]]:
        """The params of each configuration: the fixed ones with one value of each sweep."""
        return combinations(self.params, self.sweep)


@dataclass(frozen=True)
class Experiment:
    """A validated experiment spec (see :mod:`checkpoint_ad.lab.specs` for its format);
    ``source`` names its file."""

    name: str
    description: str
    workloads: tuple[str, ...]
    sizes: dict[str, Any]
    grid: dict[str, list[Any]]
    policies: tuple[PolicyEntry, ...]
    repeats: int = 3
    seed: int = 0
    dtype: str = "float64"
    costs: str = "model"
    detail: dict[str, Any] | None = None
    source: str = "<memory>"
    quick: bool = False
    family: str = "chain"
    parts: tuple["Experiment", ...] = ()  # more workloads (another family) run under its name

    @property
    def workload(self) -> str:
        """The workload's name (the names, comma-separated, when there are several)."""
        return ", ".join(self.workloads)

    def sizes_of(self, workload: str | None = None) -> dict[str, Any]:
        """The fixed sizes of ``workload``: the shared ones, and its own table in ``sizes``
        (``sizes = { width = 32, residual = { n = 16 } }``) over them."""
        return fixed_sizes(self.sizes, workload)

    def grid_points(self, workload: str | None = None) -> list[dict[str, Any]]:
        """Every size combination of ``workload`` (default: the first), the fixed sizes
        included, in the grid's order."""
        workload = workload or self.workloads[0]
        return combinations(self.sizes_of(workload), self.grid_of(workload))

    def grid_of(self, workload: str) -> dict[str, list[Any]]:
        """The grid ``workload`` sweeps: the shared arrays, and its own table in ``grid``
        (``grid = { residual = { n = [12, 50] } }``) over them."""
        shared = {k: v for k, v in self.grid.items() if not isinstance(v, dict)}
        own = self.grid.get(workload)
        return {**shared, **own} if isinstance(own, dict) else shared

    def detail_point(self, workload: str | None = None) -> dict[str, Any] | None:
        """The grid point of ``workload`` (default: the first) whose timeline and schedule are
        kept: ``detail``, or by default the one of smallest n >= 16 (else the largest)."""
        points = self.grid_points(workload)
        if self.detail is not None:
            return next((p for p in points if all(p.get(k) == v for k, v in self.detail.items())),
                        None)
        with_n = [p for p in points if "n" in p]
        if not with_n:
            return points[0] if points else None
        large = [p for p in with_n if p["n"] >= 16]
        return min(large, key=lambda p: p["n"]) if large else max(with_n, key=lambda p: p["n"])

    def tasks(self, env: Mapping[str, Any] | None = None) -> list[PointTask]:
        """One task per workload, grid point and policy configuration (in that order), skipping
        configurations above their ``max_n``; then the tasks of each of its ``parts``. Each
        policy's first configuration at the detail point keeps its timeline and schedule (every configuration, for graph experiments: a
        graph planner may find no plan at its first budget; and every chain configuration
        given a bandwidth: the offload report draws the plan where offload starts paying)."""
        env = dict(env or {})
        tasks = []
        for workload in self.workloads:
            tasks += self._workload_tasks(workload, env)
        for part in self.parts:
            tasks += part.tasks(env)
        return tasks

    def _workload_tasks(self, workload: str, env: dict[str, Any]) -> list[PointTask]:
        detail = self.detail_point(workload)
        default_n = workload_spec(self.family, workload).defaults().get("n")
        tasks = []
        for point in self.grid_points(workload):
            n = point.get("n", default_n)
            seen: set[str] = set()
            for entry in self.policies:
                if entry.max_n is not None and n is not None and n > entry.max_n:
                    continue
                for params in entry.configurations():
                    keep = point == detail and (self.family == "graph" or "bandwidth" in params
                                                or entry.policy not in seen)
                    seen.add(entry.policy)
                    tasks.append(PointTask(self.name, workload, point, entry.policy, params,
                                           self.seed, self.dtype, self.costs, self.repeats, keep,
                                           env, family=self.family, max_ops=entry.max_ops))
        return tasks
