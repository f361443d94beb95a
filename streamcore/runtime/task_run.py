"""One task as the run loop drives it: its source, sinks, checkpoint in progress and changelog."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from streamcore.base.records import Batches, RecordBatch
from streamcore.io.kafka_changelog import KafkaChangelog, PartitionLost
from streamcore.io.transport import Sink, Source
from streamcore.runtime.metrics import Metrics
from streamcore.runtime.nodes import CallbackSink
from streamcore.runtime.pacing import (
    CHECKPOINT_STEP_S,
    IDLE_STEP_S,
    PAUSE_AFTER_S,
    CheckpointPacer,
)
from streamcore.runtime.task import Task
from streamcore.runtime.task_checkpoint import TaskCheckpoint

log = logging.getLogger("streamcore.runner")

IDLE_AFTER_S = 5.0
"""A caught-up task with no input for this long is idle: its watermark lag, which grows
with the clock while nothing arrives, is reported as idle instead (metrics, progress, page)."""


class TaskRun:
    """A task with its source and sinks, and what the runner tracks about it."""

    def __init__(
        self,
        task: Task,
        source: Source,
        sinks: list[Sink | CallbackSink],
        metrics: Metrics,
        pacer: CheckpointPacer,
        changelog: KafkaChangelog | None = None,
    ) -> None:
        self.task = task
        self.pacer = pacer
        self.source = source
        self.sinks = sinks
        self.changelog = changelog
        """Where the task's state is replicated (Kafka workers): a checkpoint counts once it is there."""
        self.lock = asyncio.Lock()
        """Held while the task works (not while it waits for records), so a rebalance can take it over."""
        self.retired = False
        """The partition was revoked or the worker stops: the task no longer processes."""
        self.lost = False
        """Kafka: the group evicted this worker; its last checkpoint was not replicated (`PartitionLost`)."""
        self.drive: asyncio.Task[None] | None = None
        self.caught_up = False
        """The source had nothing left at least once: the task has caught up (readiness)."""
        self.on_caught_up: Callable[[], None] | None = None
        """Called once, when the task first catches up (a gained partition's reads stop being stale)."""
        self.last_input_s = time.monotonic()
        """When the task last had records to process (monotonic; its start before the first)."""
        self.unpublished: list[RecordBatch] = []
        """Batches applied since the last publish, for the freshness metric (feature streams only)."""
        self.checkpointing: TaskCheckpoint | None = None
        """The checkpoint being taken in steps, if any."""
        self.syncing: asyncio.Future[None] | None = None
        """The written checkpoint's fsync, running in a thread (see `TaskStore.sync_wal`)."""
        self._checkpoint_started = 0.0
        self._batch_seconds = metrics.batch.labels(task.pipeline.name)
        self._checkpoint_seconds = metrics.checkpoint.labels(task.pipeline.name)

    def process(self, fetched: RecordBatch | Batches, at: int) -> float:
        """Process a batch (or consecutive runs of several partitions); return the seconds it took."""
        started = time.perf_counter()
        self.last_input_s = time.monotonic()
        if isinstance(fetched, Batches):
            runs = self.task.process_runs(fetched, at)
        else:
            self.task.process_batch(fetched, at)
            runs = [fetched]
        seconds = time.perf_counter() - started
        self._batch_seconds.observe(seconds)
        if self.task.tracks_arrivals:
            self.unpublished.extend(runs)
        return seconds

    def catch_up(self) -> None:
        """The source had nothing left: the task has caught up (once is enough)."""
        if not self.caught_up:
            self.caught_up = True
            if self.on_caught_up is not None:
                self.on_caught_up()

    def idle_s(self) -> float | None:
        """Seconds since the task last had input, once it has caught up and had none for
        `IDLE_AFTER_S`; None while records come (its watermark lag then means something)."""
        quiet = time.monotonic() - self.last_input_s
        return quiet if self.caught_up and quiet >= IDLE_AFTER_S else None

    async def flush(self) -> None:
        """Make the outputs durable. While they are stuck, the source stops prefetching (backpressure)."""
        started = time.perf_counter()
        for sink in self.sinks:
            if not sink.pending:
                continue
            flushing = asyncio.ensure_future(sink.flush())
            done, _ = await asyncio.wait([flushing], timeout=PAUSE_AFTER_S)
            if not done:
                self.source.pause()
                try:
                    await flushing
                finally:
                    self.source.resume()
            flushing.result()
        self.task.counters.backpressure_s += time.perf_counter() - started

    async def checkpoint(self) -> None:
        """A whole checkpoint now (at the end, on stop, or when a script asks).

        One already under way is finished first: checkpoints are written one at a time.
        """
        await self.finish_checkpoint()
        await self.start_checkpoint()
        await self.finish_checkpoint()

    async def start_checkpoint(self) -> None:
        """Flush the outputs (they must be durable before the positions are), then take the cut."""
        await self.flush()
        self._checkpoint_started = time.perf_counter()
        self.checkpointing = self.task.start_checkpoint()
        self.pacer.begin()

    def checkpoint_step_due(self) -> bool:
        """A checkpoint is under way and the pacer allows a step (see `CHECKPOINT_SHARE`)."""
        return self.checkpointing is not None and self.pacer.due()

    async def step_checkpoint(self, budget_s: float, *, idle: bool = False) -> None:
        """Advance the checkpoint by one bounded step; commit it once it is written and synced.

        While the fsync runs in its thread, a step does nothing: the stream goes on.
        `idle`: the task had nothing to process, so the step held nothing back.
        """
        checkpoint = self.checkpointing
        if checkpoint is None:
            return
        started = time.perf_counter()
        store = self.task.store
        if self.syncing is None:
            if checkpoint.step(budget_s):
                if store.sync:
                    self.syncing = asyncio.ensure_future(asyncio.to_thread(store.sync_wal))
                else:
                    await self._commit(checkpoint)
        elif self.syncing.done():
            syncing, self.syncing = self.syncing, None
            syncing.result()  # a failed sync fails the task
            await self._commit(checkpoint)
        spent = time.perf_counter() - started
        self.pacer.spent(spent)
        if not idle:
            self.task.counters.backpressure_s += spent

    async def _commit(self, checkpoint: TaskCheckpoint) -> None:
        """The checkpoint is durable: count it, then let the changelog and the source know."""
        checkpoint.commit()
        self.checkpointing = None
        self.pacer.end()
        if self.changelog is not None:  # other workers can restore this checkpoint only now
            try:
                offset = await self.changelog.flush()
            except PartitionLost as lost:  # a zombie's checkpoint stays local; the next restore here rebuilds
                log.warning("%s; its checkpoint is kept locally only, and no offsets are committed", lost)
                self.lost = True
                return
            if offset >= 0:
                self.task.store.set_changelog_mark(self.task.checkpoint_id, offset)
        await self.source.commit(checkpoint.positions)
        self._checkpoint_seconds.observe(time.perf_counter() - self._checkpoint_started)

    async def finish_checkpoint(self) -> None:
        while self.checkpointing is not None:
            if self.syncing is not None:
                await asyncio.wait([self.syncing])
            await self.step_checkpoint(1.0)

    async def checkpoint_while_idle(self, timeout_s: float) -> None:
        """Wait up to `timeout_s` for records, advancing the checkpoint meanwhile.

        Idle time is free, so while no other task has records in hand, steps here are not
        paced; they are short (`IDLE_STEP_S`), and between them requests and appends that
        came in go first, so records that arrive wait for at most one step. While another
        task is busy, the loop is not idle: steps keep to `CHECKPOINT_SHARE`.
        """
        waiting = asyncio.ensure_future(self.source.wait(timeout_s))
        try:
            while not waiting.done() and self.checkpointing is not None and not self.retired:
                if self.syncing is not None and not self.syncing.done():
                    await asyncio.wait([waiting, self.syncing], return_when=asyncio.FIRST_COMPLETED)
                    continue
                if not (self.pacer.idle_for(self) or self.pacer.due()):  # other tasks are busy: paced
                    await asyncio.wait([waiting], timeout=CHECKPOINT_STEP_S)
                    continue
                async with self.lock:
                    if not self.retired:
                        await self.step_checkpoint(IDLE_STEP_S, idle=True)
                await asyncio.sleep(0)  # the loop polls: an append or a request queues its callback,
                await asyncio.sleep(0)  # which runs before the next step
            await waiting
        finally:
            waiting.cancel()
