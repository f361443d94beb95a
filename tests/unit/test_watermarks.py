"""Watermark rules: min-combined, idle partitions released, monotonic, checkpointed."""

from __future__ import annotations

import math

import orjson

from streamcore.eventtime.watermarks import WatermarkTracker


def test_min_over_partitions_and_monotonic() -> None:
    t = WatermarkTracker((0, 1), out_of_orderness_ms=100, idle_timeout_ms=None)
    t.on_arrival(0, 0)
    assert t.observe(0, 1_000) is False  # partition 1 still at -inf
    t.on_arrival(1, 1)
    assert t.observe(1, 500) is True
    assert t.watermark == 400
    assert t.observe(1, 300) is False  # an older event never moves anything back
    assert t.observe(0, 2_000) is False and t.watermark == 400


def test_a_silent_partition_holds_the_watermark_until_idle() -> None:
    t = WatermarkTracker((0, 1), out_of_orderness_ms=0, idle_timeout_ms=50)
    t.on_arrival(0, 1_000)
    t.observe(0, 10_000)
    assert t.watermark == -math.inf  # partition 1 counts from the first arrival: not idle yet
    assert t.on_arrival(0, 1_050) is True  # 50 ms later partition 1 is idle
    assert t.watermark == 10_000


def test_all_idle_keeps_the_watermark_and_a_returning_partition_cannot_lower_it() -> None:
    t = WatermarkTracker((0, 1), out_of_orderness_ms=0, idle_timeout_ms=10)
    t.on_arrival(0, 0)
    t.observe(0, 500)
    t.on_arrival(0, 20)
    assert t.watermark == 500
    t.on_arrival(1, 100)  # partition 1 comes back with nothing newer
    assert t.watermark == 500


def test_snapshot_restores_exactly() -> None:
    t = WatermarkTracker((0, 1, 2), out_of_orderness_ms=5, idle_timeout_ms=100)
    t.on_arrival(2, 7)
    t.observe(2, 99)
    snap = orjson.loads(orjson.dumps(t.snapshot()))
    u = WatermarkTracker((0, 1, 2), out_of_orderness_ms=5, idle_timeout_ms=100)
    u.restore(snap)
    assert (u.watermark, u.wm, u.last_arrival, u.t0) == (t.watermark, t.wm, t.last_arrival, t.t0)
