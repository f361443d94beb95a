"""One assigned Kafka partition as a `Source`: fetched records in batches, pause, lag, commits."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.protocol.commit import OffsetCommitRequest

from streamcore.base.records import RecordBatch
from streamcore.io.transport import Control

log = logging.getLogger("streamcore.kafka")


class KafkaPartitionSource:
    """The records of one assigned partition, from the group's consumer (the `Source` protocol)."""

    def __init__(self, consumer: AIOKafkaConsumer, topic: str, partition: int) -> None:
        self.consumer = consumer
        self.topic = topic
        self.partitions: tuple[int, ...] = (partition,)
        self.tp = TopicPartition(topic, partition)
        self._ready: list[RecordBatch] = []
        self.paused = False
        self._safe: int | None = None
        """The newest offset known to be covered by a replicated checkpoint (restored or committed)."""
        self._start = 0
        """Where reading started: the checkpointed or committed offset, or the partition's first."""

    async def start(self, positions: Mapping[int, int]) -> dict[int, int]:
        """Seek to the checkpointed position; without one, to the group's committed offset or the start."""
        position = positions.get(self.tp.partition)
        if position is None:
            position = await self.consumer.committed(self.tp)
        if position is None:
            await self.consumer.seek_to_beginning(self.tp)
            self._start = (await self.consumer.beginning_offsets([self.tp]))[self.tp]
        else:
            self.consumer.seek(self.tp, position)
            self._start = position
        self._safe = position
        return {}

    async def fetch(self, max_records: int) -> RecordBatch | Control | None:
        if not self._ready:
            found = await self.consumer.getmany(self.tp, timeout_ms=0, max_records=max_records)
            self._take(found.get(self.tp, ()))
        return self._ready.pop(0) if self._ready else None

    async def wait(self, timeout_s: float) -> None:
        if not self._ready:
            found = await self.consumer.getmany(self.tp, timeout_ms=int(timeout_s * 1000), max_records=1000)
            self._take(found.get(self.tp, ()))

    def _take(self, records: Iterable[Any]) -> None:
        """Cut consumer records into batches of consecutive offsets (compaction and
        transaction markers leave gaps; a `RecordBatch` has none)."""
        records = list(records)
        if records and records[-1].offset - records[0].offset == len(records) - 1:  # no gap: columns at once
            headers = [tuple(r.headers) for r in records] if any(r.headers for r in records) else None
            self._ready.append(
                RecordBatch(
                    self.topic,
                    self.tp.partition,
                    records[0].offset,
                    [b"" if r.value is None else r.value for r in records],
                    [r.timestamp for r in records],
                    [r.key for r in records],
                    headers,
                )
            )
            return
        batch: RecordBatch | None = None
        for r in records:
            if batch is None or r.offset != batch.base_offset + len(batch.values):
                batch = RecordBatch(self.topic, self.tp.partition, r.offset, [], [], [], [])
                self._ready.append(batch)
            batch.values.append(r.value if r.value is not None else b"")
            batch.timestamps.append(r.timestamp)  # type: ignore[attr-defined]
            batch.keys.append(r.key)  # type: ignore[union-attr]
            batch.headers.append(tuple(r.headers))  # type: ignore[union-attr]

    def lag(self, positions: Mapping[int, int]) -> dict[int, int]:
        """Records of this partition not processed yet (empty until the first fetch response)."""
        highwater = self.consumer.highwater(self.tp)
        position = positions.get(self.tp.partition)
        if highwater is None or position is None:
            return {}
        return {self.tp.partition: max(0, highwater - position)}

    def at_end(self, positions: Mapping[int, int]) -> bool:
        """Caught up only once the broker's high watermark is known (from a fetch response) and
        reached: before that, an empty fetch just means nothing was fetched yet."""
        highwater = self.consumer.highwater(self.tp)
        position = max(positions.get(self.tp.partition, 0), self._start)
        return highwater is not None and position >= highwater

    def pause(self) -> None:
        """Stop prefetching this partition (its outputs are stuck); the group still heartbeats."""
        if not self.paused:
            self.consumer.pause(self.tp)
            self.paused = True

    def resume(self) -> None:
        if self.paused:
            self.consumer.resume(self.tp)
            self.paused = False

    async def commit(self, positions: Mapping[int, int]) -> None:
        position = positions.get(self.tp.partition)
        if position is None:
            return
        try:
            await self.consumer.commit({self.tp: position})
        except KafkaError as exc:  # the partition moved on: the checkpoint in RocksDB still holds
            log.warning("offset commit for %s failed (%s); the next owner resumes from the changelog", self.tp, exc)
            return
        self._safe = position

    async def still_owned(self) -> bool:
        """Whether the group still counts this worker a member of the generation that gave it
        the partition (False: it was evicted, say while paused past its session timeout, and
        the partition has another owner now).

        The broker decides: the last offset known safe is committed again, and Kafka refuses
        a commit from a member it no longer knows (a fence). Asked before a checkpoint is
        replicated to the changelog, so that such a zombie's late writes never land there.
        """
        if self._safe is None:
            return True  # nothing restored or committed yet: there is nothing to re-commit
        try:
            await self.consumer.commit({self.tp: self._safe})
        except KafkaError:
            return not self.evicted()
        return True

    def evicted(self) -> bool:
        """The group coordinator told this consumer it is not a member any more (its generation
        is reset: aiokafka does that on UnknownMemberId and IllegalGeneration)."""
        coordinator = getattr(self.consumer, "_coordinator", None)
        return coordinator is not None and coordinator.generation == OffsetCommitRequest.DEFAULT_GENERATION_ID

    async def close(self) -> None:
        self._ready.clear()
