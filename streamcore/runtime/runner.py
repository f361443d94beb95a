"""Runs an app: one asyncio task per pipeline, checkpoints, graceful stop.

Per pipeline the loop is: fetch a batch, process it (synchronously, bounded in size),
flush the sinks, checkpoint when due, yield to the event loop. A checkpoint is

1. flush every sink of the task (its outputs so far are durable: at-least-once);
2. take the cut of operator state, source positions and watermarks at once;
3. encode and write it in bounded steps (`streamcore.state.store.CheckpointWrite`): in the
   task's idle time, and within `CHECKPOINT_SHARE` of the time while it is busy;
4. with fsync, sync RocksDB's log in a thread while the stream goes on;
5. tell the changelog and the source (Kafka commits offsets only now).

SIGINT/SIGTERM finish the current batch, checkpoint and stop. End of input (with
``until_end``) fires every window, then checkpoints the windows as fired but with
the real watermark, so a later run over a grown log resumes and revises them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry

from streamcore.base.clock import Clock, SystemClock
from streamcore.base.errors import ConfigError
from streamcore.base.records import Batches, RecordBatch
from streamcore.dataflow.app import App
from streamcore.dataflow.stream import FunctionSink, Pipeline
from streamcore.io.embedded import EmbeddedBroker
from streamcore.io.kafka import KafkaBroker, KafkaGroup
from streamcore.io.kafka_changelog import KafkaChangelog
from streamcore.io.kafka_settings import KafkaSettings
from streamcore.io.log import EmbeddedLog
from streamcore.io.owners import PartitionOwners
from streamcore.io.transport import Broker, Control, Sink, Source
from streamcore.online.views import OnlineState
from streamcore.runtime.gc_pacer import GcPacer
from streamcore.runtime.kafka_membership import KafkaMembership
from streamcore.runtime.metrics import Metrics
from streamcore.runtime.nodes import CallbackSink
from streamcore.runtime.pacing import (
    CHECKPOINT_STEP_S,
    FIRST_BATCH_RECORDS,
    FLUSH_EVERY_S,
    IDLE_WAIT_MAX_S,
    IDLE_WAIT_MIN_S,
    MIN_BATCH_RECORDS,
    YIELD_EVERY_S,
    CheckpointPacer,
)
from streamcore.runtime.settings import RunSettings
from streamcore.runtime.signals import stop_on_signals
from streamcore.runtime.status import RunStatus, TaskStatus
from streamcore.runtime.task import Task
from streamcore.runtime.task_run import TaskRun
from streamcore.serving.http import Server
from streamcore.state.store import TaskStore

log = logging.getLogger("streamcore.runner")

PublishListener = Callable[[float, list[str], list[RecordBatch]], None]


class SimulatedCrash(Exception):
    """Raised out of `Runner.run` when a scripted source asks for a crash."""


def broker_from_settings(settings: RunSettings) -> Broker | KafkaBroker:
    if settings.broker.startswith("embedded:"):
        log = EmbeddedLog(settings.embedded_log_dir, fsync=settings.fsync)  # type: ignore[arg-type]
        return EmbeddedBroker(log, offset_reset=settings.offset_reset)
    return KafkaBroker(KafkaSettings.from_url(settings.broker))


class Runner(KafkaMembership):
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
        self._runs: list[TaskRun] = []
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
        self._released: list[TaskStatus] = []
        """Kafka: the final status of each task whose partition was released (for the exit summary)."""
        self._broker_down_since: float | None = None
        """Kafka: when the broker stopped answering (monotonic time), or None while it answers."""
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
            tasks=[self._task_status(r) for r in self._runs],
            stopped_by=self._stopped_by,
        )

    def _task_status(self, r: TaskRun) -> TaskStatus:
        name = f"{r.task.pipeline.name}/p{r.task.partitions[0]}" if r.task.split_views else r.task.pipeline.name
        task, positions = r.task, dict(r.task.positions)
        counts = (task.counters, task.watermark, task.state_entries(), positions, r.source.lag(positions))
        return TaskStatus(name, *counts, stream=task.pipeline.name, idle_s=r.idle_s())

    @property
    def sources(self) -> list[Source]:
        return [r.source for r in self._runs]

    async def run(self) -> RunStatus:
        self._started = time.monotonic()
        broker = self.broker or broker_from_settings(self.settings)
        if isinstance(broker, KafkaBroker):
            return await self._run_group(broker)
        if self.settings.until_end and isinstance(broker, EmbeddedBroker):  # to the end of what exists
            sources = self.app.sources
            broker.refuse_missing([spec for spec in self.app.topics if spec.name in sources])
        for spec in self.app.topics:
            broker.ensure_topic(spec)
        crashed = False
        self._gc.start()
        try:
            for pipeline in self._pipelines:
                self._runs.append(await self._open(pipeline, broker))
            if self.settings.http:
                server = self._http_server()
                await server.start()
                self.server = server  # set once it listens, so its port is the real one
            for model in self.app.models.values():
                if model.view not in self.online.views:
                    raise ConfigError(
                        f"model.{model.name}.view",
                        f"no stream keeps feature view {model.view!r}; known: {sorted(self.online.views)}",
                    )
            with stop_on_signals(self.stop, install=self.handle_signals):
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
    def view_names(self) -> list[str]:
        """Every feature view: those kept here and (Kafka) those other workers announced."""
        return sorted(set(self.online.views) | (self._owners.views() if self._owners else set()))

    def _store(self, pipeline: Pipeline, partition: int | None = None) -> TaskStore:
        """The task's RocksDB: one per stream, or (Kafka) per stream and partition."""
        path = Path(self.settings.state_dir) / self.app.name / pipeline.name
        return TaskStore(path if partition is None else path / f"p{partition}", sync=self.settings.fsync == "always")

    async def _open(
        self,
        pipeline: Pipeline,
        broker: Broker | KafkaBroker,
        source: Source | None = None,
        *,
        store: TaskStore | None = None,
        changelog: KafkaChangelog | None = None,
        catching_up: bool = False,
    ) -> TaskRun:
        """The task of `pipeline`, restored and positioned; `catching_up`: a gained partition's, stale at once."""
        if source is None:
            assert not isinstance(broker, KafkaBroker)
            source = broker.source(pipeline.source, until_end=self.settings.until_end)
        to = pipeline.sink
        sink: Sink | CallbackSink = (
            CallbackSink(to.fn, to.label) if isinstance(to, FunctionSink) else broker.sink(to.topic)
        )
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
        if catching_up:
            self.online.mark_stale(task.stream, (store.load_checkpoint() or {}).get("time_ms"))
        task.positions.update(await source.start(positions))
        return TaskRun(task, source, [sink, dead_letters, late], self.metrics, self._pacer, changelog)

    async def _drive(self, run: TaskRun) -> None:
        """Fetch and process batches; publish, flush, checkpoint and yield at most every `YIELD_EVERY_S`.

        Batches are sized from the measured cost per record so that one takes at most
        `YIELD_EVERY_S`, and processed back to back for up to `YIELD_EVERY_S`. Then,
        and whenever the source has nothing, what was applied is published (readable, with
        its freshness measured), the sinks are flushed (at most every `FLUSH_EVERY_S`), a
        checkpoint is started or, after a busy stretch, advanced by one bounded step
        (within `CHECKPOINT_SHARE`), and the loop yields so that other tasks and HTTP
        requests get their turn. With nothing to process, the checkpoint advances in short
        steps until records come in (`TaskRun.checkpoint_while_idle`). Nothing
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
                if isinstance(item, RecordBatch | Batches):
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
                elif not run.caught_up and source.at_end(task.positions):  # nothing fetched yet is not (Kafka)
                    run.catch_up()
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

    async def _retire(self, run: TaskRun) -> None:
        """The task's last checkpoint, taken once: by its drive on stop, or by a rebalance. Under
        the task's lock, so it never falls inside a stretch the drive is working on."""
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
        partition it got (none, when there are more workers than partitions), and not
        while its broker does not answer.
        """
        if self._broker_down_since is not None:
            return False
        return (bool(self._runs) or self._joined) and all(run.caught_up for run in self._runs)

    async def _report(self) -> None:
        assert self.progress is not None
        while True:
            await asyncio.sleep(self.progress_interval_s)
            self.progress(self.status())
