"""A bounded read of Kafka topics outside any consumer group: what `streamcore replay` runs on.

`KafkaRangeBroker` is the `Broker` of a replay: each source reads all partitions of one
topic from given first offsets up to given end offsets (`KafkaRange`), with a consumer of
its own that joins no group and commits nothing, so the app's live workers are not
disturbed; sinks are the worker's own (`KafkaSink`). Topics must exist beforehand (the
replay creates its outputs), since `ensure_topic` here only checks names.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition

from streamcore.base.errors import TopicNotFound
from streamcore.base.records import RecordBatch
from streamcore.io.kafka import KafkaBroker, KafkaSink
from streamcore.io.kafka_source import KafkaPartitionSource
from streamcore.io.transport import Control, TopicSpec

FETCH_WAIT_MS = 100


class KafkaRange:
    """All partitions of `topic`, each from its first offset up to (not including) its end offset."""

    def __init__(self, consumer: AIOKafkaConsumer, topic: str, ends: Mapping[int, int]) -> None:
        self.consumer = consumer
        self.topic = topic
        self.partitions: tuple[int, ...] = tuple(sorted(ends))
        self._ends = dict(ends)
        self._parts = {p: KafkaPartitionSource(consumer, topic, p) for p in self.partitions}
        self._positions: dict[int, int] = {}
        self._next = 0  # round robin over the partitions

    async def start(self, positions: Mapping[int, int]) -> dict[int, int]:
        await self.consumer.start()
        self.consumer.assign([TopicPartition(self.topic, p) for p in self.partitions])
        for p in self.partitions:
            position = positions.get(p, 0)
            self.consumer.seek(TopicPartition(self.topic, p), position)
            self._positions[p] = position
        return {}

    async def fetch(self, max_records: int) -> RecordBatch | Control | None:
        left = [p for p in self.partitions if self._positions[p] < self._ends[p]]
        if not left:
            return Control.END_OF_INPUT
        for _ in range(len(left)):
            p = left[self._next % len(left)]
            self._next += 1
            batch = await self._parts[p].fetch(max_records)
            if isinstance(batch, RecordBatch):
                end = self._ends[p]
                if batch.base_offset >= end:
                    continue  # past the range (Tansu's end offsets fall inside its last batch)
                if batch.next_offset > end:
                    batch = batch.slice(0, end - batch.base_offset)
                self._positions[p] = batch.next_offset
                return batch
        return None

    async def wait(self, timeout_s: float) -> None:
        left = [p for p in self.partitions if self._positions[p] < self._ends[p]]
        if left:  # one partition's fetch in its own read-ahead (`KafkaPartitionSource.wait`)
            await self._parts[left[self._next % len(left)]].wait(min(timeout_s, FETCH_WAIT_MS / 1000))
        else:
            await asyncio.sleep(0)

    async def commit(self, positions: Mapping[int, int]) -> None:
        return None  # a replay's positions live in its own state; the app's group is not touched

    def pause(self) -> None:
        return None

    def resume(self) -> None:
        return None

    def lag(self, positions: Mapping[int, int]) -> dict[int, int]:
        return {p: max(0, self._ends[p] - positions.get(p, 0)) for p in self.partitions}

    def at_end(self, positions: Mapping[int, int]) -> bool:
        return all(self._positions[p] >= self._ends[p] for p in self.partitions)

    async def close(self) -> None:
        await self.consumer.stop()


class KafkaRangeBroker:
    """The `Broker` of a replay: bounded sources (`KafkaRange`), the worker's sinks."""

    def __init__(self, broker: KafkaBroker, ends: Mapping[str, Mapping[int, int]]) -> None:
        self.broker = broker
        self.ends = ends

    def ensure_topic(self, spec: TopicSpec) -> None:
        return None  # created (outputs) or checked (inputs) by the replay before it runs

    def source(self, topic: str, *, until_end: bool) -> KafkaRange:
        if topic not in self.ends:
            raise TopicNotFound(topic)
        s = self.broker.settings
        consumer = AIOKafkaConsumer(
            bootstrap_servers=s.bootstrap_servers,
            client_id=f"{s.client_id}-replay",
            enable_auto_commit=False,
            fetch_max_wait_ms=s.fetch_max_wait_ms,
            max_partition_fetch_bytes=s.max_partition_fetch_bytes,
        )
        return KafkaRange(consumer, topic, self.ends[topic])

    def sink(self, topic: str) -> KafkaSink:
        return self.broker.sink(topic)

    async def close(self) -> None:
        return None  # the broker is the admin's: it closes it
