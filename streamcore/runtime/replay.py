"""Run an app over a range of its input again, into fresh state and suffixed outputs (`streamcore replay`).

    streamcore replay apps/fraud/app.py --from -1h --to latest --output-suffix -replay

The same definitions (streams, windows, feature views, models) over the records of each
input partition from ``--from`` up to ``--to`` (an offset per partition, captured when
the replay starts, so it ends even while producers go on), written to ``<topic><suffix>``
(results, and the ``-dlq`` and ``-late`` topics too) with state in a directory of its
own: the live app's outputs and state are not touched. On the embedded log the replay
reads the log itself; on Kafka it reads the input partitions without joining the app's
consumer group (a `KafkaRange` source), so live workers go on undisturbed.

A bound is ``earliest``, ``latest``, a time (ISO datetime with zone, or ``-DURATION``:
the first record stamped at or after it), or offsets ``0:120,1:98`` (partitions not
named: earliest for ``--from``, latest for ``--to``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from streamcore.base.errors import ConfigError
from streamcore.dataflow.app import App
from streamcore.dataflow.stream import TopicSink
from streamcore.io.admin import EmbeddedAdmin, KafkaAdmin, TopicAdmin, TopicInfo
from streamcore.io.embedded import EmbeddedBroker
from streamcore.io.kafka_range import KafkaRangeBroker
from streamcore.io.transport import Broker
from streamcore.runtime.reset import target_time_ms
from streamcore.runtime.runner import Runner
from streamcore.runtime.settings import RunSettings
from streamcore.runtime.status import RunStatus
from streamcore.state.store import TaskStore

Ranges = dict[str, dict[int, tuple[int, int]]]
"""topic -> partition -> (first offset, end offset) of a replay."""


@dataclass(frozen=True, slots=True)
class ReplayPlan:
    """What a replay reads: per input partition, [first, end)."""

    app: App
    ranges: Ranges

    def records(self, topic: str) -> int:
        """Records of `topic` in the range."""
        return sum(end - first for first, end in self.ranges.get(topic, {}).values())

    @property
    def total(self) -> int:
        """Records the replay reads: each stream reads its input's range (two streams of one topic, twice)."""
        return sum(self.records(pipeline.source) for pipeline in self.app.pipelines)

    def starts(self, topic: str) -> dict[int, int]:
        return {p: first for p, (first, _) in self.ranges.get(topic, {}).items()}

    def ends(self) -> dict[str, dict[int, int]]:
        return {topic: {p: end for p, (_, end) in parts.items()} for topic, parts in self.ranges.items()}


def check_replayable(app: App) -> None:
    """A replay reads inputs and writes suffixed outputs: an output that is also an input cannot be both."""
    inputs = app.sources
    fed = sorted(p.sink.topic for p in app.pipelines if isinstance(p.sink, TopicSink) and p.sink.topic in inputs)
    if fed:
        raise ConfigError("replay", f"topics {fed} are both an output and an input of {app.name!r}")


async def plan_replay(app: App, admin: TopicAdmin, start: str, end: str, now_ms: int) -> ReplayPlan:
    """Resolve ``--from`` and ``--to`` to offsets per input partition (the ends as of now)."""
    check_replayable(app)
    ranges: Ranges = {}
    for topic in sorted(app.sources):
        info = await admin.topic(topic)
        firsts = await _bound(admin, info, start, now_ms, default=info.start_offsets, setting="--from")
        ends = await _bound(admin, info, end, now_ms, default=info.end_offsets, setting="--to")
        ranges[topic] = {
            p: (firsts[p], max(firsts[p], min(ends[p], info.end_offsets[p]))) for p in range(info.partitions)
        }
    return ReplayPlan(app, ranges)


async def _bound(
    admin: TopicAdmin, info: TopicInfo, spec: str, now_ms: int, *, default: Mapping[int, int], setting: str
) -> dict[int, int]:
    if spec == "earliest":
        return dict(info.start_offsets)
    if spec == "latest":
        return dict(info.end_offsets)
    if ":" in spec and not spec.startswith("-") and spec.replace(":", "").replace(",", "").isdigit():
        offsets = dict(default)
        for part in spec.split(","):
            p, _, offset = part.partition(":")
            if int(p) not in offsets:
                raise ConfigError(setting, f"topic {info.name!r} has partitions 0..{info.partitions - 1}, not {p}")
            offsets[int(p)] = int(offset)
        return offsets
    at = target_time_ms(spec, now_ms, setting)
    assert at is not None
    return await admin.offsets_for_time(info.name, at)


async def run_replay(
    plan: ReplayPlan,
    suffix: str,
    admin: TopicAdmin,
    settings: RunSettings,
    progress: Callable[[RunStatus], None] | None = None,
    progress_interval_s: float = 1.0,
) -> RunStatus:
    """Run `plan`'s app with outputs suffixed, from fresh state in `settings.state_dir`, to the plan's ends."""
    if not suffix:
        raise ConfigError("--output-suffix", "a replay writes to suffixed topics: give a suffix, e.g. -replay")
    app = plan.app.with_output_suffix(suffix)
    state = settings.state_dir / app.name
    if state.exists() and any(state.iterdir()):
        raise ConfigError("--state-dir", f"{state} holds state already; a replay starts from fresh state")
    existing = {topic.name for topic in await admin.topics()}
    for spec in app.topics:
        if isinstance(admin, KafkaAdmin):  # its sinks need the partition counts, outputs may need creating
            await admin.broker.ensure_topic(spec, internal=spec.name not in plan.ranges)
        elif spec.name not in existing and spec.name not in plan.ranges:
            await admin.create_topic(spec.name, spec.partitions, spec.retention_ms)
    for pipeline in app.pipelines:
        store = TaskStore(state / pipeline.name)
        try:
            store.set_start_positions(plan.starts(pipeline.source))
        finally:
            store.close()
    broker: Broker
    if isinstance(admin, KafkaAdmin):
        broker = KafkaRangeBroker(admin.broker, plan.ends())
    else:
        assert isinstance(admin, EmbeddedAdmin)
        broker = EmbeddedBroker(admin.log, stop_at=plan.ends())
    runner = Runner(
        app,
        replace(settings, until_end=True, http=""),
        broker=broker,
        handle_signals=True,
        progress=progress,
        progress_interval_s=progress_interval_s,
    )
    return await runner.run()
