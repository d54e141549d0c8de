"""The lab's measurement of one point on the torch backend (``--backend torch``).

The workload is rebuilt as torch modules with the same weights and input
(:func:`~checkpoint_ad.torch.models.from_workload`) and run by :class:`CheckpointedSequential`
with loss ``sum(x_n)``, as on the numpy backend. Measured as there (see
:mod:`.chain_measure`), except: the plan is made once, before the runs (the torch
profile's sizes; costs per the task's cost mode, "measure" being torch's forward times);
``measured_peak_bytes`` is None (tracemalloc does not see torch's allocations); and
``max_grad_diff`` compares with plain torch autograd on the same modules and input.
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch

from checkpoint_ad.chains.backprop import Result
from checkpoint_ad.errors import BudgetError
from ..workloads import chain_models
from .chain_measure import budget_fields, make_record
from .points import PointTask, planning_costs, policy_parameters, store_all_peak
from checkpoint_ad.lab.rss import rss_run
from ..records.schema import Record
from checkpoint_ad.torch.models import check_workload, from_workload  # noqa: F401 (preflight)
from checkpoint_ad.torch.module import CheckpointedSequential
from checkpoint_ad.torch.profile import profile


def _gradients(model: torch.nn.Module, x0: torch.Tensor) -> tuple[torch.Tensor, list[Any]]:
    """One step of ``sum(model(x0))``: the loss and the gradients (input, then parameters)."""
    model.zero_grad(set_to_none=True)
    x = x0.clone().requires_grad_(True)
    loss = model(x).sum()
    loss.backward()
    return loss.detach(), [x.grad] + [p.grad for p in model.parameters()]


def _max_difference(ours: list[Any], theirs: list[Any]) -> float:
    return max((float((a - b).abs().max()) if a.numel() else 0.0
                for a, b in zip(ours, theirs)), default=0.0)


def measure_point(task: PointTask) -> Record:
    """Measure ``task`` on torch modules in this process (see the module docstring)."""
    torch.set_num_threads(1)  # as the numpy backend's single-threaded BLAS
    workload = chain_models.build(task.workload, task.sizes, task.seed, task.dtype)
    stages, x0 = from_workload(workload)
    costs = planning_costs(workload, task.costs)
    sizes = profile(stages, x0)
    params = policy_parameters(task.policy, task.params, lambda: sizes.profile)
    model = CheckpointedSequential(stages, task.policy, costs=costs, **params)
    prepared = model.prepare(x0)
    if task.max_memory is not None and prepared.predicted.peak > task.max_memory:
        raise BudgetError(f"policy {task.policy!r} is predicted to hold "
                          f"{prepared.predicted.peak} bytes of activations at its peak, more "
                          f"than max_memory={task.max_memory}")
    step: Callable[[], Any] = lambda: _gradients(model, x0)  # noqa: E731
    rss_sampled, rss_high_water = rss_run(step)
    times = []
    for _ in range(max(1, task.repeats)):
        loss, ours = step()
        times.append(model.stats.wall_s)
    _, theirs = _gradients(torch.nn.Sequential(*copy.deepcopy(stages)), x0)
    result = Result(loss, ours[0], ours[1:], model.stats, model.plan)
    return make_record(task, workload, params, result, times, None, rss_sampled, rss_high_water,
                       _max_difference(ours, theirs), None,
                       budget_fields(workload, params, result, prepared.costs,
                                     store_all_peak(sizes.profile)))
