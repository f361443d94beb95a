"""Benchmark: the keyed tumbling job on Kafka, a raw aiokafka loop vs a streamcore worker.

    python bench/kafka.py [--events N] [--partitions P]

A real Kafka-protocol broker (Tansu, in memory, on a loopback port) gets a topic of P
partitions (4) preloaded with the window benchmark's N events (300,000), keyed by card
so each card's events stay in order in one partition. Then, in one run, on the same
topic:

(a) raw: an `AIOKafkaConsumer` assigned every partition reads from the start with
    ``getmany`` and decodes each value with orjson into per-partition tumbling windows
    (a watermark per partition, as Kafka's ordering allows), the loop a user would
    write by hand;
(b) engine: a streamcore worker (consumer group, RocksDB state, checkpoints, results
    written to an output topic) running the same app as ``bench/window.py``.

Both must produce the same windows: those the watermark closed (a worker runs on, so
the last windows of each partition stay open on both sides). Each side's steady-state rate is the records
between 10% and 90% of the input over the time between them (the group join and the
last windows' flush are not in it). The last line is JSON
``{"partitions": ..., "raw_eps": ..., "engine_eps": ..., "ratio": ...}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).parent))

from window import DISORDER_MS, WINDOW_MS, Windows, build_app, generate, same_results

from streamcore import Runner, RunSettings, RunStatus
from streamcore.testing import results_table, tansu_broker

TOPIC_CONFIG = {"cleanup.policy": "delete", "retention.ms": "-1"}


async def preload(bootstrap: str, lines: list[bytes], partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = [NewTopic("events", partitions, 1, topic_configs=TOPIC_CONFIG)]
        topics += [NewTopic(name, 1, 1, topic_configs=TOPIC_CONFIG) for name in ("totals", "bench-dlq", "bench-late")]
        await admin.create_topics(topics)
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=512 * 1024)
    await producer.start()
    try:
        for i, line in enumerate(lines):
            key = line[9 : line.index(b'"', 9)]
            await producer.send("events", line, key=key, timestamp_ms=1_700_000_000_000 + i)
        await producer.flush()
    finally:
        await producer.stop()


class Progress:
    """When 10% and 90% of the input were processed: the steady-state rate between them."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.t10 = self.t90 = 0.0
        self.n10 = self.n90 = 0

    def seen(self, done: int) -> None:
        now = time.perf_counter()
        if not self.t10 and done >= self.total // 10:
            self.t10, self.n10 = now, done
        if not self.t90 and done >= self.total * 9 // 10:
            self.t90, self.n90 = now, done

    @property
    def rate(self) -> float:
        return (self.n90 - self.n10) / (self.t90 - self.t10)


async def raw_loop(bootstrap: str, partitions: int, total: int, progress: Progress) -> Windows:
    """Consume and decode every record; tumbling windows per partition, as by hand."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, max_partition_fetch_bytes=1 << 20
    )
    await consumer.start()
    out: Windows = {}
    try:
        tps = [TopicPartition("events", p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        loads = orjson.loads
        buckets: list[dict[int, dict[str, list]]] = [{} for _ in tps]
        max_ts = [-(1 << 62)] * partitions
        done = 0
        while done < total:
            batches = await consumer.getmany(*tps, timeout_ms=200, max_records=5_000)
            for tp, records in batches.items():
                mine, p = buckets[tp.partition], tp.partition
                for record in records:
                    e = loads(record.value)
                    ts = e["ts"]
                    s = ts - ts % WINDOW_MS
                    b = mine.get(s)
                    if b is None:
                        b = mine[s] = {}
                    st = b.get(e["card"])
                    if st is None:
                        b[e["card"]] = [1, e["amount"]]
                    else:
                        st[0] += 1
                        st[1] += e["amount"]
                    if ts > max_ts[p]:
                        max_ts[p] = ts
                        for s0 in [s0 for s0 in mine if s0 + WINDOW_MS <= ts - DISORDER_MS]:
                            for card, (cnt, amount) in mine.pop(s0).items():
                                out[(card, s0)] = (cnt, amount)
                done += len(records)
            progress.seen(done)
    finally:
        await consumer.stop()
    return out


async def engine(bootstrap: str, workdir: Path, partitions: int, total: int, progress: Progress) -> Windows:
    os.environ.update(
        STREAMCORE_KAFKA_SESSION_TIMEOUT_MS="2000",  # Tansu holds a new group's join for half of it
        STREAMCORE_KAFKA_HEARTBEAT_INTERVAL_MS="500",
    )
    runner: Runner

    def seen(status: RunStatus) -> None:
        done = sum(task.counters.records_in for task in status.tasks)
        progress.seen(done)
        if done >= total and all(task.counters.records_in == task.counters.accounted for task in status.tasks):
            runner.stop("bench: every record applied")

    settings = RunSettings(state_dir=workdir / "state", broker=f"kafka://{bootstrap}")
    runner = Runner(build_app(partitions), settings, progress=seen, progress_interval_s=0.02, handle_signals=False)
    status = await runner.run()
    assert sum(task.counters.late for task in status.tasks) == 0, "the workload has no late events"
    windows: Windows = {}
    for (key, start, _), value in results_table(await read_topic(bootstrap, "totals")).items():
        windows[(key, start)] = (value["n"], value["total"])
    return windows


async def read_topic(bootstrap: str, topic: str) -> list:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        records = []
        while len(records) < end:
            records.extend((await consumer.getmany(tp, timeout_ms=500)).get(tp, []))
        return records
    finally:
        await consumer.stop()


async def run(args: argparse.Namespace, workdir: Path) -> int:
    lines = generate(args.events)
    with tansu_broker() as bootstrap:
        started = time.perf_counter()
        await preload(bootstrap, lines, args.partitions)
        seconds = time.perf_counter() - started
        print(f"preloaded {args.events:,} events into {args.partitions} partitions in {seconds:.1f} s")
        raw_progress, engine_progress = Progress(args.events), Progress(args.events)
        expected = await raw_loop(bootstrap, args.partitions, args.events, raw_progress)
        got = await engine(bootstrap, workdir, args.partitions, args.events, engine_progress)
    if not same_results(expected, got):
        print(f"MISMATCH: raw {len(expected)} windows, engine {len(got)}", file=sys.stderr)
        return 1
    raw_eps, engine_eps = raw_progress.rate, engine_progress.rate
    print(f"windows: {len(expected)} (identical in both)")
    print(f"raw aiokafka loop: {raw_eps:,.0f} events/s   engine: {engine_eps:,.0f} events/s (steady state, 10%-90%)")
    result = {"partitions": args.partitions, "raw_eps": round(raw_eps), "engine_eps": round(engine_eps)}
    print(json.dumps({**result, "ratio": round(engine_eps / raw_eps, 3)}))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--partitions", type=int, default=4)
    args = ap.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="streamcore-kafka-bench-"))
    try:
        return asyncio.run(run(args, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
