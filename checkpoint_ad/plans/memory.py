"""Memory accounting: the Meter (exact live bytes by kind, peak, timeline) and probes.

The executor tells the Meter what it *holds*: ``hold(key, arrays)``, ``release(key)``. A key
names one holding (a checkpoint, a held tape, the working value, a cotangent). The Meter counts
each underlying buffer once, however many holdings share it (a held tape that keeps its input
``x_{t-1}`` shares that buffer with the checkpoint ``x_{t-1}``), so ``live`` is the exact number
of bytes the executor keeps alive. Units are bytes throughout.

Each live buffer is attributed to one **kind**, the first in the Meter's ``kinds`` order among
its holders, so the kinds add up to the total (chains: :data:`KINDS`; graphs: values and
cotangents). Parameters and their gradients are never held here:
they are reported apart.
"""
from __future__ import annotations

import tracemalloc
from array import array
from collections.abc import Callable, Hashable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ..engine.backend import buffer_root

KINDS = ("checkpoint", "tape", "working", "cotangent")


class _Buffer:
    """One live buffer: its bytes, how many holdings of each kind keep it, and its kind (the
    first kind, in :data:`KINDS` order, with a holding)."""

    __slots__ = ("nbytes", "holders", "kind")

    def __init__(self, nbytes: int, kind: int, kinds: int) -> None:
        self.nbytes = nbytes
        self.holders = [0] * kinds
        self.holders[kind] = 1
        self.kind = kind


class Meter:
    """Exact live bytes of the activations an executor holds, with peak and timeline.

    ``timeline[k]`` is the live bytes after event k+1 (each hold or release is an event).
    ``buffer_root`` maps a held value to the object standing for its buffer (identity: the
    buffer; ``nbytes``: its bytes); the default follows numpy views to their base array.
    """

    def __init__(self, record_timeline: bool = True, kinds: tuple[str, ...] = KINDS,
                 buffer_root: Callable[[Any], Any] = buffer_root) -> None:
        self.kinds = kinds
        self._kind_index = {kind: index for index, kind in enumerate(kinds)}
        self._root = buffer_root
        self._buffers: dict[int, _Buffer] = {}
        self._objects: dict[int, Any] = {}  # keeps ids valid while buffers are held
        self._holdings: dict[Hashable, tuple[int, list[int]]] = {}
        self._by_kind = [0] * len(kinds)
        self.live = 0
        self.peak = 0
        self.peak_by_kind = dict.fromkeys(kinds, 0)
        self.timeline: array | None = array("q") if record_timeline else None
        self.events = 0

    @property
    def by_kind(self) -> dict[str, int]:
        """Live bytes by kind now (they add up to ``live``)."""
        return dict(zip(self.kinds, self._by_kind))

    def hold(self, key: Hashable, kind: str, arrays: Iterable[Any]) -> None:
        """Record that ``key`` (of ``kind``) keeps ``arrays`` alive; replaces a previous holding."""
        index = self._kind_index[kind]
        idents = []
        for root in map(self._root, arrays):
            ident = id(root)
            if ident not in idents:
                idents.append(ident)
                self._add(ident, root, index)
        old = self._holdings.get(key)
        self._holdings[key] = (index, idents)
        self._note()
        if old is not None:
            self._drop(*old)
            self._note()

    def release(self, key: Hashable) -> None:
        """Forget holding ``key`` (a no-op if it holds nothing)."""
        old = self._holdings.pop(key, None)
        if old is not None:
            self._drop(*old)
            self._note()

    def _add(self, ident: int, root: Any, kind: int) -> None:
        buffer = self._buffers.get(ident)
        if buffer is None:
            buffer = self._buffers[ident] = _Buffer(int(root.nbytes), kind, len(self.kinds))
            self._objects[ident] = root
            self.live += buffer.nbytes
            self._by_kind[kind] += buffer.nbytes
            return
        buffer.holders[kind] += 1
        if kind < buffer.kind:
            self._by_kind[buffer.kind] -= buffer.nbytes
            self._by_kind[kind] += buffer.nbytes
            buffer.kind = kind

    def _drop(self, kind: int, idents: list[int]) -> None:
        for ident in idents:
            buffer = self._buffers[ident]
            holders = buffer.holders
            holders[kind] -= 1
            if holders[kind] or kind != buffer.kind:
                continue
            self._by_kind[kind] -= buffer.nbytes
            successor = next((k for k in range(kind + 1, len(holders)) if holders[k]), None)
            if successor is None:
                del self._buffers[ident], self._objects[ident]
                self.live -= buffer.nbytes
            else:
                self._by_kind[successor] += buffer.nbytes
                buffer.kind = successor

    def transient(self, kind: str, extra: int) -> None:
        """A moment when ``extra`` more bytes of ``kind`` than now are live (a run of states
        summed up at once by a symbolic replay); it may raise the peak and adds no event."""
        if self.live + extra > self.peak:
            self.peak = self.live + extra
            self.peak_by_kind = dict(zip(self.kinds, self._by_kind))
            self.peak_by_kind[kind] += extra

    def _note(self) -> None:
        self.events += 1
        if self.live > self.peak:
            self.peak = self.live
            self.peak_by_kind = dict(zip(self.kinds, self._by_kind))
        if self.timeline is not None:
            self.timeline.append(self.live)


@dataclass(eq=False)
class Symbol:
    """A placeholder for an array of ``nbytes`` bytes: running an executor on placeholders
    predicts its Meter exactly (identity stands for the buffer)."""

    nbytes: int
    base = None


class TracemallocProbe:
    """Peak bytes allocated through Python's allocator between ``start`` and ``stop``; as a
    context manager (:func:`traced`) it stops even when the run inside raises."""

    def __init__(self) -> None:
        self._started_here = False
        self.baseline = 0
        self.peak = 0

    def start(self) -> None:
        if not tracemalloc.is_tracing():
            tracemalloc.start()
            self._started_here = True
        tracemalloc.reset_peak()
        self.baseline = tracemalloc.get_traced_memory()[0]

    def stop(self) -> int:
        """The peak over the baseline, in bytes."""
        self.peak = tracemalloc.get_traced_memory()[1] - self.baseline
        if self._started_here:
            tracemalloc.stop()
        return self.peak


@contextmanager
def traced(enabled: bool) -> Iterator[TracemallocProbe | None]:
    """tracemalloc around a run when ``enabled`` (else None), stopped when the run ends or
    raises (a failed run must not leave allocation tracing on for the rest of the process);
    the probe's ``peak`` holds the measurement afterwards."""
    if not enabled:
        yield None
        return
    probe = TracemallocProbe()
    probe.start()
    try:
        yield probe
    finally:
        probe.stop()
