"""Probes of the resident set size over one run: memory-profiler's sampled peak and the
kernel's high-water mark (Linux). Coarse by nature (allocator slack, pages, sampling interval);
the Meter and tracemalloc give the exact numbers beside them.
"""
from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Callable
from typing import Any

RSS_INTERVAL_S = 0.002
MIB = 2**20


def _reset_high_water() -> bool:
    """Reset the kernel's peak-RSS counter of this process (Linux); False if unavailable."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _high_water_bytes() -> int | None:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _memory_usage() -> Callable[..., Any]:
    """memory-profiler's ``memory_usage``, imported without IPython: memory-profiler imports
    IPython's magics when it can, which costs half a second in every fresh worker."""
    blocked = "IPython" not in sys.modules
    if blocked:
        sys.modules["IPython"] = None  # type: ignore[assignment]  # makes the import fail fast
    try:
        from memory_profiler import memory_usage
    finally:
        if blocked:
            del sys.modules["IPython"]
    return memory_usage


def rss_run(run: Callable[[], Any]) -> tuple[int, int | None]:
    """``run()`` sampled by memory-profiler, and by the kernel's high-water mark where there
    is one: the sampled peak increase and the high-water increase (bytes)."""
    memory_usage = _memory_usage()
    before = memory_usage(-1, interval=RSS_INTERVAL_S, max_iterations=1)[0]
    exact = _reset_high_water()
    before_exact = _high_water_bytes() if exact else None
    before_children = set(multiprocessing.active_children())
    peak = memory_usage((run, (), {}), interval=RSS_INTERVAL_S, max_usage=True,
                        max_iterations=1)
    _join_new_children(before_children)
    after_exact = _high_water_bytes() if exact else None
    sampled = max(0, int((peak - before) * MIB))
    high_water = (None if before_exact is None or after_exact is None
                  else max(0, after_exact - before_exact))
    return sampled, high_water


def _join_new_children(before: set) -> None:
    """Wait for the sampling processes memory-profiler forked to end. It joins them for only a
    few intervals; one still alive holds every file the run had open, the output folder's lock
    included (a lock taken with ``flock`` is shared with forked children), and would refuse the
    next run into that folder for a moment after this one ended."""
    for child in set(multiprocessing.active_children()) - before:
        child.join()
