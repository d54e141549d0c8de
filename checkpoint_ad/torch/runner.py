"""A runner whose stages are ``torch.nn.Module`` objects, for the chain executor.

The executor (chains/executor.py) runs any plan over a runner; this one evaluates torch
modules. An advance runs the module under ``torch.no_grad()``. A tape runs it on a detached
copy of its input that requires grad, under ``torch.enable_grad()``, and keeps the stage's
autograd graph; its residuals are exactly the tensors autograd saves for the backward (seen
through ``torch.autograd.graph.saved_tensors_hooks``), parameters and buffers excluded. A
backward step calls ``torch.autograd.backward`` on the tape's output with the incoming
cotangent: parameter gradients accumulate into ``.grad`` as in plain torch, and the input's
gradient is the next cotangent.

The Meter counts torch storages: :func:`storage_of` maps a tensor to one :class:`Storage`
object per live storage (its ``nbytes``: the storage's bytes), so views and aliases count once.

Random stages (found by the profile) draw the same numbers on every evaluation of one step:
the RNG state (CPU, and CUDA on the devices the modules use) is recorded before a stage's first
evaluation and restored around every recomputation, which leaves the global RNG as it was.
"""
from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from checkpoint_ad.chains.chain import ChainProfile
from checkpoint_ad.errors import StageError
from checkpoint_ad.torch.transfers import HostTape, Mover, Saved

# torch.autograd.backward accepts a GradientEdge from torch 2.7 on: a tape then needs only the
# edge, not its output tensor. Before, the tape keeps its output (the profile says so).
EDGE_BACKWARD = tuple(int(part) for part in torch.__version__.split(".")[:2]) >= (2, 7)


class Storage:
    """One torch storage as the Meter sees it: its identity and ``nbytes`` (bytes)."""

    __slots__ = ("storage", "nbytes", "__weakref__")
    base = None

    def __init__(self, storage: Any) -> None:
        self.storage = storage  # keeps the storage, hence its address, alive while counted
        self.nbytes = int(storage.nbytes())


_STORAGES: weakref.WeakValueDictionary[tuple, Storage] = weakref.WeakValueDictionary()


def storage_key(tensor: torch.Tensor) -> tuple[str, int, int]:
    """What identifies ``tensor``'s storage while it lives: device, address and bytes."""
    storage = tensor.untyped_storage()
    return str(storage.device), storage.data_ptr(), storage.nbytes()


def storage_of(tensor: torch.Tensor) -> Storage:
    """The one :class:`Storage` standing for ``tensor``'s storage while anyone holds it."""
    key = storage_key(tensor)
    found = _STORAGES.get(key)
    if found is None:
        found = _STORAGES[key] = Storage(tensor.untyped_storage())
    return found


def storage_bytes(tensors: Sequence[torch.Tensor]) -> int:
    """Bytes of the distinct storages behind ``tensors`` (each storage once)."""
    return sum(key[2] for key in set(map(storage_key, tensors)))


def stage_name(module: torch.nn.Module, t: int) -> str:
    return f"stage {t} ({type(module).__name__})"


def call_stage(module: torch.nn.Module, t: int, x: torch.Tensor) -> torch.Tensor:
    """``module(x)``, refusing non-tensor outputs and in-place changes of the input."""
    version = x._version
    try:
        output = module(x)
    except RuntimeError as error:
        if "in-place" not in str(error):
            raise
        raise StageError(f"{stage_name(module, t)} modifies its input in place (e.g. "
                         "inplace=True); checkpointed stages must leave their input intact") \
            from error
    if not isinstance(output, torch.Tensor):
        raise StageError(f"{stage_name(module, t)} returned {type(output).__name__}; a "
                         "checkpointed stage must return one tensor")
    if x._version != version:
        raise StageError(f"{stage_name(module, t)} modified its input in place (e.g. "
                         "inplace=True); checkpointed stages must leave their input intact")
    return output


@dataclass
class TorchTape:
    """One taped evaluation: the input leaf, the output (None once not kept), what backward
    starts from (a gradient edge, or the output itself before torch 2.7), the saved tensors
    (parameters left out), and the holders autograd keeps them in (:mod:`.transfers`)."""

    leaf: torch.Tensor
    output: torch.Tensor | None
    start: Any
    residuals: list[torch.Tensor]
    holders: list[Saved]


def tape_stage(module: torch.nn.Module, t: int, x: torch.Tensor, excluded: set[int],
               keep_output: bool = True) -> TorchTape:
    """Evaluate stage t with autograd on, recording what it saves (storages in ``excluded``,
    the parameters' keys, left out; each storage once)."""
    leaf = x.detach().requires_grad_(True)
    holders: list[Saved] = []

    def pack(tensor: torch.Tensor) -> Saved:
        holders.append(Saved(tensor))
        return holders[-1]

    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, _unpack):
        output = call_stage(module, t, leaf)
        if storage_key(output) == storage_key(leaf):
            output = output.clone()  # a view of the input: every state owns its storage
    if output.grad_fn is None:
        raise StageError(f"{stage_name(module, t)} returned a tensor outside autograd's graph "
                         "(detached or constant); a checkpointed stage must compute its output "
                         "from its input or parameters")
    start = torch.autograd.graph.get_gradient_edge(output) if EDGE_BACKWARD else output
    taped = TorchTape(leaf, output.detach() if keep_output else None, start, [], holders)
    taped.residuals = saved_residuals(taped, excluded, output)
    return taped


def saved_residuals(taped: TorchTape, excluded: set, output: torch.Tensor | None = None
                    ) -> list[torch.Tensor]:
    """The tensors ``taped``'s holders keep, each storage once, those in ``excluded`` (the
    parameters' storages) left out; before torch 2.7 the output too (backward starts there)."""
    residuals = list({key: holder.tensor for holder in taped.holders
                      if (key := storage_key(holder.tensor)) not in excluded}.values())
    if not EDGE_BACKWARD and output is not None and \
            storage_key(output) not in map(storage_key, residuals):
        residuals.append(output)
    return residuals


def _unpack(holder: Saved) -> torch.Tensor:
    return holder.tensor


def module_tensors(modules: Sequence[torch.nn.Module]) -> list[torch.Tensor]:
    """Every parameter and buffer of the modules (each once)."""
    found = {id(tensor): tensor for module in modules
             for tensor in [*module.parameters(), *module.buffers()]}
    return list(found.values())


class RandomReplay:
    """Records the RNG state before a random stage's first evaluation and replays it on every
    later one, leaving the global RNG untouched by recomputations."""

    def __init__(self, random_stages: Sequence[int], cuda_devices: Sequence[int]) -> None:
        self.random = set(random_stages)
        self.devices = list(cuda_devices)
        self.states: dict[int, tuple[torch.Tensor, list[torch.Tensor]]] = {}

    def evaluate(self, module: torch.nn.Module, t: int, x: torch.Tensor, evaluate: Any) -> Any:
        if t not in self.random:
            return evaluate(module, t, x)
        if t not in self.states:
            self.states[t] = (torch.get_rng_state(),
                              [torch.cuda.get_rng_state(d) for d in self.devices])
            return evaluate(module, t, x)
        cpu, cuda = self.states[t]
        with torch.random.fork_rng(devices=self.devices):
            torch.set_rng_state(cpu)
            for device, state in zip(self.devices, cuda):
                torch.cuda.set_rng_state(state, device)
            return evaluate(module, t, x)


class TorchRunner:
    """Evaluates torch modules for the executor (see the module docstring).

    Every output is checked against the profile (same shape and dtype); ``evaluations`` counts
    stage evaluations, taped or not.
    """

    def __init__(self, modules: Sequence[torch.nn.Module], profile: ChainProfile,
                 random_stages: Sequence[int], cuda_devices: Sequence[int],
                 device: torch.device | None = None) -> None:
        self.modules, self.profile = list(modules), profile
        self.excluded = {storage_key(p) for p in module_tensors(self.modules)}
        self.replay = RandomReplay(random_stages, cuda_devices)
        self.mover = Mover(device if device is not None else torch.device("cpu"))
        self.evaluations = 0

    def _checked(self, t: int, output: torch.Tensor) -> torch.Tensor:
        self.evaluations += 1
        expected = self.profile.stages[t - 1]
        if tuple(output.shape) != expected.shape or str(output.dtype) != expected.dtype:
            raise StageError(f"{stage_name(self.modules[t - 1], t)} returned shape "
                             f"{tuple(output.shape)} {output.dtype}, but {expected.shape} "
                             f"{expected.dtype} when profiled (a stage whose output shape "
                             "changes between calls cannot be checkpointed)")
        return output

    def own_input(self, x0: torch.Tensor) -> torch.Tensor:
        return x0.detach()

    def _advance(self, module: torch.nn.Module, t: int, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            output = call_stage(module, t, x)
        if storage_key(output) == storage_key(x) or storage_key(output) in self.excluded:
            output = output.clone()  # every state owns its storage, as the prediction assumes
        return output

    def advance(self, t: int, x: torch.Tensor) -> torch.Tensor:
        return self._checked(t, self.replay.evaluate(self.modules[t - 1], t, x, self._advance))

    def tape(self, t: int, x: torch.Tensor, keep_output: bool = True) -> TorchTape:
        def evaluate(module: torch.nn.Module, t: int, x: torch.Tensor) -> TorchTape:
            return tape_stage(module, t, x, self.excluded, keep_output=True)
        taped = self.replay.evaluate(self.modules[t - 1], t, x, evaluate)
        self._checked(t, taped.output)
        if not keep_output:
            taped.output = None
        return taped

    def output(self, taped: TorchTape) -> torch.Tensor | None:
        return taped.output

    def residuals(self, taped: TorchTape) -> list[torch.Tensor]:
        return taped.residuals

    def backward(self, t: int, taped: TorchTape, cotangent: torch.Tensor) -> torch.Tensor:
        torch.autograd.backward(taped.start, cotangent)
        gradient = taped.leaf.grad
        return torch.zeros_like(taped.leaf) if gradient is None else gradient

    # -- transfers (docs/chain_offload.md, :mod:`.transfers`) --------------------------------

    def copy(self, value: torch.Tensor) -> torch.Tensor:
        """A state's copy: to the host from the device, or back (on the CPU, a clone)."""
        return self.mover.copy([value], to_host=value.device.type != "cpu")[0]

    def offload_tape(self, taped: TorchTape) -> HostTape:
        if not EDGE_BACKWARD:
            raise StageError(f"moving a held tape to host memory needs torch 2.7 or later "
                             f"(gradient edges), not {torch.__version__}")
        saved = {storage_key(holder.tensor) for holder in taped.holders}
        leaf = taped.leaf.detach() if storage_key(taped.leaf) in saved else None
        moved = self.mover.copy([h.tensor for h in taped.holders] + [taped.output, leaf],
                                to_host=True, keep=self.excluded)
        return HostTape(moved[:-2], moved[-2], moved[-1], tuple(taped.leaf.shape))

    def host_arrays(self, host: HostTape) -> list[torch.Tensor]:
        return [tensor for tensor in host.saved + [host.output, host.leaf]
                if tensor is not None and storage_key(tensor) not in self.excluded]

    def release_tape(self, taped: TorchTape) -> None:
        """Drop the device tensors of a tape that left (the holders keep the parameters)."""
        for holder in taped.holders:
            if storage_key(holder.tensor) not in self.excluded:
                holder.tensor = None
        taped.residuals, taped.output = [], None
        taped.leaf.data = torch.empty(0, dtype=taped.leaf.dtype, device=taped.leaf.device)

    def prefetch_tape(self, taped: TorchTape, host: HostTape) -> TorchTape:
        moved = self.mover.copy(host.saved + [host.output, host.leaf], to_host=False,
                                keep=self.excluded)
        for holder, tensor in zip(taped.holders, moved):
            holder.tensor = tensor
        taped.output = moved[-2]
        # an input autograd did not save is never read: a zero-stride stand-in of its shape
        taped.leaf.data = moved[-1] if moved[-1] is not None else torch.zeros(
            (), dtype=taped.leaf.dtype, device=self.mover.device).expand(host.shape)
        taped.residuals = saved_residuals(taped, self.excluded)
        return taped

    def finish_transfers(self) -> None:
        self.mover.finish()
