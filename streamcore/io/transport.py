"""The broker behind a small protocol: sources, sinks and topics.

The engine only talks to these protocols; the embedded log (`streamcore.io.embedded`),
Kafka and the test harness (`streamcore.testing`) implement them. Operators never
see a broker at all.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from streamcore.base.records import Batches, Headers, RecordBatch


class Control(enum.Enum):
    """Signals a source can return instead of a batch."""

    END_OF_INPUT = "end_of_input"
    """Every partition is exhausted; the engine fires everything and stops."""
    CHECKPOINT = "checkpoint"
    """Take a checkpoint now (used by scripted test sources)."""
    CRASH = "crash"
    """Abandon the engine as a killed process would (used by scripted test sources)."""


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic as an app declares it; the broker creates or checks it."""

    name: str
    partitions: int = 1
    retention_ms: int | None = None
    retention_bytes: int | None = None
    key: str | None = None
    """The event field its producers key records by (Kafka: `key_by` on it needs no repartition)."""


class Source(Protocol):
    """The records of some partitions of one topic, in offset order per partition."""

    topic: str
    partitions: tuple[int, ...]

    async def start(self, positions: Mapping[int, int]) -> Mapping[int, int]:
        """Seek each partition to its checkpointed next offset (absent: the earliest).

        Returns the partitions it had to seek elsewhere (a checkpoint past the end of an
        embedded partition with ``offset_reset="latest"``) and where to: the task resumes there.
        """

    async def fetch(self, max_records: int) -> RecordBatch | Batches | Control | None:
        """The next records of one partition (or consecutive runs of several, `Batches`), a
        Control signal, or None if nothing is available.

        It must not wait for records (the runner publishes what it applied before any
        wait, so that reads never see unpublished state): waiting is `wait`.
        """

    async def wait(self, timeout_s: float) -> None:
        """Return when records may be available, or after `timeout_s`."""

    async def commit(self, positions: Mapping[int, int]) -> None:
        """A checkpoint made these positions durable (Kafka commits offsets here)."""

    def pause(self) -> None:
        """The task's outputs are stuck: stop reading ahead (a no-op where nothing is read ahead)."""

    def resume(self) -> None:
        """The outputs flow again: read ahead as before."""

    def lag(self, positions: Mapping[int, int]) -> dict[int, int]:
        """Records not processed yet per partition, given the task's positions (empty if unknown)."""

    def at_end(self, positions: Mapping[int, int]) -> bool:
        """After a fetch that found nothing: whether that is because the task, at `positions`,
        has read everything the source holds (it has caught up), not because its records have
        not been fetched yet (a Kafka partition just assigned, before its first fetch)."""

    async def close(self) -> None: ...


class Sink(Protocol):
    """An output topic. `add` buffers; `flush` makes everything added durable."""

    topic: str

    def add(self, key: bytes | None, value: bytes, timestamp: int, headers: Headers = ()) -> None: ...

    @property
    def pending(self) -> int:
        """Records added since the last flush (the runner skips a sink with none)."""
        ...

    async def flush(self) -> None: ...


class Broker(Protocol):
    """Creates topics and hands out sources and sinks."""

    def ensure_topic(self, spec: TopicSpec) -> None: ...

    def source(self, topic: str, *, until_end: bool) -> Source: ...

    def sink(self, topic: str) -> Sink: ...

    async def close(self) -> None: ...
