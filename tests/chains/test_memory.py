"""The Meter counts every buffer once, attributes it to one kind, and tracks peak and timeline."""
from __future__ import annotations

import numpy as np

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
