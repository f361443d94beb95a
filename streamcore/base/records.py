"""Records as they move between the log, the engine and sinks.

`RecordBatch` is columnar on purpose: the engine's hot loop walks a list of
values and never builds one object per record.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

Headers = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True)
class Record:
    """One record of a topic partition, for tools and user-facing APIs."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes
    headers: Headers = ()

    def header(self, name: str) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


@dataclass(slots=True)
class RecordBatch:
    """Consecutive records of one partition: record i has offset ``base_offset + i``."""

    topic: str
    partition: int
    base_offset: int
    values: list[bytes]
    timestamps: Sequence[int]
    keys: list[bytes | None] | None = None
    headers: list[Headers] | None = None

    def __len__(self) -> int:
        return len(self.values)

    @property
    def next_offset(self) -> int:
        return self.base_offset + len(self.values)

    def key(self, i: int) -> bytes | None:
        return None if self.keys is None else self.keys[i]

    def header_list(self, i: int) -> Headers:
        return () if self.headers is None else self.headers[i]

    def record(self, i: int) -> Record:
        return Record(
            self.topic,
            self.partition,
            self.base_offset + i,
            self.timestamps[i],
            self.key(i),
            self.values[i],
            self.header_list(i),
        )

    def records(self) -> Iterator[Record]:
        for i in range(len(self.values)):
            yield self.record(i)

    def slice(self, start: int, stop: int) -> RecordBatch:
        """Records ``start .. stop-1`` of this batch (indices, not offsets)."""
        if start == 0 and stop >= len(self.values):
            return self
        return RecordBatch(
            self.topic,
            self.partition,
            self.base_offset + start,
            self.values[start:stop],
            self.timestamps[start:stop],
            None if self.keys is None else self.keys[start:stop],
            None if self.headers is None else self.headers[start:stop],
        )


Span = tuple[RecordBatch, int, int]
"""``(batch, start, stop)``: records ``start .. stop - 1`` of `batch` (indices, not offsets)."""


@dataclass(slots=True)
class Batches:
    """Consecutive runs of several partitions, in the order they are to be applied.

    A source that merges partitions returns the runs it has in hand together (up to the
    records asked for), so that the runner's per-fetch work is paid once for all of them:
    with many partitions a single run can be a handful of records. A run is a `Span` of
    the batch it was read in, not a copy: slicing six records out of a batch costs more
    than applying them.
    """

    spans: list[Span]
    records: int
    """How many records the spans hold."""

    def __len__(self) -> int:
        return self.records

    @property
    def runs(self) -> list[RecordBatch]:
        """The runs as batches of their own (each a slice of its span)."""
        return [batch.slice(start, stop) for batch, start, stop in self.spans]
