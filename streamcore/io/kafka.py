"""Kafka as the broker (aiokafka): topics, a consumer group, sinks and state changelogs.

`KafkaBroker` implements the same `Broker` protocol as the embedded log for topics and
sinks. Sources differ: a worker does not read "a topic" but the partitions the group
assigns to it, so the runner asks for a `KafkaGroup`, and gets one `KafkaPartitionSource`
per assigned partition (each becomes its own task with its own state).

Offsets: the task's RocksDB checkpoint is the source of truth for where to resume; the
group's committed offsets follow each checkpoint (``commit``) and are used only when a
partition has no state anywhere yet. Outputs are at-least-once (flushed before the
checkpoint that covers them). Kafka transactions would make them exactly-once; they are
not used, so that the same code runs against brokers without them.

Every setting comes from `KafkaSettings` (``STREAMCORE_KAFKA_*`` variables).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from streamcore.base.errors import ConfigError
from streamcore.base.records import Headers
from streamcore.io.kafka_batches import OutRecord, send_batches
from streamcore.io.kafka_changelog import KafkaChangelog
from streamcore.io.kafka_settings import ENV_PREFIX, KafkaSettings, kafka_partition
from streamcore.io.kafka_source import KafkaPartitionSource
from streamcore.io.transport import TopicSpec

log = logging.getLogger("streamcore.kafka")


class KafkaBroker:
    """Topics, sinks, consumer groups and changelogs on one Kafka cluster."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self._admin: AIOKafkaAdminClient | None = None
        self._producer: AIOKafkaProducer | None = None
        self._partitions: dict[str, int] = {}

    async def start(self) -> None:
        s = self.settings
        try:
            self._admin = AIOKafkaAdminClient(bootstrap_servers=s.bootstrap_servers, client_id=s.client_id)
            await self._admin.start()
            self._producer = AIOKafkaProducer(
                bootstrap_servers=s.bootstrap_servers,
                client_id=s.client_id,
                linger_ms=s.linger_ms,
                max_batch_size=s.max_batch_size,
                compression_type=s.compression_type or None,
                acks=int(s.acks) if s.acks.lstrip("-").isdigit() else s.acks,
                enable_idempotence=False,
                max_request_size=max(1 << 20, s.max_batch_size),
            )
            await self._producer.start()
        except Exception as exc:
            await self.close()
            raise ConfigError("broker", f"cannot reach Kafka at {s.url}: {exc}") from exc

    @property
    def producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("KafkaBroker.start() was not awaited")
        return self._producer

    @property
    def admin(self) -> AIOKafkaAdminClient:
        if self._admin is None:
            raise RuntimeError("KafkaBroker.start() was not awaited")
        return self._admin

    async def ensure_topic(self, spec: TopicSpec, *, internal: bool = False, compacted: bool = False) -> int:
        """Check that the topic exists (creating it if asked); return its partition count."""
        assert self._admin is not None
        if spec.name in self._partitions:
            return self._partitions[spec.name]
        existing = set(await self._admin.list_topics())
        if spec.name not in existing:
            if not (internal or self.settings.create_topics):
                raise ConfigError(
                    "topic",
                    f"topic {spec.name!r} does not exist on {self.settings.url}; create it "
                    f"({spec.partitions} partition(s)) or set {ENV_PREFIX}CREATE_TOPICS=1",
                )
            configs = {"cleanup.policy": "compact" if compacted else "delete"}
            if spec.retention_ms is not None:
                configs["retention.ms"] = str(spec.retention_ms)
            if spec.retention_bytes is not None:
                configs["retention.bytes"] = str(spec.retention_bytes)
            await self._admin.create_topics(
                [NewTopic(spec.name, spec.partitions, self.settings.replication_factor, topic_configs=configs)]
            )
            log.info("created topic %s (%d partitions, %s)", spec.name, spec.partitions, configs)
        described = await self._admin.describe_topics([spec.name])
        partitions = len(described[0]["partitions"]) or spec.partitions
        self._partitions[spec.name] = partitions
        return partitions

    def partitions(self, topic: str) -> int:
        return self._partitions[topic]

    async def reachable(self, timeout_s: float) -> bool:
        """Whether the cluster answers a metadata request within `timeout_s`."""
        assert self._admin is not None
        try:
            await asyncio.wait_for(self._admin.list_topics(), timeout_s)
        except (TimeoutError, KafkaError, OSError):
            return False
        return True

    def sink(self, topic: str) -> KafkaSink:
        return KafkaSink(self, topic)

    def group(
        self,
        topics: Iterable[str],
        group_id: str,
        on_assigned: Callable[[list[tuple[str, int]]], Awaitable[None]],
        on_revoked: Callable[[list[tuple[str, int]]], Awaitable[None]],
    ) -> KafkaGroup:
        return KafkaGroup(self, list(topics), group_id, on_assigned, on_revoked)

    def changelog(self, topic: str, partition: int) -> KafkaChangelog:
        return KafkaChangelog(self, topic, partition)

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
        if self._admin is not None:
            await self._admin.close()
            self._admin = None


class KafkaSink:
    """Buffers outputs; `flush` sends them and waits until the broker has them all.

    Keys, timestamps and headers are kept; keyed records go to the partition Kafka's
    default partitioner picks, so a downstream consumer sees one key in one partition.
    """

    def __init__(self, broker: KafkaBroker, topic: str) -> None:
        self.broker = broker
        self.topic = topic
        self._buffer: list[tuple[bytes | None, bytes, int, Headers, int | None]] = []
        self._round_robin = 0

    def add(
        self, key: bytes | None, value: bytes, timestamp: int, headers: Headers = (), partition: int | None = None
    ) -> None:
        """Buffer a record; `partition` None: the default partitioner's choice (by key)."""
        self._buffer.append((key, value, timestamp, headers, partition))

    @property
    def pending(self) -> int:
        return len(self._buffer)

    async def flush(self) -> None:
        if not self._buffer:
            return
        buffered, self._buffer = self._buffer, []
        partitions = self.broker.partitions(self.topic)
        records: list[OutRecord] = []
        for key, value, timestamp, headers, partition in buffered:
            if partition is None:
                if key is None:
                    partition = self._round_robin % partitions
                    self._round_robin += 1
                else:
                    partition = kafka_partition(key, partitions)  # as Kafka's default partitioner
            records.append((partition, key, value, timestamp, headers))
        await send_batches(self.broker.producer, self.topic, records)


class KafkaGroup(ConsumerRebalanceListener):  # type: ignore[misc]
    """One consumer in the app's group; tells the runner which partitions it gains and loses.

    `on_revoked` runs before a partition goes to another worker: the runner checkpoints
    its task (state and offsets) there. `on_assigned` runs before any record of a gained
    partition is fetched: the runner restores its state there.
    """

    def __init__(
        self,
        broker: KafkaBroker,
        topics: list[str],
        group_id: str,
        on_assigned: Callable[[list[tuple[str, int]]], Awaitable[None]],
        on_revoked: Callable[[list[tuple[str, int]]], Awaitable[None]],
    ) -> None:
        s = broker.settings
        self.topics = topics
        self._on_assigned = on_assigned
        self._on_revoked = on_revoked
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=s.bootstrap_servers,
            client_id=s.client_id,
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=s.fetch_max_wait_ms,
            fetch_min_bytes=s.fetch_min_bytes,
            max_partition_fetch_bytes=s.max_partition_fetch_bytes,
            session_timeout_ms=s.session_timeout_ms,
            heartbeat_interval_ms=s.heartbeat_interval_ms,
            max_poll_interval_ms=s.max_poll_interval_ms,
            isolation_level="read_committed",
        )

    async def start(self) -> None:
        await self.consumer.start()
        self.consumer.subscribe(topics=self.topics, listener=self)

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self._on_revoked(sorted((tp.topic, tp.partition) for tp in revoked))

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        await self._on_assigned(sorted((tp.topic, tp.partition) for tp in assigned))

    def source(self, topic: str, partition: int) -> KafkaPartitionSource:
        return KafkaPartitionSource(self.consumer, topic, partition)

    async def close(self) -> None:
        await self.consumer.stop()
