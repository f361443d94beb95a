"""``streamcore dlq``: list, inspect and replay dead-lettered records, on the embedded log or Kafka.

Replay is idempotent: each replayed dead letter is recorded in the ledger topic
``<dlq topic>-replays`` (its offset as the key), and a dead letter found there is skipped
unless ``--again`` is given. The ledger is written after the replayed records are
durable, so a replay cut off between the two can repeat a record; each replayed record
carries the header ``sc.replayed_from`` (``<dlq topic>@<offset>``) to tell.
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
        p.add_argument("--offset", type=int, action="append", help="only this dead-letter offset (repeatable)")
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

    An offset that is not in the topic is an error (a typo must not read as "0 replayed").
    """
    topic = await _dlq_topic(args, admin)
    letters = [DeadLetter.from_record(r) for r in await _read_all(admin, topic)]
    if args.offset:
        present = {d.record.offset for d in letters}
        missing = sorted(set(args.offset) - present)
        if missing:
            span = f"offsets {min(present)}..{max(present)}" if present else "no dead letters"
            raise ConfigError("--offset", f"{topic} has no dead letter at offset {missing} (it holds {span})")
        wanted = set(args.offset)
        letters = [d for d in letters if d.record.offset in wanted]
    if args.reason:
        letters = [d for d in letters if d.reason == args.reason]
    return topic, letters


def _time(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


async def list_command(args: argparse.Namespace, admin: TopicAdmin) -> int:
    _, letters = await _selected(args, admin)
    for d in letters[: args.limit]:
        source = f"{d.source_topic}/{d.source_partition}@{d.source_offset}"
        print(f"{d.record.offset:>8}  {_time(d.time_ms)}  {d.step:<16} {d.reason:<17} {source:<24} {d.error[:70]}")
    shown = min(len(letters), args.limit)
    print(f"{shown} of {len(letters)} dead letters")
    return 0


async def show_command(args: argparse.Namespace, admin: TopicAdmin) -> int:
    _, letters = await _selected(args, admin)
    for d in letters:
        doc = {
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
            "key": None if d.record.key is None else d.record.key.decode("utf-8", "replace"),
            "value": d.record.value.decode("utf-8", "replace"),
        }
        print(orjson.dumps(doc, option=orjson.OPT_INDENT_2 if args.pretty else 0).decode())
    return 0


def ledger_topic(dlq_topic: str) -> str:
    """Where replays of `dlq_topic` are recorded (one record per replayed dead letter)."""
    return f"{dlq_topic}-replays"


async def _replayed_before(admin: TopicAdmin, dlq_topic: str) -> set[int] | None:
    """Offsets of the dead letters of `dlq_topic` replayed before; None if there is no ledger yet."""
    try:
        records = await _read_all(admin, ledger_topic(dlq_topic))
    except TopicNotFound:
        return None
    return {int(record.key) for record in records if record.key is not None}


async def replay_command(args: argparse.Namespace, admin: TopicAdmin) -> int:
    if not args.offset and not args.reason:
        raise ConfigError("replay", "choose what to replay with --offset N (repeatable) or --reason R")
    dlq_topic, letters = await _selected(args, admin)
    ledger = await _replayed_before(admin, dlq_topic)
    before = set() if args.again or ledger is None else ledger
    chosen = [d for d in letters if d.record.offset not in before]
    skipped = len(letters) - len(chosen)
    targets: dict[str, int] = {}
    by_target: dict[str, list[Append]] = {}
    for d in chosen:
        target = args.to or d.source_topic
        if target not in targets:
            targets[target] = (await admin.topic(target)).partitions
        partition = d.source_partition if 0 <= d.source_partition < targets[target] else None
        verb = "would replay" if args.dry_run else "replaying"
        print(f"{verb} dlq@{d.record.offset} ({d.reason}) to {target}" + ("" if partition is None else f"/{partition}"))
        headers = ((REPLAYED_FROM, f"{dlq_topic}@{d.record.offset}".encode()),)
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
                    orjson.dumps({"dlq_offset": d.record.offset, "to": args.to or d.source_topic, "at": now}),
                    str(d.record.offset).encode(),
                    partition=0,
                )
                for d in chosen
            ],
        )
    done = "selected to replay" if args.dry_run else "replayed"
    note = f"; {skipped} skipped: replayed before (--again replays them again)" if skipped else ""
    print(f"{len(chosen)} dead letters {done}{note}")
    return 0
