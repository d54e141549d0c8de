"""Host copies for the array runner (docs/offload_model.md, section "Chains"): a checkpoint or
a held tape offloaded is copied into buffers of its own, and copied back when prefetched.

Each buffer is copied once, whole (a view is rebuilt on the copy of its buffer), so the Meter
counts the same bytes on the host and, after a prefetch, on the device as before the offload;
a tape's parameters are never copied (they are counted apart and stay where they are).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..engine.backend import ARRAY_TYPES, buffer_root, xp
from .chain import TapedStage


class Copier:
    """Copies arrays buffer by buffer: two arrays sharing a buffer share its copy."""

    def __init__(self, keep: set[int]) -> None:
        self.keep = keep  # ids of buffers never copied (parameters)
        self.roots: dict[int, Any] = {}

    def __call__(self, array: Any) -> Any:
        if not isinstance(array, ARRAY_TYPES):
            return array
        root = buffer_root(array)
        if id(root) in self.keep:
            return array
        copied = self.roots.get(id(root))
        if copied is None:
            copied = self.roots[id(root)] = xp.array(root, copy=True)
            copied.flags.writeable = False
        if root is array:
            return copied
        offset = (array.__array_interface__["data"][0]
                  - root.__array_interface__["data"][0])
        view = xp.ndarray(array.shape, array.dtype, buffer=copied, offset=offset,
                          strides=array.strides)
        view.flags.writeable = False
        return view


def copy_array(array: Any) -> Any:
    """A read-only copy of ``array`` in a buffer of its own (its whole buffer copied)."""
    return Copier(set())(array)


@dataclass
class HostTape:
    """A held tape's arrays copied off the device: each node's residuals, and the output."""

    residuals: list[tuple]
    output: Any
    keep: set[int]

    def arrays(self) -> list[Any]:
        """The copies (parameters left out: they were not copied)."""
        found = [r for residuals in self.residuals for r in residuals
                 if isinstance(r, ARRAY_TYPES) and id(buffer_root(r)) not in self.keep]
        return found + ([] if self.output is None else [self.output])


def copy_tape_arrays(taped: TapedStage, keep: set[int]) -> HostTape:
    """The arrays of ``taped`` copied (parameters, whose buffer ids are ``keep``, left as they
    are)."""
    copier = Copier(keep)
    residuals = [tuple(copier(r) for r in node.residuals) for node in taped.tape.nodes]
    output = None if taped.output_value is None else copier(taped.output_value)
    return HostTape(residuals, output, keep)


def strip_tape(taped: TapedStage) -> None:
    """Release the device arrays of ``taped`` (its nodes keep their structure)."""
    for node in taped.tape.nodes:
        node.residuals = ()
    taped.output_value = None


def install_tape(taped: TapedStage, host: HostTape, keep: set[int]) -> TapedStage:
    """Put fresh copies of ``host``'s arrays back into ``taped``; returns it."""
    fresh = copy_tape_arrays(TapedStage(_Holder(host.residuals), taped.input, taped.params,
                                        taped.output, host.output), keep)
    for node, residuals in zip(taped.tape.nodes, fresh.residuals):
        node.residuals = residuals
    taped.output_value = fresh.output
    return taped


class _Holder:
    """Stands for a tape whose nodes' residuals are ``residuals`` (for copying them)."""

    def __init__(self, residuals: list[tuple]) -> None:
        self.nodes = [_Residuals(r) for r in residuals]


@dataclass
class _Residuals:
    residuals: tuple
