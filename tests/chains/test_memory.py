"""The Meter counts every buffer once, attributes it to one kind, and tracks peak and timeline."""
from __future__ import annotations

import numpy as np
import pytest

from checkpoint_ad.plans.memory import Meter


def test_a_buffer_held_twice_counts_once_and_moves_between_kinds() -> None:
    meter = Meter()
    x, y = np.zeros(10), np.zeros(5)  # 80 and 40 bytes
    meter.hold("tape 1", "tape", [x, y, x[2:]])  # a view of x is x's buffer
    assert (meter.live, meter.by_kind["tape"]) == (120, 120)
    meter.hold("checkpoint 1", "checkpoint", [x])
    assert meter.live == 120
    assert meter.by_kind == {"checkpoint": 80, "tape": 40, "working": 0, "cotangent": 0}
    meter.release("checkpoint 1")
    assert meter.by_kind["tape"] == 120 and meter.by_kind["checkpoint"] == 0
    meter.release("tape 1")
    assert meter.live == 0 and meter.peak == 120
    assert list(meter.timeline) == [120, 120, 120, 0]


def test_replacing_a_holding_counts_both_at_the_peak() -> None:
    meter = Meter(record_timeline=False)
    meter.hold("working", "working", [np.zeros(4)])
    meter.hold("working", "working", [np.zeros(4)])  # new value computed before the old goes
    assert (meter.live, meter.peak, meter.timeline) == (32, 64, None)
    assert meter.peak_by_kind["working"] == 64


def test_a_run_that_raises_leaves_no_allocation_tracing_on(monkeypatch) -> None:
    import tracemalloc
    import checkpoint_ad as ca
    from checkpoint_ad.graphs import backprop as graph_backprop
    calls = []

    def fails_when_run(x, params):  # the profiling sweep's evaluation passes, the run's fails
        calls.append(1)
        if len(calls) > 1:
            raise ValueError("a stage that fails")
        return ca.sin(x)

    assert not tracemalloc.is_tracing()
    with pytest.raises(Exception, match="a stage that fails"):
        ca.backprop([ca.Stage(fails_when_run)], np.ones(3), trace_memory=True)
    assert not tracemalloc.is_tracing()

    def broken(self):
        raise RuntimeError("a graph run that fails")

    monkeypatch.setattr(graph_backprop.GraphExecutor, "run", broken)
    with pytest.raises(RuntimeError, match="a graph run that fails"):
        ca.backprop_graph(lambda x: ca.sum(ca.sin(x)), np.ones(3), trace_memory=True)
    assert not tracemalloc.is_tracing()
