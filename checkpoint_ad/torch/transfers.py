"""Host copies for the torch runner (docs/chain_offload.md): a checkpoint or a held tape moved
to host memory and back.

A tape's saved tensors live in autograd's graph; the runner's pack hook gives the graph a
:class:`Saved` holder instead of the tensor, so that moving a tape swaps the tensors inside
the holders: the device tensors are dropped when the offload's step ends (nothing else holds
them) and fresh ones are put back by the prefetch. Each storage is copied once, whole, and
views are rebuilt on the copy (``set_`` with their offset, size and stride), so the Meter
counts the same bytes on either side. On the CPU a host copy is a second buffer (a clone); on
CUDA it is pinned CPU memory, and the copies run on a side stream that the step's end waits
for (:meth:`Mover.finish`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


class Saved:
    """What autograd holds for one saved tensor: a holder whose tensor can move."""

    __slots__ = ("tensor",)

    def __init__(self, tensor: torch.Tensor) -> None:
        self.tensor = tensor


@dataclass
class HostTape:
    """A held tape off the device: each holder's tensor, the output and the input leaf (when
    autograd saved it; ``shape`` is its shape), as host tensors (parameters stay where they
    are)."""

    saved: list[torch.Tensor]
    output: torch.Tensor | None
    leaf: torch.Tensor | None
    shape: tuple[int, ...]


class Mover:
    """Copies tensors between the device of the modules and host memory, storage by storage."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cuda = device.type == "cuda"
        self.stream = torch.cuda.Stream(device) if self.cuda else None

    def _storage(self, storage: Any, to_host: bool) -> Any:
        if not self.cuda:
            return storage.clone()
        with torch.cuda.stream(self.stream):
            if to_host:
                host = torch.empty(storage.nbytes(), dtype=torch.uint8, pin_memory=True)
                host.untyped_storage().copy_(storage, non_blocking=True)
                return host.untyped_storage()
            device = torch.empty(storage.nbytes(), dtype=torch.uint8, device=self.device)
            device.untyped_storage().copy_(storage, non_blocking=True)
            return device.untyped_storage()

    def copy(self, tensors: list[torch.Tensor | None], to_host: bool,
             keep: set | None = None) -> list[torch.Tensor | None]:
        """``tensors`` copied (None stays None; storages whose key is in ``keep`` are not
        copied), each storage once, views rebuilt on the copies."""
        if self.cuda and not to_host:
            self.stream.wait_stream(torch.cuda.current_stream(self.device))
        copies: dict[tuple, Any] = {}
        result: list[torch.Tensor | None] = []
        for tensor in tensors:
            if tensor is None:
                result.append(None)
                continue
            storage = tensor.untyped_storage()
            key = (str(storage.device), storage.data_ptr(), storage.nbytes())
            if keep is not None and key in keep:
                result.append(tensor)
                continue
            if key not in copies:
                copies[key] = self._storage(storage, to_host)
            copied = torch.empty(0, dtype=tensor.dtype, device=copies[key].device)
            copied.set_(copies[key], tensor.storage_offset(), tensor.size(), tensor.stride())
            result.append(copied.detach())
        return result

    def finish(self) -> None:
        """Wait for the copies of the step that ends (CUDA: the side stream)."""
        if self.cuda:
            torch.cuda.current_stream(self.device).wait_stream(self.stream)
            self.stream.synchronize()
