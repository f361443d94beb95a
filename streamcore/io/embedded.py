"""The embedded log as a broker: sources that follow partitions, sinks that append."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from bisect import bisect_left
from collections.abc import Mapping
from heapq import heappop, heappush

from streamcore.base.errors import OffsetOutOfRange
from streamcore.base.records import Batches, Headers, RecordBatch
from streamcore.io.log import EmbeddedLog, PartitionReader, TopicConfig
from streamcore.io.log.format import PackedValues
from streamcore.io.log.topics import APPENDS, partition_for
from streamcore.io.log.watch import DirectoryWatch
from streamcore.io.transport import Control, TopicSpec

MERGE_TICK_MS = 100
log = logging.getLogger("streamcore.embedded")


class EmbeddedSource:
    """Reads all partitions of a topic, merged by append time, in batches.

    The arrival order is deterministic: of the partitions that have records
    available, the next batch comes from the one whose next record has the smallest
    (append-time tick, partition), where a tick is `merge_tick_ms` of append time,
    and runs until another partition's next record would come first. Reading a log
    again from the same positions, after a restart or for a replay, therefore gives
    the same arrivals in the same order, and with them the same watermarks and the
    same late-or-not decisions. The tick keeps batches large when appends of
    several partitions interleave finely. (On a live log, a partition with nothing
    written yet cannot hold the others back.)

    With `until_end`, the end offsets as of `start` are the end of input.
    """

    def __init__(
        self,
        log: EmbeddedLog,
        topic: str,
        *,
        until_end: bool,
        merge_tick_ms: int = MERGE_TICK_MS,
        offset_reset: str = "none",
    ) -> None:
        self.log = log
        self.offset_reset = offset_reset
        self.topic = topic
        self.tick = merge_tick_ms
        self.partitions = tuple(range(log.topic(topic).partitions))
        self.until_end = until_end
        self._readers: list[PartitionReader] = []
        self._ends: dict[int, int] = {}
        self._heads: list[RecordBatch | None] = []
        self._cursors: list[int] = []
        self._keys: list[tuple[int, int] | None] = []
        """Per partition, (tick, partition) of its next record, or None when it has none in hand."""
        self._order: list[tuple[int, int]] = []
        """A heap of those keys; an entry counts while it equals its partition's key (lazy removal)."""
        self._look: set[int] = set()
        """Partitions to look at in the next fetch: the one just read from, and those without a record."""
        self._appended = asyncio.Event()
        """Set when records may have been appended since the last fetch began."""
        self._unsubscribe = APPENDS.subscribe(log.root, topic, self._appended.set)
        self._watch: DirectoryWatch | None = None
        """Appends by other processes (inotify); without it they are seen by polling."""

    async def start(self, positions: Mapping[int, int]) -> dict[int, int]:
        """Seek to `positions`; one past the end of its partition raises `OffsetOutOfRange`,
        or with ``offset_reset="latest"`` moves to that end (returned, so the task resumes there)."""
        moved = {}
        ends = self.log.end_offsets(self.topic)
        for p, position in positions.items():
            if position > ends[p]:
                if self.offset_reset != "latest":
                    raise OffsetOutOfRange(self.topic, p, position, ends[p])
                log.warning(
                    "%s/%d: checkpoint at offset %d is past the log's end %d; going on from the end",
                    self.topic,
                    p,
                    position,
                    ends[p],
                )
                moved[p] = ends[p]
        positions = {**positions, **moved}
        self._readers = [self.log.reader(self.topic, p, positions.get(p)) for p in self.partitions]
        if not self.until_end:
            directories = [self.log.partition_dir(self.topic, p) for p in self.partitions]
            self._watch = DirectoryWatch.start(directories, self._appended.set)
        self._heads = [None] * len(self._readers)
        self._cursors = [0] * len(self._readers)
        self._keys = [None] * len(self._readers)
        self._order = []
        self._look = set(range(len(self._readers)))
        if self.until_end:
            self._ends = ends
        return moved

    def stop_at_current_end(self) -> None:
        """From now on, treat the current end of every partition as the end of input."""
        self.until_end = True
        self._ends = self.log.end_offsets(self.topic)
        self._look = set(range(len(self._readers)))

    def _head(self, i: int, max_records: int) -> RecordBatch | None:
        """The unread part of partition i's read-ahead, reading more if it is used up."""
        head = self._heads[i]
        if head is not None and self._cursors[i] < len(head):
            return head
        reader = self._readers[i]
        limit = max_records
        if self.until_end:
            limit = min(limit, self._ends[reader.partition] - reader.position)
            if limit <= 0:
                self._heads[i] = None
                return None
        head = reader.read(limit)
        self._heads[i], self._cursors[i] = head, 0
        return head

    async def fetch(self, max_records: int) -> RecordBatch | Batches | Control | None:
        """The next runs in the merge order (see the class docstring), up to `max_records` records.

        Runs of several partitions come back together (`Batches`), as many as are in hand:
        at 16 partitions a run holds a handful of records, and each fetch costs the runner
        the same however many it returns.
        """
        self._appended.clear()  # an append from now on ends the next `wait` at once
        first = self._next_run(max_records)
        if not isinstance(first, RecordBatch):
            return first
        runs = [first]
        left = max_records - len(first)
        while left > 0:
            run = self._next_run(left)
            if not isinstance(run, RecordBatch):
                break
            runs.append(run)
            left -= len(run)
        return first if len(runs) == 1 else Batches(runs)

    def _next_run(self, max_records: int) -> RecordBatch | Control | None:
        """The next run of one partition in the merge order, at most `max_records` long.

        Only the partitions whose next record may have changed are looked at (the one read
        from last, and those that had none in hand), and the earliest two come from a heap,
        so a run costs the same with 16 partitions as with one.
        """
        keys, order = self._keys, self._order
        for i in self._look:
            self._find_next(i, max_records)
        self._look = {i for i in self._look if keys[i] is None and not self._at_end(i)}  # the others hold one
        while order and keys[order[0][1]] != order[0]:
            heappop(order)  # stale: that partition's next record changed since
        if not order:
            if self.until_end and all(r.position >= self._ends[r.partition] for r in self._readers):
                return Control.END_OF_INPUT
            return None
        first = heappop(order)
        while order and keys[order[0][1]] != order[0]:
            heappop(order)
        second = order[0] if order else None
        i = first[1]
        keys[i] = None  # it is read from now: look at it again in the next fetch
        self._look.add(i)
        head = self._heads[i]
        assert head is not None
        start = self._cursors[i]
        stop = min(len(head), start + max_records)
        if second is not None:  # stop where the other partition's next record comes first
            bound_tick, bound_i = second
            bound = (bound_tick + 1 if i < bound_i else bound_tick) * self.tick
            stop = max(start + 1, min(stop, bisect_left(head.timestamps, bound, start, stop)))
        self._cursors[i] = stop
        return head.slice(start, stop)

    def _find_next(self, i: int, max_records: int) -> None:
        """Partition i's key for the merge, from its read-ahead (read more if it is used up)."""
        head = self._head(i, max_records)
        key = None if head is None else (head.timestamps[self._cursors[i]] // self.tick, i)
        if key != self._keys[i]:
            self._keys[i] = key
            if key is not None:
                heappush(self._order, key)

    def _at_end(self, i: int) -> bool:
        """With `until_end`, partition i has nothing more to give (no need to look at it again)."""
        reader = self._readers[i]
        return self.until_end and reader.position >= self._ends[reader.partition]

    async def wait(self, timeout_s: float) -> None:
        """Until records may have been appended since the last fetch began, or `timeout_s`.

        Appends by this process and (on Linux, through inotify) by others end the wait at
        once; elsewhere appends of other processes are seen when the runner polls again.
        """
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._appended.wait(), timeout_s)

    async def commit(self, positions: Mapping[int, int]) -> None:
        return None  # positions live in the task's RocksDB checkpoint

    def pause(self) -> None:
        return None  # records are read on demand: nothing is read ahead

    def resume(self) -> None:
        return None

    def lag(self, positions: Mapping[int, int]) -> dict[int, int]:
        return {}  # the end of a partition is only known by reading it (`streamcore log topics` shows it)

    async def close(self) -> None:
        self._unsubscribe()
        if self._watch is not None:
            self._watch.close()
        for reader in self._readers:
            reader.close()


_Buffer = tuple[PackedValues, list[int], list[bytes | None], list[Headers]]
"""One partition's records until the flush: values packed as a frame holds them, then timestamps, keys, headers."""


class EmbeddedSink:
    """Buffers records and appends them, one write per partition, on flush."""

    def __init__(self, log: EmbeddedLog, topic: str) -> None:
        self.log = log
        self.topic = topic
        self.partitions = log.topic(topic).partitions
        self._buffers: dict[int, _Buffer] = {}
        self._round_robin = 0
        if self.partitions == 1:
            self._single: _Buffer = (PackedValues(), [], [], [])
            self._buffers[0] = self._single
            self.add = self._add_single  # type: ignore[method-assign]

    def _add_single(self, key: bytes | None, value: bytes, timestamp: int, headers: Headers = ()) -> None:
        values, stamps, keys, hdrs = self._single
        values.append(value)
        stamps.append(timestamp)
        keys.append(key)
        hdrs.append(headers)

    def add(self, key: bytes | None, value: bytes, timestamp: int, headers: Headers = ()) -> None:
        if self.partitions == 1:
            p = 0
        else:
            p = partition_for(key, self.partitions, self._round_robin)
            if key is None:
                self._round_robin += 1
        buf = self._buffers.get(p)
        if buf is None:
            buf = self._buffers[p] = (PackedValues(), [], [], [])
        buf[0].append(value)
        buf[1].append(timestamp)
        buf[2].append(key)
        buf[3].append(headers)

    @property
    def pending(self) -> int:
        return sum(len(buffer[0]) for buffer in self._buffers.values())

    async def flush(self) -> None:
        self.flush_now()

    def flush_now(self) -> None:
        appended = False
        for p, (values, stamps, keys, headers) in self._buffers.items():
            if values:
                appended = True
                self.log.writer(self.topic, p).append(values, stamps, keys, headers)
                values.clear()
                stamps.clear()
                keys.clear()
                headers.clear()
        if appended:
            APPENDS.notify(self.log.root, self.topic)


class EmbeddedBroker:
    """The embedded log behind the `Broker` protocol."""

    def __init__(self, log: EmbeddedLog, *, offset_reset: str = "none") -> None:
        self.log = log
        self.offset_reset = offset_reset

    def ensure_topic(self, spec: TopicSpec) -> None:
        self.log.create_topic(TopicConfig(spec.name, spec.partitions, spec.retention_ms, spec.retention_bytes))

    def source(self, topic: str, *, until_end: bool) -> EmbeddedSource:
        return EmbeddedSource(self.log, topic, until_end=until_end, offset_reset=self.offset_reset)

    def sink(self, topic: str) -> EmbeddedSink:
        return EmbeddedSink(self.log, topic)

    async def close(self) -> None:
        self.log.close()
