"""Topics of the embedded log: a directory per topic, a subdirectory per partition.

<root>/<topic>/topic.json         partitions, retention and segment settings
<root>/<topic>/<partition>/       segments (see `partition`)
"""

from __future__ import annotations

import os
import re
import shutil
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

from streamcore.base.errors import ConfigError, TopicConflict, TopicNotFound
from streamcore.base.records import Headers, Record
from streamcore.io.log.partition import FsyncPolicy, PartitionReader, PartitionWriter
from streamcore.io.log.segments import end_offset, list_segments

_TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,200}$")


def check_topic_name(name: str) -> str:
    if not _TOPIC_NAME.match(name) or name in (".", ".."):
        raise ConfigError("topic", f"{name!r} is not a valid topic name (letters, digits, '.', '_', '-')")
    return name


@dataclass(frozen=True, slots=True)
class TopicConfig:
    """Settings of one embedded-log topic."""

    name: str
    partitions: int = 1
    retention_ms: int | None = None
    retention_bytes: int | None = None
    segment_bytes: int = 64 << 20

    def __post_init__(self) -> None:
        check_topic_name(self.name)
        if self.partitions < 1:
            raise ConfigError("partitions", f"must be >= 1, got {self.partitions}")
        if self.segment_bytes < 4096:
            raise ConfigError("segment_bytes", f"must be >= 4096, got {self.segment_bytes}")


def partition_for(key: bytes | None, partitions: int, fallback: int) -> int:
    """The partition of a keyed record (CRC-32 of the key); unkeyed records use `fallback`."""
    if key is None:
        return fallback % partitions
    return zlib.crc32(key) % partitions


class AppendListeners:
    """In-process wake-ups: who waits for appends to which topic of which log directory.

    Appends made by this process notify waiting readers at once; appends by other
    processes are seen by polling.
    """

    def __init__(self) -> None:
        self._listeners: dict[tuple[str, str], set[Callable[[], None]]] = {}

    def subscribe(self, root: Path, topic: str, callback: Callable[[], None]) -> Callable[[], None]:
        key = (str(root.resolve()), topic)
        self._listeners.setdefault(key, set()).add(callback)

        def unsubscribe() -> None:
            self._listeners.get(key, set()).discard(callback)

        return unsubscribe

    def notify(self, root: Path, topic: str) -> None:
        for callback in list(self._listeners.get((str(root.resolve()), topic), ())):
            callback()


APPENDS = AppendListeners()


class EmbeddedLog:
    """A directory of topics. Cheap to create; writers are opened lazily and cached."""

    def __init__(self, root: str | os.PathLike[str], *, fsync: FsyncPolicy = "never") -> None:
        self.root = Path(root)
        self.fsync: FsyncPolicy = fsync
        self._writers: dict[tuple[str, int], PartitionWriter] = {}

    # -- topics ---------------------------------------------------------
    def create_topic(self, config: TopicConfig) -> TopicConfig:
        """Create a topic, or return the existing one if its partition count matches."""
        path = self.root / config.name
        meta = path / "topic.json"
        if meta.exists():
            existing = self.topic(config.name)
            if existing.partitions != config.partitions:
                raise TopicConflict(
                    f"topic {config.name!r} exists with {existing.partitions} partitions, not {config.partitions}"
                )
            return existing
        path.mkdir(parents=True, exist_ok=True)
        tmp = path / f".topic.json.{os.getpid()}"
        tmp.write_bytes(orjson.dumps(asdict(config), option=orjson.OPT_INDENT_2))
        os.replace(tmp, meta)  # atomic: readers see the whole file or none
        for p in range(config.partitions):
            (path / str(p)).mkdir(exist_ok=True)
        return config

    def topic(self, name: str) -> TopicConfig:
        try:
            raw = (self.root / check_topic_name(name) / "topic.json").read_bytes()
        except FileNotFoundError:
            raise TopicNotFound(name) from None
        return TopicConfig(**orjson.loads(raw))

    def has_topic(self, name: str) -> bool:
        return (self.root / name / "topic.json").exists()

    def topics(self) -> list[TopicConfig]:
        if not self.root.exists():
            return []
        return [self.topic(p.name) for p in sorted(self.root.iterdir()) if (p / "topic.json").exists()]

    # -- partitions -----------------------------------------------------
    def partition_dir(self, topic: str, partition: int) -> Path:
        config = self.topic(topic)
        if not 0 <= partition < config.partitions:
            raise ConfigError("partition", f"topic {topic!r} has partitions 0..{config.partitions - 1}")
        return self.root / topic / str(partition)

    def writer(self, topic: str, partition: int) -> PartitionWriter:
        key = (topic, partition)
        writer = self._writers.get(key)
        if writer is None:
            config = self.topic(topic)
            writer = PartitionWriter(
                self.partition_dir(topic, partition),
                segment_bytes=config.segment_bytes,
                fsync=self.fsync,
                retention_ms=config.retention_ms,
                retention_bytes=config.retention_bytes,
            )
            self._writers[key] = writer
        return writer

    def reader(self, topic: str, partition: int, offset: int | None = None) -> PartitionReader:
        return PartitionReader(self.partition_dir(topic, partition), topic, partition, offset)

    def end_offsets(self, topic: str) -> dict[int, int]:
        """The next offset each partition would assign, as of now (read from frame headers at the tail)."""
        out = {}
        for p in range(self.topic(topic).partitions):
            out[p] = end_offset(self.partition_dir(topic, p))
        return out

    def offsets_for_time(self, topic: str, timestamp_ms: int) -> dict[int, int]:
        """Per partition, the first offset whose record was stamped at or after `timestamp_ms` (else the end)."""
        out = {}
        for p in range(self.topic(topic).partitions):
            reader = self.reader(topic, p)
            try:
                out[p] = reader.position
                while (batch := reader.read(1 << 14)) is not None:
                    found = next((i for i, ts in enumerate(batch.timestamps) if ts >= timestamp_ms), None)
                    if found is not None:
                        out[p] = batch.base_offset + found
                        break
                    out[p] = batch.next_offset
            finally:
                reader.close()
        return out

    def delete_topic(self, name: str) -> None:
        """Remove a topic and all its records (no writer of this log may hold it open)."""
        self.topic(name)  # TopicNotFound
        for key in [k for k in self._writers if k[0] == name]:
            self._writers.pop(key).close()
        shutil.rmtree(self.root / name)

    def start_offsets(self, topic: str) -> dict[int, int]:
        """The earliest offset still retained in each partition."""
        out = {}
        for p in range(self.topic(topic).partitions):
            bases = list_segments(self.partition_dir(topic, p))
            out[p] = bases[0] if bases else 0
        return out

    def read_all(self, topic: str, partition: int | None = None, offset: int | None = None) -> list[Record]:
        """Every record of a topic (or one partition), in partition then offset order."""
        parts = range(self.topic(topic).partitions) if partition is None else [partition]
        records: list[Record] = []
        for p in parts:
            reader = self.reader(topic, p, offset)
            try:
                while (batch := reader.read(1 << 16)) is not None:
                    records.extend(batch.records())
            finally:
                reader.close()
        return records

    def producer(self, topic: str) -> TopicProducer:
        return TopicProducer(self, self.topic(topic))

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()


class TopicProducer:
    """Appends records to a topic, routing each to a partition by key (or round-robin)."""

    def __init__(self, log: EmbeddedLog, config: TopicConfig) -> None:
        self.log = log
        self.config = config
        self._next = 0

    def send_many(
        self,
        values: Sequence[bytes],
        timestamps: Sequence[int],
        keys: Sequence[bytes | None] | None = None,
        headers: Sequence[Headers] | None = None,
        partition: int | None = None,
    ) -> None:
        """Append records; each partition receives its share in one append (one write)."""
        n = self.config.partitions
        if partition is not None or n == 1:
            self.log.writer(self.config.name, partition or 0).append(values, timestamps, keys, headers)
            APPENDS.notify(self.log.root, self.config.name)
            return
        groups: dict[int, list[int]] = {}
        for i in range(len(values)):
            key = None if keys is None else keys[i]
            p = partition_for(key, n, self._next)
            if key is None:
                self._next += 1
            groups.setdefault(p, []).append(i)
        for p, idx in groups.items():
            self.log.writer(self.config.name, p).append(
                [values[i] for i in idx],
                [timestamps[i] for i in idx],
                None if keys is None else [keys[i] for i in idx],
                None if headers is None else [headers[i] for i in idx],
            )
        APPENDS.notify(self.log.root, self.config.name)

    def send(
        self,
        value: bytes,
        timestamp: int,
        key: bytes | None = None,
        headers: Headers = (),
        partition: int | None = None,
    ) -> None:
        self.send_many([value], [timestamp], [key], [headers] if headers else None, partition)
