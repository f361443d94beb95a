"""A task's state changelog on Kafka: its RocksDB writes, replicated in order, fenced and repaired.

`KafkaChangelog` is how state follows a partition to another worker. Two guards keep an
evicted worker (a zombie: paused past its session timeout, say) from corrupting it:

* the fence: before each flush the worker asks the broker whether it still owns the
  partition (`KafkaPartitionSource.still_owned`); an evicted one sends nothing
  (`PartitionLost`);
* the repair: a zombie frozen *between* that check and its send still lands its writes
  later, after the new owner's. Compaction keeps the last value per key, so they would
  win at the next restore. The owner knows where its own records must land (right after
  the ones it restored or wrote last): at each flush, records it finds before its own
  are someone else's, and it writes its own values for their keys again, after them.
  What remains open: a zombie write that lands after the owner's last flush before it
  gives the partition up (or is killed) is not repaired.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streamcore.io.kafka_batches import send_placed
from streamcore.io.kafka_settings import KafkaSettings
from streamcore.state.store import TaskStore

log = logging.getLogger("streamcore.kafka")

Ops = list[tuple[bytes, bytes | None]]


class Cluster(Protocol):
    """What a changelog needs of the broker (`streamcore.io.kafka.KafkaBroker`)."""

    settings: KafkaSettings

    @property
    def producer(self) -> AIOKafkaProducer: ...


class PartitionLost(Exception):
    """This worker lost a partition without giving it up (the group evicted it): its checkpoint
    is not replicated, and the partition is now the new owner's."""

    def __init__(self, topic: str, partition: int) -> None:
        super().__init__(f"{topic}/{partition}: this worker is no longer the partition's owner in the group")


class KafkaChangelog:
    """A task's RocksDB writes, replicated in order to a partition of a compacted topic.

    The store hands over each write (`append`), after writing it locally; a checkpoint
    counts for other workers once `flush` has returned. Replaying the topic in order into
    an empty store, then recovering it, gives the state of the last checkpoint that made
    it (see `streamcore.state.store`): the topic holds the journal, the commit record and the
    applied entries, so a checkpoint cut off halfway is dropped, and compaction (last
    value per key) keeps exactly what replaying everything would give.
    """

    def __init__(self, broker: Cluster, topic: str, partition: int) -> None:
        self.broker = broker
        self.topic = topic
        self.partition = partition
        self._pending: Ops = []
        self.fence: Callable[[], Awaitable[bool]] | None = None
        """Asked before each flush: does this worker still own the partition? (`KafkaPartitionSource.still_owned`)"""
        self._store: TaskStore | None = None
        self._next: int | None = None
        """Where this worker's next record must land if no one else writes here: the offset
        after its own last record, or after what it restored."""

    def append(self, ops: Ops) -> None:
        self._pending.extend(ops)

    async def flush(self) -> int:
        """Send what was appended; return the offset after it (the next one).

        `PartitionLost` if the group no longer counts this worker the partition's owner: then
        nothing is sent. Its new owner restored from this topic and writes to it: a zombie's
        late checkpoint there would bring back state the new owner has moved past.
        """
        pending, self._pending = self._pending, []
        if not pending:
            return -1
        while pending:
            await self._check_fence()
            foreign = await self._send(pending)
            pending = await self._repairs(foreign)
        assert self._next is not None
        return self._next

    async def _check_fence(self) -> None:
        if self.fence is not None and not await self.fence():
            raise PartitionLost(self.topic, self.partition)

    async def _send(self, ops: Ops) -> list[tuple[int, int]]:
        """Send `ops`; return the offset ranges before them that another worker wrote."""
        records = [(self.partition, key, value, None, ()) for key, value in ops]
        foreign = []
        for _, first, count in await send_placed(self.broker.producer, self.topic, records):  # waits for every record
            if self._next is not None and first > self._next:
                foreign.append((self._next, first))
            self._next = first + count
        return foreign

    async def _repairs(self, foreign: list[tuple[int, int]]) -> Ops:
        """This worker's values for every key another worker wrote in the `foreign` ranges."""
        if not foreign or self._store is None:
            return []
        keys: dict[bytes, None] = {}
        for start, end in foreign:
            await self.read(start, lambda ops: keys.update(dict.fromkeys(k for k, _ in ops)), until=end)
        repairs = self._store.current_values([k for k in keys if not TaskStore.is_journal(k)])
        log.warning(
            "%s/%d: %d records another worker wrote here after this one took the partition over (a zombie's "
            "late checkpoint); this worker's values for their %d keys are written again after them",
            self.topic, self.partition, sum(end - start for start, end in foreign), len(repairs),
        )  # fmt: skip
        return repairs

    async def restore(self, store: TaskStore) -> int:
        """Bring a partition's store up to this changelog; return the changelog records replayed.

        The local copy is kept when its checkpoint is the one the changelog is known to
        hold (then only the tail is read); otherwise it may hold a checkpoint that never
        reached the changelog, and is rebuilt from all of it.
        """
        mark = store.changelog_mark()
        meta = store.load_checkpoint()
        start = None
        if mark is not None and meta is not None and meta["id"] == mark[0]:
            start = mark[1]
        else:
            store.clear()
        replayed = await self.read(start, store.replay)
        store.changelog = self
        self._store = store
        store.recover()  # a checkpoint cut off halfway is dropped, a committed one finished
        return replayed

    async def read(self, start: int | None, apply: Callable[[Ops], None], until: int | None = None) -> int:
        """Replay from `start` (None: the beginning) to `until` (None: the current end); return
        records read. Afterwards `_next` is the offset after the last one read, when read to the end."""
        s = self.broker.settings
        consumer = AIOKafkaConsumer(
            bootstrap_servers=s.bootstrap_servers,
            client_id=f"{s.client_id}-restore",
            enable_auto_commit=False,
            max_partition_fetch_bytes=max(s.max_partition_fetch_bytes, 4 << 20),
            fetch_max_wait_ms=10,
        )
        tp = TopicPartition(self.topic, self.partition)
        await consumer.start()
        try:
            consumer.assign([tp])
            end = until if until is not None else (await consumer.end_offsets([tp]))[tp]
            if start is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, start)
            read = 0
            while await consumer.position(tp) < end:
                found = await consumer.getmany(tp, timeout_ms=200, max_records=2000)
                records = [r for r in found.get(tp, []) if until is None or r.offset < until]
                if records:
                    apply([(r.key, r.value) for r in records])
                    read += len(records)
            if until is None:  # a fetch returns whole batches: the position is past the true end
                self._next = await consumer.position(tp)
            return read
        finally:
            await consumer.stop()
