"""How the run loop shares its time: batch stretches, flush cadence, checkpoint steps and their share.

The numbers were measured with ``bench/freshness.py`` on the 2-core machine (see the
README): they bound how long any request or record waits behind a batch or a step.
"""

from __future__ import annotations

import time

PAUSE_AFTER_S = 0.05
"""A sink flush that takes longer than this pauses the task's source partitions until it is done."""
YIELD_EVERY_S = 0.0015
"""Longest stretch of back-to-back batch processing before the loop flushes and yields."""
MIN_BATCH_RECORDS = 16
FIRST_BATCH_RECORDS = 64
"""Batches shrink (down to this) when records are expensive, so one batch fits YIELD_EVERY_S."""
FLUSH_EVERY_S = 0.01
"""Outputs are flushed at most this often (and before every checkpoint): their linger."""
CHECKPOINT_STEP_S = 0.0015
"""How long one checkpoint step may encode or write state before the stream goes on."""
CHECKPOINT_SHARE = 0.1
"""While the streams are busy, checkpoint steps use at most this share of the time, all
tasks' together, so that their bursts do not starve the streams and the requests (a 300 ms
checkpoint spreads over 3 s). Measured with bench/freshness.py: at 0.2 the loop ran at 95%
during checkpoints and the freshness p99 at 50% load was 30-86 ms; at 0.1, 6-12 ms.
Steps taken while a task is idle count towards the share too."""
IDLE_STEP_S = 0.0005
"""How long one checkpoint step may run while the task has nothing to process: records
that arrive meanwhile wait for at most about this."""
IDLE_WAIT_MIN_S = 0.0005
IDLE_WAIT_MAX_S = 0.01
"""With no records, wait for an in-process append or poll, backing off up to this."""


class CheckpointPacer:
    """Keeps the checkpoint steps of all tasks within `CHECKPOINT_SHARE` of the time.

    Tasks start their checkpoints at the same moments; paced one by one, three tasks
    checkpointing at once would take 60% of the loop and the streams would fall behind.
    """

    def __init__(self) -> None:
        self.under_way = 0
        self._since = 0.0
        self._busy_s = 0.0
        self.working: set[object] = set()
        """The tasks that have records in hand: while any has, no other task is idle for real."""

    def begin(self) -> None:
        if self.under_way == 0:
            self._since = time.perf_counter()
            self._busy_s = 0.0
        self.under_way += 1

    def end(self) -> None:
        self.under_way -= 1

    def spent(self, seconds: float) -> None:
        self._busy_s += seconds

    def due(self) -> bool:
        """The steps so far have used less than their share of the time since checkpoints began."""
        return self._busy_s <= CHECKPOINT_SHARE * (time.perf_counter() - self._since)

    def idle_for(self, task: object) -> bool:
        """No task but `task` has records in hand: the loop's spare time is its to use."""
        return not self.working or self.working == {task}
