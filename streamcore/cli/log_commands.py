"""``streamcore log``: list and create topics, pipe JSON lines in, watch records come out.

Each command works on the embedded log and on Kafka alike, through `TopicAdmin`
(``--log-dir DIR``, or ``--broker embedded:DIR|kafka://HOST:PORT``); ``log check``
reads the embedded log's segment files and so exists only there.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

from streamcore.base.decoding import decode_strict
from streamcore.base.errors import ConfigError, TopicNotFound
from streamcore.base.records import Record
from streamcore.io.admin import Append, EmbeddedAdmin, TopicAdmin

PRODUCE_BATCH = 5_000


def add_parsers(sub: Any, common: argparse.ArgumentParser, run: Any) -> None:
    """Add the subcommands; `run(args)` opens the broker and awaits ``args.handler(args, admin)``."""
    log = sub.add_parser("log", help="topics of the embedded log or Kafka: list, create, produce, tail")
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


async def topics_command(args: argparse.Namespace, admin: TopicAdmin) -> int:
    if args.create:
        from streamcore.base.durations import optional_ms

        await admin.create_topic(args.create, args.partitions, optional_ms(args.retention, "--retention"))
        print(f"created {args.create} ({args.partitions} partitions)")
        return 0
    topics = await admin.topics()
    if not topics:
        print(f"no topics in {admin.where}")
    for topic in topics:
        print(
            f"{topic.name:<32} partitions {topic.partitions:<3} records {topic.records:>10,}  "
            f"end offsets {topic.end_offsets}"
        )
    return 0


def _json_object(line: bytes) -> Any:
    """The line decoded as the engine decodes it: orjson, or the strict standard library for
    JSON orjson cannot hold (a number beyond a double, an unpaired surrogate)."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return decode_strict(line)


async def check_command(args: argparse.Namespace, admin: TopicAdmin) -> int:
    """Every frame of every segment, checksum by checksum: what a reader or writer would refuse."""
    from streamcore.io.log.segments import check_partition

    if not isinstance(admin, EmbeddedAdmin):
        raise ConfigError("log check", "reads the embedded log's segment files; a Kafka broker checks its own")
    log = admin.log
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


async def produce_command(args: argparse.Namespace, admin: TopicAdmin) -> int:
    try:
        await admin.topic(args.topic)
    except TopicNotFound:
        if args.partitions is None:
            missing = f"topic {args.topic!r} does not exist; pass --partitions N to create it"
            raise ConfigError("topic", missing) from None
        await admin.create_topic(args.topic, args.partitions)
    batch: list[Append] = []
    sent = 0
    not_json: list[int] = []  # line numbers
    no_key: list[int] = []
    for number, raw in enumerate(sys.stdin.buffer, 1):
        line = raw.rstrip(b"\r\n")
        if not line:
            continue
        key = None
        try:
            doc = _json_object(line)
        except (ValueError, RecursionError):
            doc = None
        if type(doc) is not dict:
            not_json.append(number)  # still appended: the pipeline dead-letters it with its position
            doc = None
        if args.key_field and doc is not None:
            found = doc.get(args.key_field)
            if found is None:
                no_key.append(number)
            else:
                key = str(found).encode("utf-8", "surrogatepass")
        batch.append(Append(line, key, partition=args.partition))
        if len(batch) >= PRODUCE_BATCH:
            await admin.append(args.topic, batch)
            sent += len(batch)
            batch = []
    if batch:
        await admin.append(args.topic, batch)
        sent += len(batch)
    print(f"appended {sent} records to {args.topic}", file=sys.stderr)
    if not_json:
        print(
            f"warning: {len(not_json)} lines are not JSON objects ({_lines(not_json)}): appended as they are; "
            "the app dead-letters them (decode or schema) with their offsets",
            file=sys.stderr,
        )
    if no_key:
        print(
            f"warning: {len(no_key)} records have no {args.key_field!r} field ({_lines(no_key)}): "
            "appended without a key",
            file=sys.stderr,
        )
    return 0


def _lines(numbers: list[int], shown: int = 5) -> str:
    listed = ", ".join(str(n) for n in numbers[:shown])
    return f"line {listed}" if len(numbers) == 1 else f"lines {listed}{', ...' if len(numbers) > shown else ''}"


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


async def tail_command(args: argparse.Namespace, admin: TopicAdmin) -> int:
    partitions = None if args.partition is None else [args.partition]
    printed = 0
    out = sys.stdout.buffer
    async for chunk in admin.read(args.topic, partitions, args.offset, follow=args.follow):
        for record in chunk:
            out.write(record_json(record, args.meta) + b"\n")
            printed += 1
            if args.limit is not None and printed >= args.limit:
                out.flush()
                return 0
        out.flush()
    return 0
