"""``streamcore log``: list and create topics, pipe JSON lines in, watch records come out."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import orjson

from streamcore.base.clock import SystemClock
from streamcore.base.decoding import decode_strict
from streamcore.base.errors import ConfigError
from streamcore.base.records import Record
from streamcore.io.log import EmbeddedLog, TopicConfig

PRODUCE_BATCH = 5_000


def add_parsers(sub: Any, common: argparse.ArgumentParser, run: Any) -> None:
    """Add the subcommands; `run(args)` opens the log and calls ``args.handler(args, log)``."""
    log = sub.add_parser("log", help="the embedded log: topics, produce, tail")
    log_sub = log.add_subparsers(dest="log_command", required=True)

    topics = log_sub.add_parser("topics", parents=[common], help="list topics, or create one")
    topics.add_argument("--create", metavar="TOPIC", help="create this topic")
    topics.add_argument("--partitions", type=int, default=1)
    topics.add_argument("--retention", help="delete segments older than this (e.g. 7d)")
    topics.set_defaults(handler=topics_command, func=run)

    produce = log_sub.add_parser("produce", parents=[common], help="append JSON lines from stdin to a topic")
    produce.add_argument("topic")
    produce.add_argument("--key-field", help="use this field of each line as the record key")
    produce.add_argument("--partitions", type=int, help="create the topic with this many partitions if missing")
    produce.add_argument("--partition", type=int, help="append everything to this partition")
    produce.set_defaults(handler=produce_command, func=run)

    tail = log_sub.add_parser("tail", parents=[common], help="print a topic's records as JSON lines")
    tail.add_argument("topic")
    tail.add_argument("--partition", type=int, help="only this partition")
    tail.add_argument("--offset", type=int, help="start at this offset (default: the beginning)")
    tail.add_argument("--follow", "-f", action="store_true", help="keep waiting for new records")
    tail.add_argument("--limit", type=int, help="stop after this many records")
    tail.add_argument("--meta", action="store_true", help="print partition, offset, key and headers too")
    tail.set_defaults(handler=tail_command, func=run)

    check = log_sub.add_parser("check", parents=[common], help="read every frame; report damaged ones (exit 1)")
    check.add_argument("topic", nargs="*", help="the topics to check (default: all)")
    check.set_defaults(handler=check_command, func=run)


def topics_command(args: argparse.Namespace, log: EmbeddedLog) -> int:
    if args.create:
        from streamcore.base.durations import optional_ms

        log.create_topic(TopicConfig(args.create, args.partitions, optional_ms(args.retention, "--retention")))
        print(f"created {args.create} ({args.partitions} partitions)")
        return 0
    topics = log.topics()
    if not topics:
        print(f"no topics in {log.root}")
    for topic in topics:
        ends = log.end_offsets(topic.name)
        starts = log.start_offsets(topic.name)
        records = sum(ends[p] - starts[p] for p in ends)
        print(f"{topic.name:<32} partitions {topic.partitions:<3} records {records:>10,}  end offsets {ends}")
    return 0


def _json_object(line: bytes) -> Any:
    """The line decoded as the engine decodes it: orjson, or the strict standard library for
    JSON orjson cannot hold (a number beyond a double, an unpaired surrogate)."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return decode_strict(line)


def check_command(args: argparse.Namespace, log: EmbeddedLog) -> int:
    """Every frame of every segment, checksum by checksum: what a reader or writer would refuse."""
    from streamcore.io.log.segments import check_partition

    damaged = 0
    for name in args.topic or [t.name for t in log.topics()]:
        for p in range(log.topic(name).partitions):
            records, damage = check_partition(log.partition_dir(name, p))
            for exc in damage:
                print(f"DAMAGED {name}/{p}: {exc}")
            damaged += len(damage)
            if not damage:
                print(f"ok      {name}/{p}: {records:,} records")
    if damaged:
        print(
            f"{damaged} damaged segment(s). Readers and writers refuse them; restore the files from a copy, "
            "or move the damaged segment aside knowing that its records are lost."
        )
    return 1 if damaged else 0


def produce_command(args: argparse.Namespace, log: EmbeddedLog) -> int:
    if not log.has_topic(args.topic):
        if args.partitions is None:
            raise ConfigError("topic", f"topic {args.topic!r} does not exist; pass --partitions N to create it")
        log.create_topic(TopicConfig(args.topic, args.partitions))
    producer = log.producer(args.topic)
    clock = SystemClock()
    values: list[bytes] = []
    keys: list[bytes | None] = []
    sent = bad = 0
    for line in sys.stdin.buffer:
        line = line.rstrip(b"\r\n")
        if not line:
            continue
        key = None
        if args.key_field:
            try:
                found = _json_object(line).get(args.key_field)
                key = None if found is None else str(found).encode("utf-8", "surrogatepass")
            except (ValueError, RecursionError, AttributeError):
                bad += 1  # still appended: the pipeline dead-letters it with its position
        values.append(line)
        keys.append(key)
        if len(values) >= PRODUCE_BATCH:
            producer.send_many(values, [clock.now_ms()] * len(values), keys, partition=args.partition)
            sent += len(values)
            values, keys = [], []
    if values:
        producer.send_many(values, [clock.now_ms()] * len(values), keys, partition=args.partition)
        sent += len(values)
    note = f" ({bad} were not JSON objects; appended as they are)" if bad else ""
    print(f"appended {sent} records to {args.topic}{note}", file=sys.stderr)
    return 0


def record_json(record: Record, meta: bool) -> bytes:
    if not meta:
        return record.value
    doc = {
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": record.timestamp,
        "key": None if record.key is None else record.key.decode("utf-8", "replace"),
        "headers": {k: v.decode("utf-8", "replace") for k, v in record.headers},
        "value": record.value.decode("utf-8", "replace"),
    }
    return orjson.dumps(doc)


def tail_command(args: argparse.Namespace, log: EmbeddedLog) -> int:
    config = log.topic(args.topic)
    partitions = [args.partition] if args.partition is not None else list(range(config.partitions))
    readers = [log.reader(args.topic, p, args.offset) for p in partitions]
    printed = 0
    out = sys.stdout.buffer
    try:
        while True:
            progressed = False
            for reader in readers:
                batch = reader.read(1_000)
                if batch is None:
                    continue
                progressed = True
                for record in batch.records():
                    out.write(record_json(record, args.meta) + b"\n")
                    printed += 1
                    if args.limit is not None and printed >= args.limit:
                        out.flush()
                        return 0
            out.flush()
            if not progressed:
                if not args.follow:
                    return 0
                time.sleep(0.05)
    except KeyboardInterrupt:
        return 0
    finally:
        for reader in readers:
            reader.close()
