"""The anytime record of a search: when each better plan was found (its cost) and when each
better lower bound was proven, in seconds since the call started. :mod:`.cpsat` keeps one and
puts it in ``plan.details["trajectory"]``; reports draw it as cost and bound against solve
time (docs/graphs.md)."""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field

MOST_POINTS = 40  # per series in the details: enough for a curve, small in a record


@dataclass
class Trajectory:
    """Improvements of the best cost (``incumbents``) and of the best lower bound
    (``bounds``), each a list of (seconds since ``started``, value), values strictly
    decreasing and increasing respectively. Safe to feed from the solver's threads."""

    started: float
    incumbents: list[tuple[float, float]] = field(default_factory=list)
    bounds: list[tuple[float, float]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def incumbent(self, cost: float) -> None:
        """A plan of ``cost`` was found now (kept when cheaper than every earlier one)."""
        with self.lock:
            if not self.incumbents or cost < self.incumbents[-1][1] - 1e-9:
                self.incumbents.append((time.perf_counter() - self.started, float(cost)))

    def bound(self, value: float, at: float | None = None) -> None:
        """``value`` was proven a lower bound of every plan now (or at ``at``, a
        ``time.perf_counter()`` value); kept when above every earlier one."""
        if not math.isfinite(value):
            return
        at = time.perf_counter() if at is None else at
        with self.lock:
            if not self.bounds or value > self.bounds[-1][1] + 1e-9:
                self.bounds.append((max(0.0, at - self.started), float(value)))

    def details(self) -> dict[str, list[list[float]]]:
        """JSON-ready: ``{"incumbents": [[seconds, cost], ...], "bounds": [[seconds, bound],
        ...]}``, each at most :data:`MOST_POINTS` points (the first and last kept), seconds
        rounded to milliseconds."""
        with self.lock:
            return {"incumbents": _thinned(self.incumbents), "bounds": _thinned(self.bounds)}


def _thinned(points: list[tuple[float, float]]) -> list[list[float]]:
    """At most :data:`MOST_POINTS` of ``points``, evenly spread, the first and last kept."""
    if len(points) > MOST_POINTS:
        step = (len(points) - 1) / (MOST_POINTS - 1)
        points = [points[round(k * step)] for k in range(MOST_POINTS)]
    return [[round(seconds, 3), value] for seconds, value in points]
