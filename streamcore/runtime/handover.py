"""A released partition stays readable, marked stale, until its new owner serves it.

When a rebalance or a graceful stop takes a partition from a worker, the partition's
task takes its last checkpoint and is retired: its state is then exactly what the
changelog holds, which is what the new owner restores. Rather than answer 503 until
the new owner has restored and announced itself on the owners topic
(`streamcore.io.owners`), the old owner keeps the retired task's store open and its
views readable: reads answer with the last checkpointed values, marked stale with how
long ago that checkpoint was (``stale_ms``). Requests other workers forward to it get
the same answers, so a moved partition answers throughout the move.

The hold ends when another worker announces the partition, when this worker gains it
back, or after `HANDOVER_TIMEOUT_S` (no new owner came: say so with 503 rather than
serve older and older values). A stopping worker waits, bounded by that and by its
stop timeout, for its partitions' new owners after leaving the group, unless it held
every partition at the last rebalance (no other worker to wait for). A worker killed
outright holds nothing: its partitions answer 503 until their new owner has restored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from streamcore.online.views import OnlineState
from streamcore.runtime.task_run import TaskRun

log = logging.getLogger("streamcore.runner")

HANDOVER_TIMEOUT_S = 15.0
"""How long a released partition is served stale at most, waiting for its new owner."""


@dataclass(slots=True)
class _Held:
    run: TaskRun
    since: float  # monotonic time of the release


class Handover:
    """The retired tasks whose partitions another worker has not announced yet."""

    def __init__(self, online: OnlineState, timeout_s: float = HANDOVER_TIMEOUT_S) -> None:
        self.online = online
        self.timeout_s = timeout_s
        self._held: dict[tuple[str, int], list[_Held]] = {}
        self._none_held = asyncio.Event()
        self._none_held.set()
        self.alone = False
        """This worker was given every partition at the last rebalance: a stop waits for nobody."""

    def hold(self, topic: str, partition: int, run: TaskRun) -> None:
        """`run` was retired (its last checkpoint taken): serve its views stale from now on."""
        self.online.mark_stale(run.task.stream)
        self._held.setdefault((topic, partition), []).append(_Held(run, time.monotonic()))
        self._none_held.clear()

    def release(self, topic: str, partition: int, why: str = "") -> None:
        """Stop serving the partition here and close its store (its new owner serves it)."""
        held = self._held.pop((topic, partition), [])
        for h in held:
            self.online.unregister(h.run.task.stream)
            h.run.task.store.close()
        if not self._held:
            self._none_held.set()
        if held and why:
            log.info("partition %s/%d: no longer served stale here (%s)", topic, partition, why)

    def expire(self) -> None:
        """Release what was held longer than the timeout: its new owner has not come."""
        now = time.monotonic()
        for (topic, partition), held in list(self._held.items()):
            if now - held[0].since >= self.timeout_s:
                self.release(topic, partition, f"no new owner within {self.timeout_s:.0f} s")

    async def settle(self, until: float) -> None:
        """A stopping worker: wait (to monotonic `until` at most) for every new owner, then release all."""
        wait_s = 0.0 if self.alone else min(until - time.monotonic(), self.timeout_s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._none_held.wait(), max(0.0, wait_s))
        for topic, partition in list(self._held):
            self.release(topic, partition, "stopping")

    def taken(self, topic: str, partition: int) -> None:
        """The owners topic names another worker for the partition (`PartitionOwners.on_taken`)."""
        self.release(topic, partition, "its new owner announced itself")
