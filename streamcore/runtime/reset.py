"""Start an app over: move its input positions, drop its internal topics and local state (`streamcore reset`).

    streamcore reset apps/fraud/app.py --to earliest|latest|2026-12-01T10:00:00Z|-1h [--dry-run]

Kafka Streams' application reset tool, for a streamcore app, on the embedded log and on
Kafka alike:

1. it refuses while a worker of the app is alive: on the embedded log, when another
   process holds a stream's RocksDB; on Kafka, when the app's consumer group has members;
2. it resolves the target of every input partition: its first offset (``earliest``), its
   end (``latest``), or the first record stamped at or after a time (an ISO datetime, or
   ``-DURATION`` before now);
3. it drops what the app derived from its input, so none of it is counted twice: the
   local state under the state directory, and on Kafka the changelog topics (workers
   create them again, empty) and what the keyed stages had not read of the repartition
   topics (the group skips to their ends: the shuffle stages write them again from the
   new positions);
4. it makes the app start at the target: on Kafka by committing the group's offsets, on
   the embedded log with a start record in each stream's fresh store
   (`TaskStore.set_start_positions`), which a task reads when it has no checkpoint.

State directories of workers on other machines are theirs to remove: a reset run on one
machine removes only its own (`state_dir`).
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from streamcore.base.durations import to_ms
from streamcore.base.errors import ConfigError, StateLocked, StreamcoreError
from streamcore.dataflow.app import App
from streamcore.io.admin import KafkaAdmin, TopicAdmin
from streamcore.state.store import TaskStore


class WorkerAlive(StreamcoreError):
    """A worker of the app is running: a reset now would race it."""


@dataclass(frozen=True, slots=True)
class Move:
    """One input partition: where the app was (None: no position yet) and where it will start."""

    topic: str
    partition: int
    current: int | None
    target: int


@dataclass
class ResetPlan:
    """What a reset does, printed before (and instead of, with ``--dry-run``) doing it."""

    moves: list[Move] = field(default_factory=list)
    skipped: dict[tuple[str, int], int] = field(default_factory=dict)
    """Repartition partitions the group skips to the end of (Kafka)."""
    deleted_topics: list[str] = field(default_factory=list)
    removed_state: list[Path] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"{m.topic}/{m.partition}: {'-' if m.current is None else m.current} -> {m.target}" for m in self.moves]
        out += [f"{topic}/{p}: skip to the end, {end}" for (topic, p), end in sorted(self.skipped.items())]
        out += [f"delete topic {name}" for name in self.deleted_topics]
        out += [f"remove state {path}" for path in self.removed_state]
        return out


def target_time_ms(spec: str, now_ms: int, setting: str = "--to") -> int | None:
    """The time of `setting`: None for earliest/latest, else epoch ms (a datetime, or ``-DURATION``)."""
    if spec in ("earliest", "latest"):
        return None
    if spec.startswith("-"):
        return now_ms - to_ms(spec[1:], setting, allow_zero=True)
    return iso_time_ms(spec, setting, "expected earliest, latest, an ISO datetime or -DURATION (e.g. -1h)")


def iso_time_ms(spec: str, setting: str, expected: str = "expected an ISO datetime") -> int:
    """Epoch ms of an ISO datetime, which must name its time zone."""
    try:
        moment = dt.datetime.fromisoformat(spec)
    except ValueError:
        raise ConfigError(setting, f"{expected}, got {spec!r}") from None
    if moment.tzinfo is None:
        raise ConfigError(setting, f"{spec!r} has no time zone; add one, e.g. {spec}Z or {spec}+01:00")
    return int(moment.timestamp() * 1000)


async def plan_reset(
    app: App, admin: TopicAdmin, state_dir: Path, spec: str, now_ms: int, *, check_group: bool = True
) -> ResetPlan:
    """Check that no worker is alive and work out the reset, changing nothing.

    `check_group` False skips the consumer group's member list (``--force``): Apache Kafka
    drops a member that left or stopped heartbeating, but some brokers (Tansu) list it
    for good."""
    at = target_time_ms(spec, now_ms)
    app_state = state_dir / app.name
    stores = sorted(p.parent for p in app_state.rglob("CURRENT")) if app_state.exists() else []
    sources = sorted(app.sources)
    current: dict[tuple[str, int], int] = {}
    if isinstance(admin, KafkaAdmin):
        group = admin.settings.group_id or app.name
        if check_group and await admin.group_members(group):
            raise WorkerAlive(f"consumer group {group!r} has members: stop its workers first")
        current = await admin.group_offsets(group, sources)
    for path in stores:
        positions = _checkpointed_positions(path, app)
        if not isinstance(admin, KafkaAdmin):  # a Kafka worker's stores hold stages: its group offsets say it all
            current |= positions
    plan = ResetPlan(removed_state=[app_state] if app_state.exists() else [])
    for source in sources:
        info = await admin.topic(source)
        if spec == "earliest":
            targets = info.start_offsets
        elif spec == "latest":
            targets = info.end_offsets
        else:
            assert at is not None
            targets = await admin.offsets_for_time(source, at)
        plan.moves += [Move(source, p, current.get((source, p)), targets[p]) for p in sorted(targets)]
    if isinstance(admin, KafkaAdmin):
        for topic in await admin.topics():
            if topic.name.startswith(f"{app.name}-") and topic.name.endswith("-changelog"):
                plan.deleted_topics.append(topic.name)
            elif topic.name.startswith(f"{app.name}-") and topic.name.endswith("-repartition"):
                plan.skipped |= {(topic.name, p): end for p, end in topic.end_offsets.items()}
    return plan


async def apply_reset(app: App, admin: TopicAdmin, state_dir: Path, plan: ResetPlan) -> None:
    """Do what `plan_reset` planned."""
    for name in plan.deleted_topics:
        await admin.delete_topic(name)
    for path in plan.removed_state:
        shutil.rmtree(path)
    if isinstance(admin, KafkaAdmin):
        offsets = {(m.topic, m.partition): m.target for m in plan.moves} | plan.skipped
        await admin.commit_group_offsets(admin.settings.group_id or app.name, offsets)
        return
    for pipeline in app.pipelines:  # the embedded runner keeps one store per stream
        positions = {m.partition: m.target for m in plan.moves if m.topic == pipeline.source}
        if any(positions.values()):
            store = TaskStore(state_dir / app.name / pipeline.name)
            try:
                store.set_start_positions(positions)
            finally:
                store.close()


def _checkpointed_positions(path: Path, app: App) -> dict[tuple[str, int], int]:
    """The input positions in a store's checkpoint; `WorkerAlive` if a worker holds the store."""
    try:
        store = TaskStore(path)
    except StateLocked:
        raise WorkerAlive(f"a worker holds {path}: stop it first") from None
    try:
        meta = store.load_checkpoint() or {}
    finally:
        store.close()
    source = {pipeline.name: pipeline.source for pipeline in app.pipelines}.get(str(meta.get("stream")))
    if source is None:
        return {}
    return {(source, int(p)): offset for p, offset in meta.get("positions", {}).items()}
