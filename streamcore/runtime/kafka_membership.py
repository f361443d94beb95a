"""A Kafka worker's membership of its consumer group: partitions gained and revoked, owners.

`KafkaMembership` is the part of the `streamcore.runtime.runner.Runner` that joins the
group, opens a task for each partition gained (its state restored from the local
RocksDB and the changelog first), retires it when the partition is revoked, and tells
the HTTP server which worker owns which partition. It is a mixin of the runner: its
methods read the runner's parts through `RunnerParts`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any, Protocol

from streamcore.base.errors import ConfigError
from streamcore.dataflow.app import App
from streamcore.dataflow.stream import Pipeline
from streamcore.io.kafka import KafkaBroker, KafkaGroup
from streamcore.io.kafka_changelog import KafkaChangelog
from streamcore.io.kafka_settings import kafka_partition
from streamcore.io.owners import Owner, PartitionOwners
from streamcore.io.transport import Broker, Source, TopicSpec
from streamcore.online.views import OnlineState
from streamcore.runtime.gc_pacer import GcPacer
from streamcore.runtime.handover import Handover
from streamcore.runtime.metrics import Metrics
from streamcore.runtime.repartition import plan, repartition_topics
from streamcore.runtime.settings import RunSettings
from streamcore.runtime.signals import stop_on_signals
from streamcore.runtime.status import RunStatus, TaskStatus
from streamcore.runtime.task_run import TaskRun
from streamcore.serving.http import Server
from streamcore.state.store import TaskStore

log = logging.getLogger("streamcore.runner")


class RunnerParts(Protocol):
    """What `KafkaMembership` uses of the runner it is mixed into."""

    app: App
    settings: RunSettings
    online: OnlineState
    metrics: Metrics
    server: Server | None
    advertised_url: str
    handle_signals: bool
    progress: Callable[[RunStatus], None] | None
    progress_interval_s: float
    _runs: list[TaskRun]
    _stop: asyncio.Event
    _gc: GcPacer
    _group: KafkaGroup | None
    _group_errors: list[BaseException]
    _joined: bool
    _broker_down_since: float | None
    _released: list[TaskStatus]
    _started: float
    _broker: KafkaBroker | None
    _owners: PartitionOwners | None
    _handover: Handover | None
    _pipelines: list[Pipeline]
    _view_topics: dict[str, str]

    def stop(self, reason: str = "stop") -> None: ...

    def status(self) -> RunStatus: ...

    def _store(self, pipeline: Pipeline, partition: int | None = None) -> TaskStore: ...

    async def _open(
        self,
        pipeline: Pipeline,
        broker: Broker | KafkaBroker,
        source: Source | None = None,
        *,
        store: TaskStore | None = None,
        changelog: KafkaChangelog | None = None,
        catching_up: bool = False,
    ) -> TaskRun: ...

    async def _drive(self, run: TaskRun) -> None: ...

    async def _retire(self, run: TaskRun) -> None: ...

    @property
    def ready(self) -> bool: ...

    def view_names(self) -> list[str]: ...

    def owner_url(self, view: str, partition: int) -> str | None: ...

    def _http_server(self) -> Server: ...

    def _locate(self, view: str, entity: str) -> int | None: ...

    def _topic_of(self, view: str) -> str | None: ...

    def _changelog_topic(self, pipeline: Pipeline) -> str: ...

    async def _assigned(self, broker: KafkaBroker, tps: list[tuple[str, int]]) -> None: ...

    def _drive_done(self, drive: asyncio.Task[None]) -> None: ...

    def _task_status(self, r: TaskRun) -> TaskStatus: ...

    async def _watch_broker(self, broker: KafkaBroker) -> None: ...

    async def _revoked(self, tps: list[tuple[str, int]]) -> None: ...


STOP_TIMEOUT_S = 20.0
"""How long a stopping worker may take for its last checkpoints and leaving the group (a
graceful-stop period, such as Kubernetes' 60 s, should be longer). A checkpoint cut off
then counts as not taken: its partition resumes from the one before, as after a crash."""
BROKER_CHECK_S = 1.0
"""How often a worker checks that its broker answers (a metadata request), for readiness."""


class KafkaMembership:
    """The runner's Kafka group side (mixed into `Runner`, which sets these in its ``__init__``)."""

    server: Server | None
    _group: KafkaGroup | None
    _broker: KafkaBroker | None
    _owners: PartitionOwners | None
    _broker_down_since: float | None
    _handover: Handover | None = None
    """With HTTP: released partitions served stale until their new owners announce themselves."""

    async def _run_group(self: RunnerParts, broker: KafkaBroker) -> RunStatus:
        """Join the group; open a task for each partition gained, retire it when it is revoked.

        A gained partition's state is restored before it processes anything: from the local
        RocksDB when it holds a checkpoint the changelog has, then the changelog's tail, or
        else from the whole changelog (`KafkaChangelog.restore`).
        """
        if self.settings.until_end:
            raise ConfigError("until_end", "a Kafka worker runs until stopped; replay a range with the embedded log")
        await broker.start()
        group = None
        stopping_until: float | None = None
        try:
            internal = {self.app.dead_letter_topic.name, self.app.late_topic.name}
            sources = self.app.sources
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
                server = self._http_server()
                await server.start()
                self.server = server
                self.advertised_url = self.settings.advertise or _default_url(server.host, server.port)
                owners_topic = TopicSpec(f"{self.app.name}-owners", 1)
                await broker.ensure_topic(owners_topic, internal=True, compacted=True)
                owners = self._owners = PartitionOwners(broker, owners_topic.name)
                self._handover = Handover(self.online)
                owners.on_taken = self._handover.taken
                await owners.start()
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
            watch = asyncio.create_task(self._watch_broker(broker))
            with stop_on_signals(self.stop, install=self.handle_signals):
                tick = min(0.2, self.progress_interval_s)
                reported = time.monotonic()
                while not self._stop.is_set() and not self._group_errors:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), tick)
                    if self._handover is not None:
                        self._handover.expire()
                    if self.progress is not None and time.monotonic() - reported >= self.progress_interval_s:
                        reported = time.monotonic()
                        self.progress(self.status())
            watch.cancel()
            stopping_until = time.monotonic() + STOP_TIMEOUT_S
            await _bounded(
                self._revoked([(r.source.topic, r.task.partitions[0]) for r in self._runs]),
                stopping_until,
                "the last checkpoints",
                errors="raise",
            )
        finally:
            self._gc.stop()
            if stopping_until is None:  # an error: the clean-up gets the time a stop would
                stopping_until = time.monotonic() + STOP_TIMEOUT_S
            if group is not None:
                await _bounded(group.close(), stopping_until, "leaving the group")
            if self._handover is not None:  # the new owners restore meanwhile; then nothing is held
                await self._handover.settle(stopping_until)
            if self._owners is not None:
                await _bounded(self._owners.close(), stopping_until, "closing the owners topic")
            for r in list(self._runs):  # after an error, or gained while the worker stopped: retired ones are gone
                # a stopped drive takes its last checkpoint and ends by itself, within the time left
                await _ended(r.drive, grace_s=max(0.0, stopping_until - time.monotonic()))
                await r.source.close()
                r.task.store.close()
            if self.server is not None:
                await self.server.stop()
            await _bounded(broker.close(), stopping_until + 1.0, "closing the broker's clients")
        if self._group_errors:
            raise self._group_errors[0]
        final = self.status()
        final.tasks[:0] = self._released  # every partition it held, with what it did there
        return final

    async def _watch_broker(self: RunnerParts, broker: KafkaBroker) -> None:
        """Check every `BROKER_CHECK_S` that the broker answers; readiness follows it."""
        while True:
            await asyncio.sleep(BROKER_CHECK_S)
            answers = await broker.reachable(timeout_s=2 * BROKER_CHECK_S)
            if not answers and self._broker_down_since is None:
                self._broker_down_since = time.monotonic()
                log.warning("broker unreachable (%s): not ready until it answers again", broker.settings.url)
            elif answers and self._broker_down_since is not None:
                log.warning(
                    "broker reachable again after %.1f s: ready once caught up",
                    time.monotonic() - self._broker_down_since,
                )
                self._broker_down_since = None

    @property
    def pipelines(self: RunnerParts) -> list[Pipeline]:
        """The pipelines the tasks run: the app's, on Kafka with repartitioned ones cut in two."""
        return self._pipelines

    @property
    def released_tasks(self: RunnerParts) -> list[TaskStatus]:
        """Kafka: the final status of each task whose partition moved to another worker."""
        return self._released

    def partition_owners(self: RunnerParts) -> dict[tuple[str, int], Owner]:
        """Kafka with HTTP: the worker that announced each partition last (else empty)."""
        return {} if self._owners is None else self._owners.all()

    def _topic_of(self: RunnerParts, view: str) -> str | None:
        """The input topic of the stream that keeps `view`, here or on another worker (Kafka)."""
        return self._view_topics.get(view) or (self._owners.topic_of(view) if self._owners else None)

    def _locate(self: RunnerParts, view: str, entity: str) -> int | None:
        """The partition that keeps `entity` in `view` (None: no worker keeps that view)."""
        topic = self._topic_of(view)
        if topic is None or self._broker is None:
            return None
        return kafka_partition(entity.encode(), self._broker.partitions(topic))

    def _http_server(self: RunnerParts) -> Server:
        """The HTTP server `settings` ask for (with MCP on it, for ``--mcp``), not started yet."""
        s = self.settings
        return Server(self, *s.http_address, token=s.http_token, mcp=s.mcp, mcp_token=s.mcp_token)

    def owner_url(self: RunnerParts, view: str, partition: int) -> str | None:
        """The URL of the worker that last announced `partition` of `view`'s stream (Kafka)."""
        topic = self._topic_of(view)
        owner = None if topic is None or self._owners is None else self._owners.owner(topic, partition)
        return None if owner is None else owner.url

    def _changelog_topic(self: RunnerParts, pipeline: Pipeline) -> str:
        return f"{self.app.name}-{pipeline.name}-changelog"

    async def _assigned(self: RunnerParts, broker: KafkaBroker, tps: list[tuple[str, int]]) -> None:
        assert self._group is not None
        self._joined = True
        log.info("partitions assigned: %s", ", ".join(f"{t}/{p}" for t, p in tps) or "none")
        if self._handover is not None:
            sources = {pipeline.source for pipeline in self._pipelines}
            self._handover.alone = len(set(tps)) == sum(broker.partitions(t) for t in sources)
        for topic, partition in tps:
            if self._handover is not None:  # gained back before its new owner came: serve it fresh
                self._handover.release(topic, partition)
            for pipeline in self._pipelines:
                if pipeline.source != topic:
                    continue
                started = time.perf_counter()
                changelog = broker.changelog(self._changelog_topic(pipeline), partition)
                store = self._store(pipeline, partition)
                replayed = await changelog.restore(store)
                source = self._group.source(topic, partition)
                changelog.fence = source.still_owned  # a zombie's checkpoints never reach the changelog
                run = await self._open(pipeline, broker, source, store=store, changelog=changelog, catching_up=True)
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
                run.on_caught_up = lambda stream=run.task.stream: self.online.mark_fresh(stream)
                if self._owners is not None and views:
                    await self._owners.announce(topic, partition, self.advertised_url, views)
                self._runs.append(run)
                drive = asyncio.create_task(self._drive(run), name=f"{pipeline.name}/p{partition}")
                drive.add_done_callback(self._drive_done)
                run.drive = drive

    def _drive_done(self: RunnerParts, drive: asyncio.Task[None]) -> None:
        if not drive.cancelled() and drive.exception() is not None:
            log.error("partition task %s failed: %r; the worker stops", drive.get_name(), drive.exception())
            self._group_errors.append(drive.exception())  # type: ignore[arg-type]
            self._stop.set()

    async def _revoked(self: RunnerParts, tps: list[tuple[str, int]]) -> None:
        """Checkpoint each task of a revoked partition (state, changelog, offsets), then close it."""
        lost = set(tps)
        log.info("partitions revoked: %s", ", ".join(f"{t}/{p}" for t, p in tps) or "none")
        for run in [r for r in self._runs if (r.source.topic, r.task.partitions[0]) in lost]:
            await self._retire(run)
            await _ended(run.drive, grace_s=0.0)  # retired above: nothing is left for it to do
            if run not in self._runs:  # a revocation running beside this one (a rebalance during a stop) got it
                continue
            released = self._task_status(run)
            released.released_s = time.monotonic() - self._started
            self._released.append(released)
            self._runs.remove(run)
            await run.source.close()
            if self._handover is not None:
                self._handover.hold(run.source.topic, run.task.partitions[0], run)
            else:
                self.online.unregister(run.task.stream)
                run.task.store.close()
            log.info("partition %s/%d: checkpointed and released", run.source.topic, run.task.partitions[0])


async def _ended(drive: asyncio.Task[None] | None, grace_s: float) -> None:
    """Until `drive` has ended: on its own within `grace_s`, else cancelled. Its task's store
    is closed next, so nothing of the drive may still be running then."""
    if drive is None:
        return
    if grace_s > 0:
        await asyncio.wait([drive], timeout=grace_s)
    drive.cancel()
    await asyncio.wait([drive])


async def _bounded(step: Coroutine[Any, Any, Any], until: float, what: str, *, errors: str = "log") -> None:
    """Run `step`, cut off at monotonic time `until`: a stopping worker must not hang on its broker.

    A step cut off is cancelled and given a second to unwind. Its error is logged, or with
    ``errors="raise"`` raised (the last checkpoints: a failure there is the stop's result).
    """
    task = asyncio.ensure_future(step)
    done, _ = await asyncio.wait([task], timeout=max(0.1, until - time.monotonic()))
    if not done:
        task.cancel()
        log.warning("stopping: %s cut off after the %.0f s stop timeout (broker unreachable?)", what, STOP_TIMEOUT_S)
        await asyncio.wait([task], timeout=1.0)
        return
    error = asyncio.CancelledError(f"{what} was cancelled") if task.cancelled() else task.exception()
    if error is not None:
        if errors == "raise":
            raise error
        log.warning("stopping: %s failed: %r", what, error)


def _default_url(host: str, port: int) -> str:
    """How other workers reach this one when no URL is advertised: the bound host, or this host's name."""
    if host in ("0.0.0.0", "::", ""):
        host = socket.gethostname()
    return f"http://{host}:{port}"
