"""``streamcore dlq``: list, inspect and replay dead-lettered records, on the embedded log or Kafka.

A dead letter is named by its partition and offset in the dead-letter topic (``--offset
P:O``; a bare offset where only one partition holds it). Replay is idempotent: each
replayed dead letter is recorded in the ledger topic ``<dlq topic>-replays`` (``P:O`` as
the key), and a dead letter found there is skipped
unless ``--again`` is given. The ledger is written after the replayed records are
durable, so a replay cut off between the two can repeat a record; each replayed record
carries the header ``sc.replayed_from`` (``<dlq topic>/<partition>@<offset>``) to tell. A replayed record
that fails again keeps that header in its new dead letter, which is skipped too (it
would only go round again) unless ``--again`` is given.
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any, get_args

import orjson

from streamcore.base.clock import SystemClock
from streamcore.base.deadletter import LATE_REASON, REPLAYED_FROM, DeadLetter
from streamcore.base.errors import ConfigError, DeadLetterReason, TopicNotFound
from streamcore.base.records import Record
from streamcore.io.admin import Append, TopicAdmin

REASONS = (*get_args(DeadLetterReason), LATE_REASON)
"""What a dead letter (or a late record) can be set aside for."""


def add_parsers(sub: Any, common: argparse.ArgumentParser, run: Any) -> None:
    """Add the subcommands; `run(args)` opens the broker and awaits ``args.handler(args, admin)``."""
    dlq = sub.add_parser("dlq", help="dead-letter records: list, show, replay")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True)
    for name, handler, helptext in (
        ("list", list_command, "one line per dead letter"),
        ("show", show_command, "everything about chosen dead letters"),
        ("replay", replay_command, "re-inject chosen dead letters into their source topic"),
    ):
        p = dlq_sub.add_parser(name, parents=[common], help=helptext)
        p.add_argument("--topic", help="the dead-letter topic (default: the only *-dlq topic)")
        p.add_argument("--reason", choices=REASONS, help="only this reason")
        p.add_argument(
            "--offset",
            type=_position,
            action="append",
            help="only this dead letter: OFFSET, or PARTITION:OFFSET when the topic has several (repeatable)",
        )
        p.set_defaults(handler=handler, func=run)
        if name == "list":
            p.add_argument("--limit", type=int, default=100)
        if name == "show":
            p.add_argument("--pretty", action="store_true", help="indented JSON instead of one line each")
        if name == "replay":
            p.add_argument("--to", help="append to this topic instead of each record's source topic")
            p.add_argument("--dry-run", action="store_true", help="say what would be replayed, change nothing")
            p.add_argument("--again", action="store_true", help="also replay dead letters replayed before")


async def _dlq_topic(args: argparse.Namespace, admin: TopicAdmin) -> str:
    if args.topic:
        await admin.topic(args.topic)  # TopicNotFound names it
        return str(args.topic)
    candidates = [t.name for t in await admin.topics() if t.name.endswith("-dlq")]
    if len(candidates) != 1:
        raise ConfigError("--topic", f"name the dead-letter topic; found {candidates or 'none'} in {admin.where}")
    return candidates[0]


async def _read_all(admin: TopicAdmin, topic: str) -> list[Record]:
    return [record async for chunk in admin.read(topic) for record in chunk]


async def _selected(args: argparse.Namespace, admin: TopicAdmin) -> tuple[str, list[DeadLetter]]:
    """The dead-letter topic and its dead letters chosen by ``--reason`` and ``--offset``.

    An offset that is not in the topic is an error (a typo must not read as "0 replayed"),
    and so is a bare offset that more than one of its partitions holds.
    """
    topic = await _dlq_topic(args, admin)
    letters = [DeadLetter.from_record(r) for r in await _read_all(admin, topic)]
    if args.offset:
        wanted = set()
        for partition, offset in args.offset:
            found = {
                position(d) for d in letters if d.record.offset == offset and partition in (None, d.record.partition)
            }
            if not found:
                present = sorted(d.record.offset for d in letters)
                span = f"offsets {present[0]}..{present[-1]}" if present else "no dead letters"
                asked = offset if partition is None else f"{partition}:{offset}"
                raise ConfigError("--offset", f"{topic} has no dead letter at offset [{asked}] (it holds {span})")
            if len(found) > 1:
                choices = ", ".join(f"{p}:{o}" for p, o in sorted(found))
                raise ConfigError(
                    "--offset", f"offset {offset} is in several partitions of {topic}: give one of {choices}"
                )
            wanted |= found
        letters = [d for d in letters if position(d) in wanted]
    if args.reason:
        letters = [d for d in letters if d.reason == args.reason]
    return topic, letters


def position(d: DeadLetter) -> tuple[int, int]:
    """Where a dead letter is in its topic: (partition, offset), which names it."""
    return d.record.partition, d.record.offset


def _position(text: str) -> tuple[int | None, int]:
    """``--offset``: ``OFFSET`` (in whichever partition holds it) or ``PARTITION:OFFSET``."""
    partition, _, offset = text.rpartition(":")
    try:
        return (int(partition) if partition else None), int(offset)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected OFFSET or PARTITION:OFFSET, got {text!r}") from None


def _time(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


async def list_command(args: argparse.Namespace, admin: TopicAdmin) -> int:
    _, letters = await _selected(args, admin)
    for d in letters[: args.limit]:
        source = f"{d.source_topic}/{d.source_partition}@{d.source_offset}"
        print(f"{_named(d):>8}  {_time(d.time_ms)}  {d.step:<16} {d.reason:<17} {source:<24} {d.error[:70]}")
    shown = min(len(letters), args.limit)
    print(f"{shown} of {len(letters)} dead letters")
    return 0


async def show_command(args: argparse.Namespace, admin: TopicAdmin) -> int:
    _, letters = await _selected(args, admin)
    for d in letters:
        doc = {
            "dlq_partition": d.record.partition,
            "dlq_offset": d.record.offset,
            "reason": d.reason,
            "error": d.error,
            "source": {
                "topic": d.source_topic,
                "partition": d.source_partition,
                "offset": d.source_offset,
                "timestamp": d.source_timestamp,
            },
            "time": _time(d.time_ms),
            "app": d.app,
            "step": d.step,
            "replayed_from": d.replayed_from,
            "key": None if d.record.key is None else d.record.key.decode("utf-8", "replace"),
            "value": d.record.value.decode("utf-8", "replace"),
        }
        print(orjson.dumps(doc, option=orjson.OPT_INDENT_2 if args.pretty else 0).decode())
    return 0


def ledger_topic(dlq_topic: str) -> str:
    """Where replays of `dlq_topic` are recorded (one record per replayed dead letter)."""
    return f"{dlq_topic}-replays"


async def _replayed_before(admin: TopicAdmin, dlq_topic: str) -> set[tuple[int, int]] | None:
    """Positions of the dead letters of `dlq_topic` replayed before; None if there is no ledger yet.

    A ledger key is ``PARTITION:OFFSET`` (a bare ``OFFSET``, as earlier versions wrote, is partition 0).
    """
    try:
        records = await _read_all(admin, ledger_topic(dlq_topic))
    except TopicNotFound:
        return None
    return {_from_key(record.key.decode()) for record in records if record.key is not None}


def _from_key(key: str) -> tuple[int, int]:
    partition, _, offset = key.rpartition(":")
    return int(partition or 0), int(offset)


def lineage(dlq_topic: str, at: tuple[int, int]) -> str:
    """The ``sc.replayed_from`` value of a record replayed from dead letter `at` of `dlq_topic`."""
    return f"{dlq_topic}/{at[0]}@{at[1]}"


def _lineage_position(dlq_topic: str, value: str | None) -> tuple[int, int] | None:
    """The dead letter a ``sc.replayed_from`` value names, if it is one of `dlq_topic`'s."""
    topic, _, offset = (value or "").rpartition("@")
    name, slash, partition = topic.rpartition("/")
    if slash and name == dlq_topic and partition.isdigit() and offset.isdigit():
        return int(partition), int(offset)
    if topic == dlq_topic and offset.isdigit():  # written by an earlier version: partition 0
        return 0, int(offset)
    return None


def _named(d: DeadLetter) -> str:
    return str(d.record.offset) if d.record.partition == 0 else f"{d.record.partition}:{d.record.offset}"


async def replay_command(args: argparse.Namespace, admin: TopicAdmin) -> int:
    if not args.offset and not args.reason:
        raise ConfigError("replay", "choose what to replay with --offset N (repeatable) or --reason R")
    dlq_topic, letters = await _selected(args, admin)
    ledger = await _replayed_before(admin, dlq_topic)
    before = set() if args.again or ledger is None else ledger
    fresh = [d for d in letters if position(d) not in before]
    # a record that failed again after its replay: its dead letter names the one it was replayed from
    bounced = [d for d in fresh if _lineage_position(dlq_topic, d.replayed_from) in before]
    chosen = [d for d in fresh if d not in bounced]
    skipped = len(letters) - len(chosen) - len(bounced)
    targets: dict[str, int] = {}
    by_target: dict[str, list[Append]] = {}
    for d in chosen:
        target = args.to or d.source_topic
        if target not in targets:
            targets[target] = (await admin.topic(target)).partitions
        partition = d.source_partition if 0 <= d.source_partition < targets[target] else None
        verb = "would replay" if args.dry_run else "replaying"
        print(f"{verb} dlq@{_named(d)} ({d.reason}) to {target}" + ("" if partition is None else f"/{partition}"))
        headers = ((REPLAYED_FROM, lineage(dlq_topic, position(d)).encode()),)
        by_target.setdefault(target, []).append(
            Append(d.record.value, d.record.key, d.source_timestamp, headers, partition)
        )
    if not args.dry_run and chosen:
        for target, records in by_target.items():
            await admin.append(target, records)
        if ledger is None:
            await admin.create_topic(ledger_topic(dlq_topic), 1)
        now = SystemClock().now_ms()
        await admin.append(
            ledger_topic(dlq_topic),
            [
                Append(
                    orjson.dumps(
                        {
                            "dlq_partition": d.record.partition,
                            "dlq_offset": d.record.offset,
                            "to": args.to or d.source_topic,
                            "at": now,
                        }
                    ),
                    "{}:{}".format(*position(d)).encode(),
                    partition=0,
                )
                for d in chosen
            ],
        )
    done = "selected to replay" if args.dry_run else "replayed"
    note = f"; {skipped} skipped: replayed before (--again replays them again)" if skipped else ""
    if bounced:
        note += f"; {len(bounced)} skipped: they failed again after their replay (fix them first, or --again)"
    print(f"{len(chosen)} dead letters {done}{note}")
    return 0
