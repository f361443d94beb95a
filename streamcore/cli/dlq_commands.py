"""``streamcore dlq``: list, inspect and replay dead-lettered records."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

import orjson

from streamcore.base.deadletter import REPLAYED_FROM, DeadLetter
from streamcore.base.errors import ConfigError
from streamcore.io.log import EmbeddedLog


def add_parsers(sub: Any, common: argparse.ArgumentParser, run: Any) -> None:
    """Add the subcommands; `run(args)` opens the log and calls ``args.handler(args, log)``."""
    dlq = sub.add_parser("dlq", help="dead-letter records: list, show, replay")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True)
    for name, handler, helptext in (
        ("list", list_command, "one line per dead letter"),
        ("show", show_command, "everything about chosen dead letters"),
        ("replay", replay_command, "re-inject chosen dead letters into their source topic"),
    ):
        p = dlq_sub.add_parser(name, parents=[common], help=helptext)
        p.add_argument("--topic", help="the dead-letter topic (default: the only *-dlq topic)")
        p.add_argument("--reason", help="only this reason (decode, schema, future_timestamp, operator_error)")
        p.add_argument("--offset", type=int, action="append", help="only this dead-letter offset (repeatable)")
        p.set_defaults(handler=handler, func=run)
        if name == "list":
            p.add_argument("--limit", type=int, default=100)
        if name == "show":
            p.add_argument("--pretty", action="store_true", help="indented JSON instead of one line each")
        if name == "replay":
            p.add_argument("--to", help="append to this topic instead of each record's source topic")
            p.add_argument("--dry-run", action="store_true", help="say what would be replayed, change nothing")


def _dlq_topic(args: argparse.Namespace, log: EmbeddedLog) -> str:
    if args.topic:
        return str(args.topic)
    candidates = [t.name for t in log.topics() if t.name.endswith("-dlq")]
    if len(candidates) != 1:
        raise ConfigError("--topic", f"name the dead-letter topic; found {candidates or 'none'} in {log.root}")
    return candidates[0]


def _selected(args: argparse.Namespace, log: EmbeddedLog) -> list[DeadLetter]:
    letters = [DeadLetter.from_record(r) for r in log.read_all(_dlq_topic(args, log))]
    if args.reason:
        letters = [d for d in letters if d.reason == args.reason]
    if args.offset:
        wanted = set(args.offset)
        letters = [d for d in letters if d.record.offset in wanted]
    return letters


def _time(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def list_command(args: argparse.Namespace, log: EmbeddedLog) -> int:
    letters = _selected(args, log)
    for d in letters[: args.limit]:
        source = f"{d.source_topic}/{d.source_partition}@{d.source_offset}"
        print(f"{d.record.offset:>8}  {_time(d.time_ms)}  {d.step:<16} {d.reason:<17} {source:<24} {d.error[:70]}")
    shown = min(len(letters), args.limit)
    print(f"{shown} of {len(letters)} dead letters")
    return 0


def show_command(args: argparse.Namespace, log: EmbeddedLog) -> int:
    for d in _selected(args, log):
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


def replay_command(args: argparse.Namespace, log: EmbeddedLog) -> int:
    letters = _selected(args, log)
    if not args.offset and not args.reason:
        raise ConfigError("replay", "choose what to replay with --offset N (repeatable) or --reason R")
    for d in letters:
        target = args.to or d.source_topic
        if args.dry_run:
            print(f"would replay dlq@{d.record.offset} ({d.reason}) to {target}/{d.source_partition}")
            continue
        partitions = log.topic(target).partitions
        partition = d.source_partition if 0 <= d.source_partition < partitions else None
        headers = ((REPLAYED_FROM, f"{d.record.topic}@{d.record.offset}".encode()),)
        log.producer(target).send(d.record.value, d.source_timestamp, d.record.key, headers, partition)
        print(f"replayed dlq@{d.record.offset} ({d.reason}) to {target}")
    print(f"{len(letters)} dead letters {'selected' if args.dry_run else 'replayed'}")
    return 0
