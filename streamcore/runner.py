"""Runs an app: one asyncio task per pipeline, checkpoints, graceful stop.

Per pipeline the loop is: fetch a batch, process it (synchronously, bounded in size),
flush the sinks, checkpoint when due, yield to the event loop. A checkpoint is

1. flush every sink of the task (its outputs so far are durable: at-least-once);
2. write operator state, source positions and watermarks in one RocksDB batch;
3. tell the source (Kafka commits offsets only now).

SIGINT/SIGTERM finish the current batch, checkpoint and stop. End of input (with
``until_end``) fires every window, then checkpoints the windows as fired but with
the real watermark, so a later run over a grown log resumes and revises them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry

from .app import App
from .clock import Clock, SystemClock
from .embedded import EmbeddedBroker
from .errors import ConfigError
from .gc_pacer import GcPacer
from .log import EmbeddedLog
from .metrics import Metrics
from .nodes import CallbackSink
from .online import OnlineState
from .records import RecordBatch
from .serving import Server
from .settings import RunSettings
from .state import TaskStore
from .stream import FunctionSink, Pipeline
from .task import Task, TaskCheckpoint, TaskCounters
from .transport import Broker, Control, Sink, Source

YIELD_EVERY_S = 0.005
"""Longest stretch of back-to-back batch processing before the loop flushes and yields."""
MIN_BATCH_RECORDS = 16
FIRST_BATCH_RECORDS = 64
"""Batches shrink (down to this) when records are expensive, so one batch fits YIELD_EVERY_S."""
CHECKPOINT_STEP_S = 0.002
"""How long one checkpoint step may encode state before the stream goes on."""
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


def broker_from_settings(settings: RunSettings) -> Broker:
    if settings.broker.startswith("embedded:"):
        return EmbeddedBroker(EmbeddedLog(settings.embedded_log_dir, fsync=settings.fsync))  # type: ignore[arg-type]
    raise ConfigError("broker", f"{settings.broker!r}: only the embedded log is available in this build")


class _TaskRun:
    """A task with its source and sinks, and what the runner tracks about it."""

    def __init__(self, task: Task, source: Source, sinks: list[Sink | CallbackSink], metrics: Metrics) -> None:
        self.task = task
        self.source = source
        self.sinks = sinks
        self.caught_up = False
        """The source had nothing left at least once: the task has caught up (readiness)."""
        self.unpublished: list[RecordBatch] = []
        self.checkpointing: TaskCheckpoint | None = None
        """The checkpoint being taken in steps, if any."""
        self._checkpoint_started = 0.0
        """Batches applied since the last publish, for the freshness metric (feature streams only)."""
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
        started = time.perf_counter()
        for sink in self.sinks:
            await sink.flush()
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

    async def step_checkpoint(self, budget_s: float) -> None:
        """Advance the checkpoint by one bounded step; commit it when it is complete."""
        checkpoint = self.checkpointing
        if checkpoint is None:
            return
        started = time.perf_counter()
        if checkpoint.step(budget_s):
            checkpoint.commit()
            self.checkpointing = None
            await self.source.commit(checkpoint.positions)
            self._checkpoint_seconds.observe(time.perf_counter() - self._checkpoint_started)
        self.task.counters.backpressure_s += time.perf_counter() - started

    async def finish_checkpoint(self) -> None:
        while self.checkpointing is not None:
            await self.step_checkpoint(1.0)


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
        self.server: Server | None = None
        self.metrics.watch_models(list(app.models.values()))
        self._stop = asyncio.Event()
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
                    r.task.pipeline.name,
                    r.task.counters,
                    r.task.watermark,
                    r.task.state_entries(),
                    dict(r.task.positions),
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
        for spec in self.app.topics:
            broker.ensure_topic(spec)
        crashed = False
        self._gc.start()
        try:
            for pipeline in self.app.pipelines:
                self._runs.append(await self._open(pipeline, broker))
            if self.settings.http:
                server = Server(self, *self.settings.http_address)
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

    async def _open(self, pipeline: Pipeline, broker: Broker) -> _TaskRun:
        source = broker.source(pipeline.source, until_end=self.settings.until_end)
        sink: Sink | CallbackSink
        if isinstance(pipeline.sink, FunctionSink):
            sink = CallbackSink(pipeline.sink.fn, pipeline.sink.label)
        else:
            sink = broker.sink(pipeline.sink.topic)
        dead_letters = broker.sink(self.app.dead_letter_topic.name)
        late = broker.sink(self.app.late_topic.name)
        store = TaskStore(
            Path(self.settings.state_dir) / self.app.name / pipeline.name, sync=self.settings.fsync == "always"
        )
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
        )
        try:
            positions = task.restore()
        except Exception:
            store.close()
            raise
        await source.start(positions)
        return _TaskRun(task, source, [sink, dead_letters, late], self.metrics)

    async def _drive(self, run: _TaskRun) -> None:
        """Fetch and process batches; publish, flush, checkpoint and yield at most every `YIELD_EVERY_S`.

        Batches are sized from the measured cost per record so that one takes at most
        `YIELD_EVERY_S`, and processed back to back for up to `YIELD_EVERY_S`. Then,
        and whenever the source has nothing, what was applied is published (readable, with
        its freshness measured), the sinks are flushed, a checkpoint is started or advanced
        by one bounded step, and the loop yields so that other tasks and HTTP requests get
        their turn. Nothing awaits before that publish, so a read never sees state that was
        not published. Checkpoints are taken in steps between batches (see `TaskCheckpoint`),
        so a large one does not stop the stream.
        """
        task, source = run.task, run.source
        interval_s = self.settings.checkpoint_interval_ms / 1000
        max_records = self.settings.max_batch_records
        next_checkpoint = time.monotonic() + interval_s
        next_yield = time.monotonic() + YIELD_EVERY_S
        idle_wait = IDLE_WAIT_MIN_S
        limit = min(max_records, FIRST_BATCH_RECORDS)  # then sized so one batch takes at most YIELD_EVERY_S
        seconds_per_record = 0.0
        while not self._stop.is_set():
            item = await source.fetch(limit)
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
                    await run.start_checkpoint()
                    next_checkpoint = now + interval_s
                elif run.checkpointing is None:
                    await run.flush()
                if run.checkpointing is not None:
                    await run.step_checkpoint(CHECKPOINT_STEP_S)
                if item is None:
                    await source.wait(idle_wait)
                    idle_wait = min(idle_wait * 2, IDLE_WAIT_MAX_S)
                else:
                    await asyncio.sleep(0)
                next_yield = time.monotonic() + YIELD_EVERY_S
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
                views = [name for name, store in self.online.views.items() if store.stream is run.task.stream]
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
        """Every stream has caught up with its source at least once since the start."""
        return bool(self._runs) and all(run.caught_up for run in self._runs)

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
