"""Runs an app: one asyncio task per pipeline, checkpoints, graceful stop.

Per pipeline the loop is: fetch a batch, process it (synchronously, bounded in size),
flush the sinks, checkpoint when due, yield to the event loop. A checkpoint is

1. flush every sink of the task (its outputs so far are durable: at-least-once);
2. take the cut of operator state, source positions and watermarks at once;
3. encode and write it in bounded steps (`streamcore.state.CheckpointWrite`): in the
   task's idle time, and within `CHECKPOINT_SHARE` of the time while it is busy;
4. with fsync, sync RocksDB's log in a thread while the stream goes on;
5. tell the changelog and the source (Kafka commits offsets only now).

SIGINT/SIGTERM finish the current batch, checkpoint and stop. End of input (with
``until_end``) fires every window, then checkpoints the windows as fired but with
the real watermark, so a later run over a grown log resumes and revises them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from prometheus_client import CollectorRegistry

from .app import App
from .clock import Clock, SystemClock
from .embedded import EmbeddedBroker
from .errors import ConfigError
from .gc_pacer import GcPacer
from .kafka import KafkaBroker, KafkaChangelog, KafkaGroup, KafkaSettings, kafka_partition
from .log import EmbeddedLog
from .metrics import Metrics
from .nodes import CallbackSink
from .online import OnlineState
from .owners import PartitionOwners
from .records import RecordBatch
from .repartition import plan, repartition_topics
from .serving import Server
from .settings import RunSettings
from .state import TaskStore
from .stream import FunctionSink, Pipeline
from .task import Task, TaskCheckpoint, TaskCounters
from .transport import Broker, Control, Sink, Source, TopicSpec

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


log = logging.getLogger("streamcore.runner")

PublishListener = Callable[[float, list[str], list[RecordBatch]], None]


class SimulatedCrash(Exception):
    """Raised out of `Runner.run` when a scripted source asks for a crash."""


@dataclass(slots=True)
class TaskStatus:
    name: str
    counters: TaskCounters
    watermark: float
    state_entries: int
    positions: dict[int, int]
    consumer_lag: dict[int, int] = field(default_factory=dict)
    """Kafka: records in the partition not yet processed (high watermark minus position)."""


@dataclass(slots=True)
class RunStatus:
    """A progress snapshot, handed to the progress callback and returned at the end."""

    elapsed_s: float
    processing_time_ms: int
    tasks: list[TaskStatus] = field(default_factory=list)
    stopped_by: str = ""

    @property
    def records_in(self) -> int:
        return sum(t.counters.records_in for t in self.tasks)


def broker_from_settings(settings: RunSettings) -> Broker | KafkaBroker:
    if settings.broker.startswith("embedded:"):
        log = EmbeddedLog(settings.embedded_log_dir, fsync=settings.fsync)  # type: ignore[arg-type]
        return EmbeddedBroker(log, offset_reset=settings.offset_reset)
    return KafkaBroker(KafkaSettings.from_url(settings.broker))


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


class _TaskRun:
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
        self.drive: asyncio.Task[None] | None = None
        self.caught_up = False
        """The source had nothing left at least once: the task has caught up (readiness)."""
        self.unpublished: list[RecordBatch] = []
        """Batches applied since the last publish, for the freshness metric (feature streams only)."""
        self.checkpointing: TaskCheckpoint | None = None
        """The checkpoint being taken in steps, if any."""
        self.syncing: asyncio.Future[None] | None = None
        """The written checkpoint's fsync, running in a thread (see `TaskStore.sync_wal`)."""
        self._checkpoint_started = 0.0
        self._batch_seconds = metrics.batch.labels(task.pipeline.name)
        self._checkpoint_seconds = metrics.checkpoint.labels(task.pipeline.name)

    def process(self, batch: RecordBatch, at: int) -> float:
        """Process a batch; return the seconds it took."""
        started = time.perf_counter()
        self.task.process_batch(batch, at)
        seconds = time.perf_counter() - started
        self._batch_seconds.observe(seconds)
        if self.task.tracks_arrivals:
            self.unpublished.append(batch)
        return seconds

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
            offset = await self.changelog.flush()
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


class Runner:
    """Runs every pipeline of an app against a broker until stopped or out of input."""

    def __init__(
        self,
        app: App,
        settings: RunSettings | None = None,
        *,
        broker: Broker | None = None,
        clock: Clock | None = None,
        progress: Callable[[RunStatus], None] | None = None,
        progress_interval_s: float = 0.5,
        handle_signals: bool = True,
        registry: CollectorRegistry | None = None,
    ) -> None:
        if not app.pipelines:
            raise ConfigError("app", f"app {app.name!r} defines no stream with a sink (.to(...) or .sink(...))")
        self.app = app
        self.settings = settings or RunSettings.from_env()
        self.broker = broker
        self.clock = clock or SystemClock()
        self.progress = progress
        self.progress_interval_s = progress_interval_s
        self.handle_signals = handle_signals
        self._runs: list[_TaskRun] = []
        self.online = OnlineState()
        """The app's feature views; the HTTP server and agent tools read it."""
        self.metrics = Metrics(self, registry)
        self._publish_listeners: list[PublishListener] = [self._observe_freshness]
        self._gc = GcPacer()
        self._pacer = CheckpointPacer()
        self.server: Server | None = None
        self.metrics.watch_models(list(app.models.values()))
        self._stop = asyncio.Event()
        self._group: KafkaGroup | None = None
        self._group_errors: list[BaseException] = []
        self._joined = False
        self._broker: KafkaBroker | None = None
        self._owners: PartitionOwners | None = None
        """Kafka: which worker serves which partition (to forward requests to the owner)."""
        self._pipelines: list[Pipeline] = list(app.pipelines)
        """What the tasks run: the app's pipelines, on Kafka with repartitioned ones cut in two."""
        self._view_topics: dict[str, str] = {}
        """Kafka: feature view -> the input topic of the stream that keeps it (views kept here)."""
        self.advertised_url = ""
        """Kafka with HTTP: where other workers send requests for the entities this worker owns."""
        self._started = 0.0
        self._stopped_by = ""

    def stop(self, reason: str = "stop") -> None:
        """Ask every task to finish its current batch, checkpoint and return."""
        self._stopped_by = self._stopped_by or reason
        self._stop.set()

    def status(self) -> RunStatus:
        return RunStatus(
            elapsed_s=time.monotonic() - self._started,
            processing_time_ms=self.clock.now_ms(),
            tasks=[
                TaskStatus(
                    f"{r.task.pipeline.name}/p{r.task.partitions[0]}" if r.task.split_views else r.task.pipeline.name,
                    r.task.counters,
                    r.task.watermark,
                    r.task.state_entries(),
                    dict(r.task.positions),
                    r.source.lag(r.task.positions),
                )
                for r in self._runs
            ],
            stopped_by=self._stopped_by,
        )

    @property
    def sources(self) -> list[Source]:
        return [r.source for r in self._runs]

    async def run(self) -> RunStatus:
        self._started = time.monotonic()
        broker = self.broker or broker_from_settings(self.settings)
        if isinstance(broker, KafkaBroker):
            return await self._run_group(broker)
        for spec in self.app.topics:
            broker.ensure_topic(spec)
        crashed = False
        self._gc.start()
        try:
            for pipeline in self._pipelines:
                self._runs.append(await self._open(pipeline, broker))
            if self.settings.http:
                server = Server(self, *self.settings.http_address, token=self.settings.http_token)
                await server.start()
                self.server = server  # set once it listens, so its port is the real one
            for model in self.app.models.values():
                if model.view not in self.online.views:
                    raise ConfigError(
                        f"model.{model.name}.view",
                        f"no stream keeps feature view {model.view!r}; known: {sorted(self.online.views)}",
                    )
            with self._signals():
                async with asyncio.TaskGroup() as group:
                    drives = [group.create_task(self._drive(r)) for r in self._runs]
                    reporter = group.create_task(self._report()) if self.progress else None
                    await asyncio.gather(*drives)
                    if reporter is not None:
                        reporter.cancel()
        except* SimulatedCrash:
            crashed = True
        finally:
            self._gc.stop()
            if self.server is not None:
                await self.server.stop()
            for r in self._runs:
                await r.source.close()
                r.task.store.close()  # writes nothing: a crash leaves the last checkpoint
            if self.broker is None:
                await broker.close()
        if crashed:
            raise SimulatedCrash("scripted crash")
        status = self.status()
        if self.progress:
            self.progress(status)
        return status

    # -- Kafka: a worker in the app's consumer group, one task per assigned partition --------------
    async def _run_group(self, broker: KafkaBroker) -> RunStatus:
        """Join the group; open a task for each partition gained, retire it when it is revoked.

        A gained partition's state is restored before it processes anything: from the local
        RocksDB when it holds a checkpoint the changelog has, then the changelog's tail, or
        else from the whole changelog (`KafkaChangelog.restore`).
        """
        if self.settings.until_end:
            raise ConfigError("until_end", "a Kafka worker runs until stopped; replay a range with the embedded log")
        await broker.start()
        group = None
        try:
            internal = {self.app.dead_letter_topic.name, self.app.late_topic.name}
            sources = {pipeline.source for pipeline in self.app.pipelines}
            for spec in sorted(self.app.topics, key=lambda t: (t.name not in sources, t.name)):  # inputs first
                await broker.ensure_topic(spec, internal=spec.name in internal)
            declared = {spec.name: replace(spec, partitions=broker.partitions(spec.name)) for spec in self.app.topics}
            self._pipelines = plan(self.app.name, self.app.pipelines, declared)
            for spec in repartition_topics(self._pipelines):
                await broker.ensure_topic(spec, internal=True)
            for pipeline in self._pipelines:
                await broker.ensure_topic(
                    TopicSpec(self._changelog_topic(pipeline), broker.partitions(pipeline.source)),
                    internal=True,
                    compacted=True,
                )
            self._broker = broker
            self.online.locate = self._locate
            if self.settings.http:
                server = Server(self, *self.settings.http_address, token=self.settings.http_token)
                await server.start()
                self.server = server
                self.advertised_url = self.settings.advertise or _default_url(server.host, server.port)
                owners_topic = TopicSpec(f"{self.app.name}-owners", 1)
                await broker.ensure_topic(owners_topic, internal=True, compacted=True)
                self._owners = PartitionOwners(broker, owners_topic.name)
                await self._owners.start()
            topics = sorted({pipeline.source for pipeline in self._pipelines})
            group = broker.group(
                topics,
                broker.settings.group_id or self.app.name,
                lambda tps: self._assigned(broker, tps),
                self._revoked,
            )
            self._group = group
            self._gc.start()
            await group.start()
            with self._signals():
                while not self._stop.is_set() and not self._group_errors:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), 0.2)
            await self._revoked([(r.source.topic, r.task.partitions[0]) for r in self._runs])
        finally:
            self._gc.stop()
            if group is not None:
                await group.close()
            if self._owners is not None:
                await self._owners.close()
            for r in self._runs:  # only after an error: retired tasks are gone
                await r.source.close()
                r.task.store.close()
            if self.server is not None:
                await self.server.stop()
            await broker.close()
        if self._group_errors:
            raise self._group_errors[0]
        return self.status()

    def _topic_of(self, view: str) -> str | None:
        """The input topic of the stream that keeps `view`, here or on another worker (Kafka)."""
        return self._view_topics.get(view) or (self._owners.topic_of(view) if self._owners else None)

    def _locate(self, view: str, entity: str) -> int | None:
        """The partition that keeps `entity` in `view` (None: no worker keeps that view)."""
        topic = self._topic_of(view)
        if topic is None or self._broker is None:
            return None
        return kafka_partition(entity.encode(), self._broker.partitions(topic))

    def owner_url(self, view: str, partition: int) -> str | None:
        """The URL of the worker that last announced `partition` of `view`'s stream (Kafka)."""
        topic = self._topic_of(view)
        owner = None if topic is None or self._owners is None else self._owners.owner(topic, partition)
        return None if owner is None else owner.url

    def view_names(self) -> list[str]:
        """Every feature view: those kept here and (Kafka) those other workers announced."""
        return sorted(set(self.online.views) | (self._owners.views() if self._owners else set()))

    def _store(self, pipeline: Pipeline, partition: int | None = None) -> TaskStore:
        """The task's RocksDB: one per stream, or (Kafka) per stream and partition."""
        path = Path(self.settings.state_dir) / self.app.name / pipeline.name
        return TaskStore(path if partition is None else path / f"p{partition}", sync=self.settings.fsync == "always")

    def _changelog_topic(self, pipeline: Pipeline) -> str:
        return f"{self.app.name}-{pipeline.name}-changelog"

    async def _assigned(self, broker: KafkaBroker, tps: list[tuple[str, int]]) -> None:
        assert self._group is not None
        self._joined = True
        for topic, partition in tps:
            for pipeline in self._pipelines:
                if pipeline.source != topic:
                    continue
                started = time.perf_counter()
                changelog = broker.changelog(self._changelog_topic(pipeline), partition)
                store = self._store(pipeline, partition)
                replayed = await changelog.restore(store)
                run = await self._open(
                    pipeline, broker, self._group.source(topic, partition), store=store, changelog=changelog
                )
                seconds = time.perf_counter() - started
                self.metrics.observe_restore(pipeline.name, replayed, seconds)
                log.info(
                    "partition %s/%d: state restored (%d changelog records in %.3f s), resuming at %s",
                    topic,
                    partition,
                    replayed,
                    seconds,
                    run.task.positions,
                )
                views = self.online.views_of(run.task.stream)
                for view in views:
                    self._view_topics[view] = topic
                if self._owners is not None and views:
                    await self._owners.announce(topic, partition, self.advertised_url, views)
                self._runs.append(run)
                drive = asyncio.create_task(self._drive(run), name=f"{pipeline.name}/p{partition}")
                drive.add_done_callback(self._drive_done)
                run.drive = drive

    def _drive_done(self, drive: asyncio.Task[None]) -> None:
        if not drive.cancelled() and drive.exception() is not None:
            self._group_errors.append(drive.exception())  # type: ignore[arg-type]
            self._stop.set()

    async def _revoked(self, tps: list[tuple[str, int]]) -> None:
        """Checkpoint each task of a revoked partition (state, changelog, offsets), then close it."""
        lost = set(tps)
        for run in [r for r in self._runs if (r.source.topic, r.task.partitions[0]) in lost]:
            await self._retire(run)
            if run.drive is not None:
                run.drive.cancel()
            self.online.unregister(run.task.stream)
            self._runs.remove(run)
            await run.source.close()
            run.task.store.close()
            log.info("partition %s/%d: checkpointed and released", run.source.topic, run.task.partitions[0])

    async def _open(
        self,
        pipeline: Pipeline,
        broker: Broker | KafkaBroker,
        source: Source | None = None,
        *,
        store: TaskStore | None = None,
        changelog: KafkaChangelog | None = None,
    ) -> _TaskRun:
        if source is None:
            assert not isinstance(broker, KafkaBroker)
            source = broker.source(pipeline.source, until_end=self.settings.until_end)
        sink: Sink | CallbackSink
        if isinstance(pipeline.sink, FunctionSink):
            sink = CallbackSink(pipeline.sink.fn, pipeline.sink.label)
        else:
            sink = broker.sink(pipeline.sink.topic)
        dead_letters = broker.sink(self.app.dead_letter_topic.name)
        late = broker.sink(self.app.late_topic.name)
        if store is None:
            store = self._store(pipeline)
        task = Task(
            pipeline,
            app_name=self.app.name,
            app_version=self.app.version,
            partitions=source.partitions,
            store=store,
            sink=sink,
            dead_letters=dead_letters,
            late=late,
            clock=self.clock,
            online=self.online,
            models=self.app.models,
            split_views=changelog is not None,
        )
        try:
            positions = task.restore()
        except Exception:
            store.close()
            raise
        task.positions.update(await source.start(positions))
        return _TaskRun(task, source, [sink, dead_letters, late], self.metrics, self._pacer, changelog)

    async def _drive(self, run: _TaskRun) -> None:
        """Fetch and process batches; publish, flush, checkpoint and yield at most every `YIELD_EVERY_S`.

        Batches are sized from the measured cost per record so that one takes at most
        `YIELD_EVERY_S`, and processed back to back for up to `YIELD_EVERY_S`. Then,
        and whenever the source has nothing, what was applied is published (readable, with
        its freshness measured), the sinks are flushed (at most every `FLUSH_EVERY_S`), a
        checkpoint is started or, after a busy stretch, advanced by one bounded step
        (within `CHECKPOINT_SHARE`), and the loop yields so that other tasks and HTTP
        requests get their turn. With nothing to process, the checkpoint advances in short
        steps until records come in (`_TaskRun.checkpoint_while_idle`). Nothing
        awaits before that publish, so a read never sees state that was not published.
        Checkpoints are taken in steps between batches (see `TaskCheckpoint`), so a large
        one does not stop the stream.
        """
        task, source = run.task, run.source
        interval_s = self.settings.checkpoint_interval_ms / 1000
        max_records = self.settings.max_batch_records
        next_checkpoint = time.monotonic() + interval_s
        next_yield = time.monotonic() + YIELD_EVERY_S
        next_flush = time.monotonic() + FLUSH_EVERY_S
        idle_wait = IDLE_WAIT_MIN_S
        limit = min(max_records, FIRST_BATCH_RECORDS)  # then sized so one batch takes at most YIELD_EVERY_S
        seconds_per_record = 0.0
        while not (self._stop.is_set() or run.retired):
            item = await source.fetch(limit)
            pause = None  # how the loop lets others run after this stretch: "wait" or "yield"
            async with run.lock:
                if run.retired:
                    return
                if isinstance(item, RecordBatch):
                    run.pacer.working.add(run)
                else:
                    run.pacer.working.discard(run)
                if item is Control.END_OF_INPUT:
                    await run.finish_checkpoint()
                    task.finish()
                    self._publish()
                    await run.checkpoint()
                    if all(r.task.ended for r in self._runs):
                        self.stop("end_of_input")
                    return
                if item is Control.CHECKPOINT:
                    self._publish()
                    await run.checkpoint()
                    next_checkpoint = time.monotonic() + interval_s
                    continue
                if item is Control.CRASH:
                    raise SimulatedCrash(task.pipeline.name)
                if item is not None:
                    seconds = run.process(item, self.clock.now_ms())
                    per_record = seconds / max(1, len(item))
                    seconds_per_record = (
                        per_record if not seconds_per_record else 0.8 * seconds_per_record + 0.2 * per_record
                    )
                    limit = max(MIN_BATCH_RECORDS, min(max_records, int(YIELD_EVERY_S / max(seconds_per_record, 1e-9))))
                    idle_wait = IDLE_WAIT_MIN_S
                else:
                    run.caught_up = True
                now = time.monotonic()
                if item is None or now >= next_yield:
                    self._publish()  # what was applied so far becomes readable
                    if run.checkpointing is None and now >= next_checkpoint:
                        await run.start_checkpoint()  # flushes the outputs first
                        next_checkpoint = now + interval_s
                        next_flush = now + FLUSH_EVERY_S
                    elif now >= next_flush:
                        await run.flush()
                        next_flush = now + FLUSH_EVERY_S
                    if item is not None and run.checkpoint_step_due():
                        await asyncio.sleep(0)  # requests that came in during the stretch go first
                        await run.step_checkpoint(CHECKPOINT_STEP_S)
                    pause = "wait" if item is None else "yield"
            if pause == "wait":
                if run.checkpointing is not None:
                    await run.checkpoint_while_idle(idle_wait)
                else:
                    await source.wait(idle_wait)
                idle_wait = min(idle_wait * 2, IDLE_WAIT_MAX_S)
            elif pause == "yield":
                await asyncio.sleep(0)
            if pause is not None:
                next_yield = time.monotonic() + YIELD_EVERY_S
        await self._retire(run)

    async def _retire(self, run: _TaskRun) -> None:
        """The task's last checkpoint, taken once: by its drive on stop, or by a rebalance.

        Under the task's lock, so it never falls inside a stretch the drive is working on.
        """
        run.pacer.working.discard(run)
        async with run.lock:
            if not run.retired:
                run.retired = True
                self._publish()
                await run.checkpoint()

    def on_publish(self, listener: PublishListener) -> None:
        """Call ``listener(published_ms, view_names, batches)`` each time applied events become readable.

        `batches` are the batches applied since the last publish by a stream that keeps
        feature views (`view_names`); the metrics measure freshness this way.
        """
        self._publish_listeners.append(listener)

    def _publish(self) -> None:
        """Make everything applied readable, and tell the listeners (freshness)."""
        published = self.online.publish()
        self._gc.tick()
        for run in self._runs:
            if run.unpublished:
                views = self.online.views_of(run.task.stream)
                for listener in self._publish_listeners:
                    try:
                        listener(published, views, run.unpublished)
                    except Exception:
                        log.exception("publish listener %r failed; the stream goes on", listener)
                run.unpublished = []

    def _observe_freshness(self, published: float, views: list[str], batches: list[RecordBatch]) -> None:
        for view in views:
            names = self.online.views[view].reader.feature_names
            self.metrics.observe_freshness(view, names, batches, published)

    @property
    def ready(self) -> bool:
        """Every stream has caught up with its source at least once since the start.

        A Kafka worker is ready once it has joined its group and caught up on every
        partition it got (none, when there are more workers than partitions).
        """
        return (bool(self._runs) or self._joined) and all(run.caught_up for run in self._runs)

    async def _report(self) -> None:
        assert self.progress is not None
        while True:
            await asyncio.sleep(self.progress_interval_s)
            self.progress(self.status())

    @contextlib.contextmanager
    def _signals(self):  # type: ignore[no-untyped-def]
        loop = asyncio.get_running_loop()
        installed = []
        if self.handle_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.add_signal_handler(sig, self.stop, sig.name)
                    installed.append(sig)
                except (NotImplementedError, RuntimeError, ValueError):
                    pass  # not the main thread: the embedding program handles signals
        try:
            yield
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)


def _default_url(host: str, port: int) -> str:
    """How other workers reach this one when no URL is advertised: the bound host, or this host's name."""
    if host in ("0.0.0.0", "::", ""):
        host = socket.gethostname()
    return f"http://{host}:{port}"
