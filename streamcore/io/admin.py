"""Topics as an operator's tools see them, on the embedded log and on Kafka alike.

`streamcore log` and `streamcore dlq` work through a `TopicAdmin`: list topics with their
offsets, create one, read a topic's records (up to the end each partition had when the
read began, or following it), append records. `open_admin(broker)` returns the embedded
log's (`EmbeddedAdmin`) or Kafka's (`KafkaAdmin`), so a tool has one code path for both.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streamcore.base.clock import SystemClock
from streamcore.base.errors import ConfigError, StreamcoreError, TopicNotFound
from streamcore.base.records import Headers, Record
from streamcore.io.kafka import KafkaBroker
from streamcore.io.kafka_settings import KafkaSettings
from streamcore.io.log import EmbeddedLog, TopicConfig

READ_CHUNK = 1_000
FOLLOW_POLL_S = 0.05


@dataclass(frozen=True, slots=True)
class TopicInfo:
    """A topic's partitions and, per partition, its first and next offsets."""

    name: str
    partitions: int
    start_offsets: dict[int, int]
    end_offsets: dict[int, int]

    @property
    def records(self) -> int:
        return sum(self.end_offsets[p] - self.start_offsets.get(p, 0) for p in self.end_offsets)


@dataclass(frozen=True, slots=True)
class Append:
    """A record to append; without a partition it goes where its key hashes (round robin without one)."""

    value: bytes
    key: bytes | None = None
    timestamp: int | None = None
    headers: Headers = ()
    partition: int | None = None


class TopicAdmin(Protocol):
    """What the tools need of a broker."""

    where: str
    """The broker, for messages: ``kafka://host:port`` or the log's directory."""

    async def topics(self) -> list[TopicInfo]: ...

    async def topic(self, name: str) -> TopicInfo:
        """The topic's partitions and offsets; `TopicNotFound` if there is no such topic."""
        ...

    async def create_topic(self, name: str, partitions: int, retention_ms: int | None = None) -> None: ...

    def read(
        self, topic: str, partitions: Sequence[int] | None = None, offset: int | None = None, *, follow: bool = False
    ) -> AsyncIterator[list[Record]]:
        """The records of `partitions` (all) from `offset` (the beginning) on, a chunk at a time:
        up to the end offsets as of the call, or with `follow` for as long as the caller reads."""
        ...

    async def append(self, topic: str, records: Sequence[Append]) -> None:
        """Append `records`; when this returns they are durable (flushed, acknowledged)."""
        ...

    async def offsets_for_time(self, topic: str, timestamp_ms: int) -> dict[int, int]:
        """Per partition, the first offset stamped at or after `timestamp_ms`, or the end offset."""
        ...

    async def delete_topic(self, name: str) -> None: ...

    async def close(self) -> None: ...


class EmbeddedAdmin:
    """The embedded log behind `TopicAdmin`."""

    def __init__(self, log: EmbeddedLog) -> None:
        self.log = log
        self.where = str(log.root)
        self._clock = SystemClock()

    async def topics(self) -> list[TopicInfo]:
        return [self._info(config) for config in self.log.topics()]

    async def topic(self, name: str) -> TopicInfo:
        return self._info(self.log.topic(name))

    def _info(self, config: TopicConfig) -> TopicInfo:
        name = config.name
        return TopicInfo(name, config.partitions, self.log.start_offsets(name), self.log.end_offsets(name))

    async def create_topic(self, name: str, partitions: int, retention_ms: int | None = None) -> None:
        self.log.create_topic(TopicConfig(name, partitions, retention_ms))

    async def read(
        self, topic: str, partitions: Sequence[int] | None = None, offset: int | None = None, *, follow: bool = False
    ) -> AsyncIterator[list[Record]]:
        config = self.log.topic(topic)
        chosen = list(range(config.partitions)) if partitions is None else list(partitions)
        ends = self.log.end_offsets(topic)
        readers = [self.log.reader(topic, p, offset) for p in chosen]
        try:
            while True:
                chunk: list[Record] = []
                for reader in readers:
                    limit = READ_CHUNK if follow else min(READ_CHUNK, ends[reader.partition] - reader.position)
                    batch = reader.read(limit) if limit > 0 else None
                    if batch is not None:
                        chunk.extend(batch.records())
                if chunk:
                    yield chunk
                elif follow:
                    await asyncio.sleep(FOLLOW_POLL_S)
                else:
                    return
        finally:
            for reader in readers:
                reader.close()

    async def append(self, topic: str, records: Sequence[Append]) -> None:
        self.log.topic(topic)  # TopicNotFound before anything is written
        now = self._clock.now_ms()
        producer = self.log.producer(topic)
        by_partition: dict[int | None, list[Append]] = defaultdict(list)
        for record in records:
            by_partition[record.partition].append(record)
        for partition, chosen in by_partition.items():
            producer.send_many(
                [r.value for r in chosen],
                [now if r.timestamp is None else r.timestamp for r in chosen],
                [r.key for r in chosen],
                [r.headers for r in chosen],
                partition=partition,
            )

    async def offsets_for_time(self, topic: str, timestamp_ms: int) -> dict[int, int]:
        return self.log.offsets_for_time(topic, timestamp_ms)

    async def delete_topic(self, name: str) -> None:
        self.log.delete_topic(name)

    async def close(self) -> None:
        self.log.close()


class KafkaAdmin:
    """A Kafka cluster behind `TopicAdmin`: the worker's own clients (`KafkaBroker`: an admin
    client and a producer) plus a consumer without a group for reads, so reading moves no
    group's offsets."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self.where = settings.url
        self.broker = KafkaBroker(settings)

    async def start(self) -> None:
        await self.broker.start()

    @property
    def admin(self) -> AIOKafkaAdminClient:
        return self.broker.admin

    def _consumer(self) -> AIOKafkaConsumer:
        s = self.settings
        return AIOKafkaConsumer(
            bootstrap_servers=s.bootstrap_servers,
            client_id=f"{s.client_id}-tools",
            enable_auto_commit=False,
            fetch_max_wait_ms=50,
        )

    async def _partitions(self, name: str) -> int:
        # Asking a broker with auto.create.topics.enable about one topic by name creates it
        # (Kafka's default; Tansu too): a tool that only reads must not, so look it up first.
        if name not in await self.admin.list_topics():
            raise TopicNotFound(name)
        described = await self.admin.describe_topics([name])
        if not described or described[0].get("error_code") or not described[0]["partitions"]:
            raise TopicNotFound(name)
        return len(described[0]["partitions"])

    async def topics(self) -> list[TopicInfo]:
        names = sorted(n for n in await self.admin.list_topics() if not n.startswith("__"))
        return await self._infos({name: await self._partitions(name) for name in names})

    async def topic(self, name: str) -> TopicInfo:
        return (await self._infos({name: await self._partitions(name)}))[0]

    async def _infos(self, partitions: dict[str, int]) -> list[TopicInfo]:
        """The offsets of these topics (name -> partition count), asked with one consumer."""
        tps = [TopicPartition(name, p) for name, count in partitions.items() for p in range(count)]
        consumer = self._consumer()
        await consumer.start()
        try:
            starts = await consumer.beginning_offsets(tps)
            ends = await consumer.end_offsets(tps)
        finally:
            await consumer.stop()
        return [
            TopicInfo(
                name,
                count,
                {p: starts[TopicPartition(name, p)] for p in range(count)},
                {p: ends[TopicPartition(name, p)] for p in range(count)},
            )
            for name, count in partitions.items()
        ]

    async def create_topic(self, name: str, partitions: int, retention_ms: int | None = None) -> None:
        configs = {"cleanup.policy": "delete"}  # explicit: some brokers (Tansu) return no defaults
        if retention_ms is not None:
            configs["retention.ms"] = str(retention_ms)
        topic = NewTopic(name, partitions, self.settings.replication_factor, topic_configs=configs)
        await self.admin.create_topics([topic])

    async def read(
        self, topic: str, partitions: Sequence[int] | None = None, offset: int | None = None, *, follow: bool = False
    ) -> AsyncIterator[list[Record]]:
        count = await self._partitions(topic)
        tps = [TopicPartition(topic, p) for p in (range(count) if partitions is None else partitions)]
        consumer = self._consumer()
        await consumer.start()
        try:
            consumer.assign(tps)
            for tp in tps:
                if offset is None:
                    await consumer.seek_to_beginning(tp)
                else:
                    consumer.seek(tp, offset)
            ends = await consumer.end_offsets(tps)
            while True:
                left = [tp for tp in tps if follow or await consumer.position(tp) < ends[tp]]
                if not left:
                    return
                found = await consumer.getmany(*left, timeout_ms=200, max_records=READ_CHUNK)
                chunk = [  # whole fetched batches: Tansu's end offset is its last batch's base offset + 1
                    Record(r.topic, r.partition, r.offset, r.timestamp, r.key, r.value, tuple(r.headers or ()))
                    for tp in left
                    for r in found.get(tp, [])
                ]
                if chunk:
                    yield chunk
        finally:
            await consumer.stop()

    async def append(self, topic: str, records: Sequence[Append]) -> None:
        await self._partitions(topic)  # TopicNotFound before anything is sent
        producer = self.broker.producer
        sent = [
            await producer.send(
                topic,
                r.value,
                key=r.key,
                partition=r.partition,
                timestamp_ms=r.timestamp,
                headers=list(r.headers) or None,
            )
            for r in records
        ]
        await producer.flush()
        for future in sent:
            await future  # raises if the broker refused one

    async def offsets_for_time(self, topic: str, timestamp_ms: int) -> dict[int, int]:
        tps = [TopicPartition(topic, p) for p in range(await self._partitions(topic))]
        consumer = self._consumer()
        await consumer.start()
        try:
            found = await consumer.offsets_for_times(dict.fromkeys(tps, timestamp_ms))
            ends = await consumer.end_offsets(tps)
        finally:
            await consumer.stop()
        return {tp.partition: ends[tp] if found.get(tp) is None else found[tp].offset for tp in tps}

    async def delete_topic(self, name: str) -> None:
        await self._partitions(name)  # TopicNotFound
        await self.admin.delete_topics([name])

    # -- a consumer group's offsets (`streamcore reset`) -----------------------------------------
    async def group_members(self, group: str) -> int:
        """How many consumers are members of `group` now."""
        described = await self.admin.describe_consumer_groups([group])
        members = 0
        for response in described:
            for entry in response.groups:
                members += len(entry[-1]) if entry[1] == group else 0  # (error, id, state, type, protocol, members)
        return members

    async def group_offsets(self, group: str, topics: Sequence[str]) -> dict[tuple[str, int], int]:
        """The offsets `group` committed for the partitions of `topics`, by (topic, partition)."""
        tps = [TopicPartition(name, p) for name in topics for p in range(await self._partitions(name))]
        consumer = self._group_consumer(group)
        await consumer.start()
        try:
            consumer.assign(tps)
            committed = {tp: await consumer.committed(tp) for tp in tps}  # OffsetFetch as workers do it
        finally:
            await consumer.stop()
        return {(tp.topic, tp.partition): offset for tp, offset in committed.items() if offset is not None}

    async def commit_group_offsets(
        self, group: str, offsets: dict[tuple[str, int], int], *, timeout_s: float = 60.0
    ) -> None:
        """Commit `offsets` as `group`'s next positions, joining it as its only member to do so.

        A commit from outside the group is refused while the broker lists any member, and
        some brokers (Tansu) list a stopped worker for good: as a member, the commit is
        accepted wherever the group has no live worker (which the caller made sure of)."""
        consumer = self._group_consumer(group)
        wanted = {TopicPartition(topic, p): offset for (topic, p), offset in offsets.items()}
        await consumer.start()
        try:
            consumer.subscribe(sorted({tp.topic for tp in wanted}))
            deadline = asyncio.get_running_loop().time() + timeout_s
            while not set(wanted) <= consumer.assignment():
                if asyncio.get_running_loop().time() > deadline:
                    raise StreamcoreError(f"could not join consumer group {group!r} to commit its offsets")
                await consumer.getmany(timeout_ms=100, max_records=1)  # drives the join; records are not used
            await consumer.commit(wanted)
        finally:
            await consumer.stop()

    def _group_consumer(self, group: str) -> AIOKafkaConsumer:
        """A consumer of `group` that commits only when told: it reads offsets without joining
        (manual assignment), or joins with the worker's session settings to commit them."""
        s = self.settings
        return AIOKafkaConsumer(
            bootstrap_servers=s.bootstrap_servers,
            client_id=f"{s.client_id}-tools",
            group_id=group,
            enable_auto_commit=False,
            session_timeout_ms=s.session_timeout_ms,
            heartbeat_interval_ms=s.heartbeat_interval_ms,
        )

    async def close(self) -> None:
        await self.broker.close()


async def open_admin(broker: str) -> EmbeddedAdmin | KafkaAdmin:
    """The `TopicAdmin` of ``embedded:<dir>`` or ``kafka://host:port``."""
    if broker.startswith("kafka://"):
        admin = KafkaAdmin(KafkaSettings.from_url(broker))
        await admin.start()
        return admin
    if broker.startswith("embedded:"):
        return EmbeddedAdmin(EmbeddedLog(broker.removeprefix("embedded:")))
    raise ConfigError("broker", f"expected embedded:<dir> or kafka://host:port, got {broker!r}")
