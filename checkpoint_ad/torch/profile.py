"""Profiling a chain of torch modules: what a planner may know of it (:class:`TorchChainCosts`).

Per stage: the forward time (seconds, the median of ``repeats`` evaluations under
``torch.no_grad()``), the output's bytes, and the exact bytes the stage saves for its backward
(the tensors ``saved_tensors_hooks`` sees in one taped evaluation, each storage once,
parameters and buffers excluded: they are counted apart), and whether it draws random numbers
(the CPU or CUDA RNG state changed). Profiling leaves the global RNG and the modules' buffers
(e.g. batch-norm statistics) as they were.
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from checkpoint_ad.chains.chain import ChainProfile, StageProfile
from ..chains.costs import ChainCosts
from checkpoint_ad.errors import StageError
from checkpoint_ad.torch.runner import call_stage, module_tensors, storage_key, tape_stage


@dataclass(frozen=True)
class TorchChainCosts(ChainCosts):
    """:class:`ChainCosts` (``compute`` in seconds) plus what the torch runner needs.

    ``saved_bytes[t-1]``: bytes stage t saves for its backward (its input and output included
    when saved); ``random_stages``: the stages (1-based) that draw random numbers;
    ``profile``: the sizes the stages showed when profiled; ``device``: the modules'. The
    module returns ``x_n`` before its cotangent is known, so ``returns_output`` is True.
    """

    saved_bytes: tuple[int, ...] = ()
    random_stages: tuple[int, ...] = ()
    profile: ChainProfile | None = field(default=None, repr=False, compare=False)
    device: str = "cpu"


def as_modules(modules: Any) -> list[torch.nn.Module]:
    """A list of modules from an ``nn.Sequential`` or a sequence of modules."""
    if isinstance(modules, (torch.nn.Sequential, torch.nn.ModuleList)):
        modules = list(modules)
    if (isinstance(modules, torch.nn.Module) or not isinstance(modules, Sequence)
            or not all(isinstance(m, torch.nn.Module) for m in modules)):
        raise StageError(f"modules must be an nn.Sequential or a list of nn.Module, got "
                         f"{type(modules).__name__}")
    if not modules:
        raise StageError("modules: a chain needs at least one module")
    return list(modules)


def device_of(modules: Sequence[torch.nn.Module], x: torch.Tensor) -> torch.device:
    """The one device of the modules' parameters and buffers and of ``x``."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise StageError(f"the input must be a floating-point tensor, got "
                         f"{getattr(x, 'dtype', type(x).__name__)}")
    devices = {tensor.device for tensor in module_tensors(modules)} | {x.device}
    if len(devices) > 1:
        names = ", ".join(sorted(str(d) for d in devices))
        raise StageError(f"the modules and the input must be on one device, found: {names}")
    return x.device


def cuda_devices(device: torch.device) -> list[int]:
    """The CUDA devices whose RNG a random stage may draw from."""
    if device.type != "cuda":
        return []
    return [torch.cuda.current_device() if device.index is None else device.index]


def _rng_state(devices: Sequence[int]) -> list[torch.Tensor]:
    return [torch.get_rng_state()] + [torch.cuda.get_rng_state(d) for d in devices]


def _set_rng_state(devices: Sequence[int], states: Sequence[torch.Tensor]) -> None:
    torch.set_rng_state(states[0])
    for device, state in zip(devices, states[1:]):
        torch.cuda.set_rng_state(state, device)


def _median_seconds(module: torch.nn.Module, t: int, x: torch.Tensor, repeats: int,
                    devices: Sequence[int], start: Sequence[torch.Tensor]) -> float:
    seconds = []
    for _ in range(repeats):
        _set_rng_state(devices, start)
        if devices:
            torch.cuda.synchronize()
        began = time.perf_counter()
        with torch.no_grad():
            call_stage(module, t, x)
        if devices:
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - began)
    return statistics.median(seconds)


def _profile_stage(module: torch.nn.Module, t: int, x: torch.Tensor, excluded: set[int],
                   repeats: int, devices: Sequence[int]
                   ) -> tuple[StageProfile, int, bool, torch.Tensor]:
    """Stage t's profile, saved bytes, whether it is random, and its output (detached)."""
    start = _rng_state(devices)
    taped = tape_stage(module, t, x, excluded)
    random = any(not torch.equal(a, b) for a, b in zip(start, _rng_state(devices)))
    seconds = _median_seconds(module, t, x, repeats, devices, start)
    output = taped.output
    saved = set(map(storage_key, taped.residuals))
    ends = (storage_key(x), storage_key(output))
    private = sum(key[2] for key in saved - set(ends))
    stage = StageProfile(ends[1][2], tuple(output.shape), str(output.dtype), private,
                         ends[0] in saved, ends[1] in saved, seconds)
    return stage, sum(key[2] for key in saved), random, output


def profile(modules: Any, x: torch.Tensor, *, repeats: int = 3) -> TorchChainCosts:
    """Profile the chain ``modules`` (an ``nn.Sequential`` or a list) on the input ``x``."""
    modules = as_modules(modules)
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise StageError(f"repeats must be a positive integer, got {repeats!r}")
    device = device_of(modules, x)
    devices = cuda_devices(device)
    excluded = set(map(storage_key, module_tensors(modules)))
    buffers = [(b, b.clone()) for m in modules for b in m.buffers()]
    x = x.detach()
    input_bytes = storage_key(x)[2]
    stages, saved, random = [], [], []
    with torch.random.fork_rng(devices=devices):
        for t, module in enumerate(modules, 1):
            stage, saved_bytes, draws, x = _profile_stage(module, t, x, excluded, repeats,
                                                          devices)
            stages.append(stage)
            saved.append(saved_bytes)
            random += [t] if draws else []
    with torch.no_grad():
        for buffer, value in buffers:
            buffer.copy_(value)
    chain = ChainProfile(input_bytes, tuple(stages))
    costs = chain.costs([max(s.seconds, 1e-9) for s in stages])
    return TorchChainCosts(costs.n, costs.compute, costs.state_bytes, costs.tape_bytes,
                           costs.tape_input_bytes, costs.tape_keeps_output, returns_output=True,
                           saved_bytes=tuple(saved), random_stages=tuple(random), profile=chain,
                           device=str(device))
