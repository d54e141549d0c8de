"""``CheckpointedSequential``: a torch module whose forward and backward follow a plan.

The stages run through the chain executor over a :class:`TorchRunner`. ``forward`` runs the
plan up to its first reversal (holding stage n's tape, so that it can return ``x_n``) and
returns ``x_n`` attached to the caller's graph by a custom ``torch.autograd.Function``; that
function's backward runs the rest of the plan (the approach of the reentrant variant of
``torch.utils.checkpoint``), so ``loss.backward()`` works as in plain torch and parameter
gradients accumulate into ``.grad``. The plan is made once per input shape, dtype, device and
training mode and reused; ``.plan`` and ``.stats`` describe the last step.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from checkpoint_ad.chains import policies
from checkpoint_ad.chains.backprop import Stats
from checkpoint_ad.chains.executor import HOST_KINDS, Executor
from checkpoint_ad.chains.plans import Plan
from checkpoint_ad.chains.replay import predict_meter
from checkpoint_ad.plans.memory import Meter
from checkpoint_ad.torch.profile import (TorchChainCosts, as_modules, cuda_devices, device_of,
                                         profile)
from checkpoint_ad.torch.runner import TorchRunner, module_tensors, storage_bytes, storage_of


@dataclass(frozen=True)
class Prepared:
    """What one input signature needs: its costs (profile included), plan and prediction."""

    costs: TorchChainCosts
    plan: Plan
    predicted: Meter
    predicted_host: Meter


@dataclass(frozen=True)
class TorchStats(Stats):
    """:class:`Stats` of one step; ``measured_peak_bytes`` is None on the CPU and, on CUDA,
    ``torch.cuda.max_memory_allocated`` during the step over its start (everything the step
    allocates: activations, temporaries and parameter gradients)."""


class _Step:
    """One forward and backward through the executor (the state between the two)."""

    def __init__(self, owner: CheckpointedSequential, prepared: Prepared) -> None:
        self.owner, self.prepared = owner, prepared
        costs = prepared.costs
        self.device = torch.device(costs.device)
        self.runner = TorchRunner(owner.stages, costs.profile, costs.random_stages,
                                  cuda_devices(self.device), self.device)
        self.meter = Meter(record_timeline=False, buffer_root=storage_of)
        self.host_meter = Meter(False, HOST_KINDS, buffer_root=storage_of)
        self.executor = Executor(prepared.plan, self.runner, self.meter, self.host_meter)
        self.seconds = 0.0
        self.cuda_start = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self.cuda_start = torch.cuda.memory_allocated(self.device)
        began = time.perf_counter()
        output = self.executor.forward(x)
        self.seconds += time.perf_counter() - began
        return output

    def backward(self, cotangent: torch.Tensor) -> torch.Tensor:
        began = time.perf_counter()
        gradient = self.executor.reverse(lambda x_n: cotangent.contiguous())
        self.seconds += time.perf_counter() - began
        self.owner.stats = self._stats()
        return gradient

    def _stats(self) -> TorchStats:
        measured = None
        if self.device.type == "cuda":
            measured = torch.cuda.max_memory_allocated(self.device) - self.cuda_start
        tensors = module_tensors(self.owner.stages)
        gradients = [p.grad for p in tensors if isinstance(p, torch.nn.Parameter)
                     and p.grad is not None]
        return TorchStats(self.runner.evaluations, self.executor.peak_stored, self.meter.peak,
                          self.prepared.predicted.peak, measured, self.seconds,
                          dict(self.meter.peak_by_kind), storage_bytes(tensors),
                          storage_bytes(gradients), [], self.host_meter.peak,
                          self.prepared.predicted_host.peak)


class _Checkpointed(torch.autograd.Function):
    """Attaches ``x_n`` to the caller's graph; its backward runs the plan's reverse sweep.

    The parameters are inputs only so that the output requires grad whenever they do; their
    gradients reach ``.grad`` through the stages' own backward calls."""

    @staticmethod
    def forward(ctx: Any, step: _Step, x: torch.Tensor, *parameters: torch.Tensor
                ) -> torch.Tensor:
        ctx.step = step
        ctx.parameter_count = len(parameters)
        return step.forward(x)

    @staticmethod
    def backward(ctx: Any, cotangent: torch.Tensor) -> tuple:
        gradient = ctx.step.backward(cotangent)
        return (None, gradient) + (None,) * ctx.parameter_count


class CheckpointedSequential(torch.nn.Module):
    """Apply ``modules`` in sequence, storing and recomputing as ``policy`` plans.

    ``policy`` is any chain policy (``store_all``, ``recompute_all``, ``sqrt_n``, ``revolve``,
    ``optimal``) and ``params`` its parameters, e.g. ``budget_bytes`` for ``optimal``: the
    whole activation peak the Meter counts (checkpoints, held tapes, the working value and the
    cotangents; the last stage's tape, held to return ``x_n``, included), never exceeded; or
    ``slots`` (a slot budget may be exceeded by one: that last tape). The
    planner sees profiled forward times as costs (``costs="measure"``; or "unit", or a list of
    per-stage costs). After a step, ``plan`` is the plan that ran and ``stats`` its
    :class:`TorchStats` (evaluations; the Meter's peak of activation bytes, its split by kind
    and the prediction made before the run; on CUDA the allocator's peak too).

    ``bandwidth`` (with ``optimal`` and ``budget_bytes``, docs/chain_offload.md) lets the plan
    move held tapes and checkpoints to host memory: in bytes per cost unit, so bytes per
    second with measured costs (e.g. ``12e9`` for PCIe 3.0). On the CPU a host copy is a
    second buffer; on CUDA pinned memory, copied on a side stream. ``stats`` then reports the
    host copies' peak beside the device's (``host_peak_bytes``, and its prediction).

    Without autograd (``torch.no_grad()``, or neither input nor parameters requiring grad) the
    modules simply run in sequence.
    """

    def __init__(self, modules: Any, policy: str = "optimal", *, repeats: int = 3,
                 costs: str | Sequence[float] = "measure", **params: Any) -> None:
        super().__init__()
        self.stages = torch.nn.ModuleList(as_modules(modules))
        policies.get_policy(policy)
        self.policy, self.params, self.repeats, self.costs = policy, dict(params), repeats, costs
        self._prepared: dict[tuple, Prepared] = {}
        self.plan: Plan | None = None
        self.stats: TorchStats | None = None

    def prepare(self, x: torch.Tensor) -> Prepared:
        """Profile and plan for inputs like ``x`` (done once per signature, then reused)."""
        device_of(self.stages, x)
        key = (tuple(x.shape), x.dtype, x.device, self.training)
        prepared = self._prepared.get(key)
        if prepared is None:
            costs = profile(self.stages, x, repeats=self.repeats)
            if self.costs != "measure":
                costs = replace(costs, compute=costs.profile.costs(self.costs).compute,
                                backward_costs=())
            plan = policies.make_plan(self.policy, costs, **self.params)
            host = Meter(False, HOST_KINDS)
            predicted = predict_meter(plan, costs, host_meter=host)
            prepared = self._prepared[key] = Prepared(costs, plan, predicted, host)
        return prepared

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parameters = [p for p in self.stages.parameters() if p.requires_grad]
        if not torch.is_grad_enabled() or not (x.requires_grad or parameters):
            for module in self.stages:
                x = module(x)
            return x
        prepared = self.prepare(x)
        self.plan = prepared.plan
        return _Checkpointed.apply(_Step(self, prepared), x, *parameters)
