"""The embedded log as a broker: sources that follow partitions, sinks that append."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence

from streamcore.base.errors import ConfigError, OffsetOutOfRange
from streamcore.base.records import Batches, Headers, RecordBatch, Span
from streamcore.io.log import EmbeddedLog, PartitionReader, TopicConfig
from streamcore.io.log.format import PackedValues
from streamcore.io.log.topics import APPENDS, partition_for
from streamcore.io.log.watch import DirectoryWatch
from streamcore.io.merge import fast_plan_runs
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
        stop_at: Mapping[int, int] | None = None,
    ) -> None:
        self.log = log
        self.stop_at = stop_at
        """The end of input per partition (a replay's range), instead of the end as of `start`."""
        self.offset_reset = offset_reset
        self.topic = topic
        self.tick = merge_tick_ms
        self.partitions = tuple(range(log.topic(topic).partitions))
        self.until_end = until_end
        self._readers: list[PartitionReader] = []
        self._ends: dict[int, int] = {}
        self._heads: list[RecordBatch | None] = []
        """Per partition, its read-ahead; records before its cursor were handed out."""
        self._cursors: list[int] = []
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
        if self.until_end:
            self._ends = ends if self.stop_at is None else {p: min(ends[p], self.stop_at.get(p, ends[p])) for p in ends}
        return moved

    def stop_at_current_end(self) -> None:
        """From now on, treat the current end of every partition as the end of input."""
        self.until_end = True
        self._ends = self.log.end_offsets(self.topic)

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
        the same however many it returns. The order is decided by `merge.plan_runs`
        (compiled where it was built).
        """
        self._appended.clear()  # an append from now on ends the next `wait` at once
        heads, cursors, left = self._heads, self._cursors, max_records
        spans: list[Span] = []
        while left > 0:
            for i, head in enumerate(heads):  # read ahead where nothing is in hand
                if (head is None or cursors[i] >= len(head.values)) and not self._at_end(i):
                    self._head(i, max_records)
            stamps = [None if head is None else head.timestamps for head in heads]
            handed_out = sum(cursors)
            planned = fast_plan_runs(stamps, cursors, self.tick, left, heads)
            if not planned:
                break  # nothing in hand (a plan that stops short leaves a read-ahead to refill)
            spans += planned
            left -= sum(cursors) - handed_out
        if not spans:
            if self.until_end and all(r.position >= self._ends[r.partition] for r in self._readers):
                return Control.END_OF_INPUT
            return None
        if len(spans) == 1:
            head, start, stop = spans[0]
            return head.slice(start, stop)
        return Batches(spans, max_records - left)

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

    def at_end(self, positions: Mapping[int, int]) -> bool:
        return True  # a fetch reads the log's files themselves: finding nothing is their end

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

    def __init__(
        self, log: EmbeddedLog, *, offset_reset: str = "none", stop_at: Mapping[str, Mapping[int, int]] | None = None
    ) -> None:
        self.log = log
        self.offset_reset = offset_reset
        self.stop_at = stop_at or {}
        """Per topic, where its input ends (`streamcore replay`); other topics end where they end."""

    def ensure_topic(self, spec: TopicSpec) -> None:
        self.log.create_topic(TopicConfig(spec.name, spec.partitions, spec.retention_ms, spec.retention_bytes))

    def refuse_missing(self, inputs: Sequence[TopicSpec]) -> None:
        """A run to the end of an input that does not exist would create it empty and report every
        (none) record accounted for: a typo in a topic or log directory. Say so instead."""
        for spec in inputs:
            if not self.log.has_topic(spec.name):
                raise ConfigError(
                    "topic",
                    f"input topic {spec.name!r} does not exist in {self.log.root}; produce to it first "
                    f"(streamcore log produce {spec.name} --partitions {spec.partitions} < records.jsonl)",
                )

    def source(self, topic: str, *, until_end: bool) -> EmbeddedSource:
        stop_at = self.stop_at.get(topic)
        return EmbeddedSource(
            self.log, topic, until_end=until_end or stop_at is not None, offset_reset=self.offset_reset, stop_at=stop_at
        )

    def sink(self, topic: str) -> EmbeddedSink:
        return EmbeddedSink(self.log, topic)

    async def close(self) -> None:
        self.log.close()
