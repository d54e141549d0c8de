"""Measure points: each task by its family's measurer (chain, graph, or the torch backend), in
order, each in a fresh worker process.

A point's record is made by :func:`~.chain_measure.measure_chain_point` (chain workloads),
:func:`~.graph_measure.measure_graph_point` (graph workloads) or, for ``backend="torch"``,
:mod:`.torch_measure`; what they share is :mod:`.points`. :func:`run_points` starts a fresh worker
per point (:mod:`.worker`), so that one point's allocations never inflate the next one's peak.
Before any point runs, :func:`~.preflight.check_points` plans every point in this process, so
that a bad budget or parameter, or a point above ``max_memory``, is refused before anything runs
or is written.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from ..records.schema import Record
from ..errors import ExperimentError
from .chain_measure import measure_chain_point
from .graph_measure import measure_graph_point
from .points import PointTask
from .worker import call_in_worker, single_threaded_blas


def torch_backend() -> Any:
    """The torch backend's measuring module; one clear error when PyTorch is missing."""
    try:
        import torch  # noqa: F401  (only to learn whether it is installed)
    except ImportError:
        raise ExperimentError('--backend torch needs PyTorch, which is not installed: '
                              'pip install -e ".[torch]" in the repository\'s folder') from None
    from . import torch_measure
    return torch_measure


def measure_point(task: PointTask) -> Record:
    """Measure ``task`` in this process (see the module docstring for what runs)."""
    if task.backend == "torch":
        return torch_backend().measure_point(task)
    if task.family == "graph":
        return measure_graph_point(task)
    return measure_chain_point(task)


# -- many points ----------------------------------------------------------------------------------

def run_points(tasks: Iterable[PointTask], isolate: bool = True) -> Iterator[Record]:
    """Measure each task, in order; with ``isolate`` each in a fresh spawned process with
    single-threaded BLAS (see :func:`~.worker.single_threaded_blas`).

    A failing point raises (its error is the package's own when the user caused it); the
    records already yielded stay valid. An interrupt (KeyboardInterrupt) kills the running
    worker at once and propagates.
    """
    if not isolate:
        for task in tasks:
            yield measure_point(task)
        return
    for task in tasks:
        with single_threaded_blas():
            record = call_in_worker(measure_point, task, task.label)
        yield record
