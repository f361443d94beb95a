"""The collector pacer: survivors frozen on its ticks, the middle generation collected rarely, all undone at stop."""

from __future__ import annotations

import gc

from streamcore.runtime.gc_pacer import MIDDLE_GENERATION_THRESHOLD, GcPacer


def test_the_pacer_freezes_survivors_and_restores_the_collector_when_it_stops() -> None:
    before = gc.get_threshold()
    pacer = GcPacer(every_s=0.0, full_every_s=3600.0)
    pacer.start()
    try:
        assert gc.get_threshold()[1] == max(before[1], MIDDLE_GENERATION_THRESHOLD)
        frozen = gc.get_freeze_count()
        state = [[i] for i in range(1_000)]  # live state made after the start
        pacer.tick()
        assert gc.get_freeze_count() >= frozen + len(state)
    finally:
        pacer.stop()
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
