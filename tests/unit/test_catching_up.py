"""A task has caught up when its source says it reached the end, not when a fetch finds nothing.

A Kafka partition just gained finds nothing in its first fetches (nothing has been fetched
from the broker yet) while its backlog waits there. Counting that as caught up marked the
partition's reads current while they were still those of the checkpoint it restored: the
Kafka test of two workers, one killed, once read a count of 0 for a key with 5 events,
with ``stale_ms`` null. The reads must say stale until the task has read to the end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

import orjson

from streamcore import App, Count, EventTime, FeatureView, Rolling, Runner, RunSettings
from streamcore.base.clock import ManualClock
from streamcore.base.records import RecordBatch
from streamcore.io.embedded import EmbeddedBroker
from streamcore.io.log import EmbeddedLog
from streamcore.io.transport import Control
from streamcore.testing import Arrival, ScriptedBroker, ScriptedSource

START = 1_767_225_600_000


class NotFetchedYet(ScriptedSource):
    """A partition just assigned: its first fetches find nothing, though its records wait."""

    def __init__(self, *args: object, empty_fetches: int) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.empty_fetches = empty_fetches
        self.runner: Runner | None = None
        self.ready_while_behind: list[bool] = []

    async def fetch(self, max_records: int) -> RecordBatch | Control | None:
        if self.empty_fetches:
            self.empty_fetches -= 1
            assert self.runner is not None
            self.ready_while_behind.append(self.runner.ready)
            return None
        return await super().fetch(max_records)

    def at_end(self, positions: Mapping[int, int]) -> bool:
        return self.empty_fetches == 0 and super().at_end(positions)


def test_empty_fetches_before_the_first_records_are_not_caught_up(tmp_path: Path) -> None:
    app = App("catching", version="1")
    events = app.topic("events", partitions=1, key="k")
    view = FeatureView("per_key", entity="k", features={"n": Rolling(Count(), over="1h", pane="5m")})
    app.stream(events, event_time=EventTime("ts")).key_by("k").features(view).discard()
    clock = ManualClock(START)
    script = [Arrival(0, START + i, orjson.dumps({"k": "a", "ts": START + i})) for i in range(5)]
    source = NotFetchedYet("events", 1, script, clock, empty_fetches=3)
    broker = ScriptedBroker(EmbeddedBroker(EmbeddedLog(tmp_path / "log")), {"events": source})
    settings = RunSettings(state_dir=tmp_path / "state", until_end=True)
    runner = Runner(app, settings, broker=broker, clock=clock, handle_signals=False)
    source.runner = runner

    async def run() -> None:
        await runner.run()
        await broker.close()

    asyncio.run(run())
    assert source.ready_while_behind == [False, False, False]  # was [False, True, True]: "caught up" at once
    assert runner.online.read("per_key", "a").values() == {"n": 5}


class SlowToStart(ScriptedSource):
    """A gained partition's source: seeking (the committed offset, the first) takes a request."""

    def __init__(self, *args: object, runner: Runner) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.runner = runner
        self.stale_while_starting: float | None = None

    async def start(self, positions: Mapping[int, int]) -> dict[int, int]:
        await asyncio.sleep(0)  # a request is in flight: HTTP reads are served meanwhile
        self.stale_while_starting = self.runner.online.read("per_key", "a").stale_ms
        return await super().start(positions)


def test_a_gained_partitions_reads_say_stale_from_the_moment_they_are_readable(tmp_path: Path) -> None:
    """The views of a gained partition were registered, and readable, while its source started;
    they were marked stale only after: reads in between passed the restored state off as current."""
    app = App("gaining", version="1")
    events = app.topic("events", partitions=1, key="k")
    view = FeatureView("per_key", entity="k", features={"n": Rolling(Count(), over="1h", pane="5m")})
    app.stream(events, event_time=EventTime("ts")).key_by("k").features(view).discard()
    runner = Runner(app, RunSettings(state_dir=tmp_path / "state"), handle_signals=False)
    broker = EmbeddedBroker(EmbeddedLog(tmp_path / "log"))
    for spec in app.topics:
        broker.ensure_topic(spec)
    source = SlowToStart("events", 1, [], ManualClock(START), runner=runner)

    async def gain() -> None:
        run = await runner._open(runner.app.pipelines[0], broker, source, catching_up=True)
        run.task.store.close()
        await broker.close()

    asyncio.run(gain())
    assert source.stale_while_starting is not None
