"""The engine end to end on the embedded log: where every record goes, and what survives a restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from helpers import dead_letters, produce, run, settings, table
from streamcore.operators import Aggregate, Count, FeatureView, Rolling, Session, Sum, Tumbling

from streamcore import App, EventTime, IncompatibleState, Runner, RunStatus
from streamcore.io.log import EmbeddedLog
from streamcore.runtime import pacing
from streamcore.runtime.task_run import TaskRun
from streamcore.state.store import TaskStore


def window_app(name: str = "shop", partitions: int = 2, lateness: int = 0) -> App:
    app = App(name)
    src = app.topic("orders", partitions=partitions)
    out = app.topic("totals")
    (
        app.stream(src, event_time=EventTime("ts", max_out_of_orderness=100, max_future_skew="1m"))
        .key_by("user")
        .window(Tumbling(1000), allowed_lateness=lateness)
        .aggregate(n=Count(), total=Sum("amount"))
        .to(out)
    )
    return app


def ev(user: str, ts: int, amount: float = 1.0) -> dict[str, Any]:
    return {"user": user, "ts": ts, "amount": amount}


def test_every_record_is_accounted_for_with_its_reason_and_position(tmp_path: Path) -> None:
    far_future = 10**15
    lines = [
        ev("a", 100),
        b"{not json",
        ev("a", 200, 2.5),
        b"[1, 2]",
        {"user": 7, "ts": 300, "amount": 1},
        {"user": "a", "ts": "soon", "amount": 1},
        {"user": "a", "ts": 400, "amount": "x"},
        ev("b", far_future),
        ev("a", 5_000),
        ev("a", 100),  # the last one is late: its window closed at 5_000 - 100
    ]
    produce(tmp_path, "orders", lines, partitions=1)
    status = run(window_app(partitions=1), tmp_path)
    counters = status.tasks[0].counters
    assert counters.records_in == len(lines) == counters.accounted
    assert (counters.accepted, counters.late) == (3, 1)
    reasons = {(d.source_offset, d.reason) for d in dead_letters(tmp_path, "shop-dlq")}
    assert reasons == {
        (1, "decode"),
        (3, "schema"),
        (4, "schema"),
        (5, "schema"),
        (6, "schema"),
        (7, "future_timestamp"),
    }
    letter = next(d for d in dead_letters(tmp_path, "shop-dlq") if d.source_offset == 6)
    assert letter.record.value == b'{"user":"a","ts":400,"amount":"x"}'  # the original bytes
    assert (letter.source_topic, letter.source_partition, letter.step) == ("orders", 0, "orders")
    assert "amount" in letter.error and letter.time_ms > 0
    [late] = dead_letters(tmp_path, "shop-late")
    assert (late.source_offset, late.reason) == (9, "late")
    windows = table(tmp_path, "totals")
    assert windows[("a", 0, 1000)]["n"] == 2 and windows[("a", 0, 1000)]["total"] == 3.5


def test_a_failing_map_dead_letters_the_record_and_the_stream_goes_on(tmp_path: Path) -> None:
    app = App("m")
    out = app.topic("out")

    def explode(e: dict[str, Any]) -> dict[str, Any]:
        if e["n"] == 2:
            raise ValueError("boom")
        return e

    app.stream(app.topic("in"), event_time=EventTime("ts")).map(explode).filter(lambda e: e["n"] != 3).to(out)
    produce(tmp_path, "in", [{"n": i, "ts": i} for i in range(5)])
    counters = run(app, tmp_path).tasks[0].counters
    assert (counters.accepted, counters.filtered, counters.dead_lettered) == (3, 1, {"operator_error": 1})
    [letter] = dead_letters(tmp_path, "m-dlq")
    assert letter.source_offset == 2 and "ValueError: boom" in letter.error
    assert len(EmbeddedLog(tmp_path / "log").read_all("out")) == 3


def test_a_failing_user_aggregation_changes_no_state(tmp_path: Path) -> None:
    def add(acc: list[int], value: int) -> list[int]:
        if value == 13:
            raise ArithmeticError("unlucky")
        return [*acc, value]

    picky = Aggregate(create=list, add=add, merge=lambda a, b: a + b, result=sorted, field="amount", name="seen")
    app = App("u")
    (
        app.stream(app.topic("in"), event_time=EventTime("ts"))
        .key_by("user")
        .window(Tumbling(1000))
        .aggregate(n=Count(), seen=picky)
        .to(app.topic("out"))
    )
    produce(tmp_path, "in", [ev("a", 1, 1), ev("a", 2, 13), ev("a", 3, 2)])
    run(app, tmp_path)
    window = table(tmp_path, "out")[("a", 0, 1000)]
    assert (window["n"], window["seen"]) == (2, [1, 2])  # the failed event left count and list alone
    assert [d.reason for d in dead_letters(tmp_path, "u-dlq")] == ["operator_error"]


def test_a_failing_result_dead_letters_that_window_only(tmp_path: Path) -> None:
    boom = Aggregate(
        create=lambda: 0, add=lambda a, v: a + 1, merge=lambda a, b: a + b, result=lambda a: 1 / (a - 2), name="inverse"
    )
    app = App("r")
    app.stream(app.topic("in"), event_time=EventTime("ts")).key_by("user").window(Tumbling(1000)).aggregate(x=boom).to(
        app.topic("out")
    )
    produce(tmp_path, "in", [ev("a", 1), ev("a", 2), ev("b", 3)])
    run(app, tmp_path)
    assert set(table(tmp_path, "out")) == {("b", 0, 1000)}
    [letter] = dead_letters(tmp_path, "r-dlq")
    assert letter.reason == "operator_error" and "ZeroDivisionError" in letter.error


def test_windows_fired_at_end_of_input_are_revised_when_the_log_grows(tmp_path: Path) -> None:
    first = [ev("a", 100), ev("a", 900), ev("b", 1500)]
    second = [ev("a", 950, 5.0), ev("b", 1600), ev("a", 2500)]
    produce(tmp_path, "orders", first, partitions=2, partition=0)
    run(window_app(), tmp_path)
    assert table(tmp_path, "totals")[("a", 0, 1000)]["n"] == 2  # fired by the end of input
    produce(tmp_path, "orders", second, partitions=2, partition=0)
    run(window_app(), tmp_path)
    windows = table(tmp_path, "totals")
    assert (windows[("a", 0, 1000)]["n"], windows[("a", 0, 1000)]["total"]) == (3, 7.0)  # revised, not reset
    assert windows[("b", 1000, 2000)]["n"] == 2

    reference = tmp_path / "reference"
    produce(reference, "orders", first + second, partitions=2, partition=0)
    run(window_app(), reference)
    assert {k: (v["n"], v["total"]) for k, v in windows.items()} == {
        k: (v["n"], v["total"]) for k, v in table(reference, "totals").items()
    }


def test_a_graceful_stop_checkpoints_and_the_next_run_resumes(tmp_path: Path) -> None:
    produce(tmp_path, "orders", [ev("a", i * 10) for i in range(50)], partitions=2, partition=1)

    async def run_then_stop() -> None:
        runner = Runner(window_app(), settings(tmp_path, until_end=False), handle_signals=False)
        task = asyncio.create_task(runner.run())
        while not runner.sources or runner.status().records_in < 50:  # noqa: ASYNC110 - polls from outside
            await asyncio.sleep(0.01)
        runner.stop()
        status = await task
        assert status.tasks[0].counters.checkpoints >= 1

    asyncio.run(run_then_stop())
    produce(tmp_path, "orders", [ev("a", 500 + i * 10) for i in range(60)], partitions=2, partition=1)
    status = run(window_app(), tmp_path)
    assert status.tasks[0].counters.records_in == 60  # resumed after the checkpointed position
    windows = table(tmp_path, "totals")
    assert windows[("a", 0, 1000)]["n"] == 100 and windows[("a", 1000, 2000)]["n"] == 10


def test_renamed_operator_state_is_refused(tmp_path: Path) -> None:
    produce(tmp_path, "orders", [ev("a", 1)], partitions=2)
    run(window_app(), tmp_path)
    renamed = App("shop")
    src, out = renamed.topic("orders", partitions=2), renamed.topic("totals")
    renamed.stream(src, event_time=EventTime("ts")).key_by("user").window(Session(100)).aggregate(
        name="sessions", n=Count()
    ).to(out)
    with pytest.raises(IncompatibleState, match="window1"):
        run(renamed, tmp_path)


def test_function_sink_gets_batches(tmp_path: Path) -> None:
    seen: list[list[Any]] = []
    app = App("f")
    app.stream(app.topic("in")).map(lambda e: e["x"] * 2).sink(seen.append)
    produce(tmp_path, "in", [{"x": i} for i in range(5)])
    run(app, tmp_path)
    assert [v for batch in seen for v in batch] == [0, 2, 4, 6, 8]


def test_checkpoints_of_all_tasks_share_one_time_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Three tasks checkpointing at once get CHECKPOINT_SHARE of the time together, not each."""
    clock = [100.0]
    monkeypatch.setattr(pacing.time, "perf_counter", lambda: clock[0])
    pacer = pacing.CheckpointPacer()
    for _ in range(3):
        pacer.begin()
    assert pacer.due()
    for _ in range(3):  # each task takes a 20 ms step
        pacer.spent(0.02)
    clock[0] += 0.5
    assert not pacer.due()  # 60 ms of work is more than 10% of 0.5 s
    clock[0] += 0.11
    assert pacer.due()  # and less than 10% of 0.61 s
    for _ in range(3):
        pacer.end()
    pacer.spent(1.0)
    pacer.begin()  # the next round starts with a clean budget
    assert pacer.due()


def test_a_task_checkpoints_unpaced_only_while_no_other_task_has_records() -> None:
    """Idle time is the loop's, not one task's: a busy task keeps the others' checkpoints paced."""
    pacer = pacing.CheckpointPacer()
    idle, busy = object(), object()
    assert pacer.idle_for(idle)
    pacer.working.add(idle)  # its own records do not count against it
    assert pacer.idle_for(idle)
    pacer.working.add(busy)
    assert not pacer.idle_for(idle)
    pacer.working.discard(busy)
    assert pacer.idle_for(idle)


async def started(runner: Runner, records: int) -> tuple[asyncio.Task[RunStatus], TaskRun]:
    """Start a one-task runner and wait until it has read `records`; its asyncio task and its task."""
    task = asyncio.create_task(runner.run())
    await until(lambda: bool(runner.sources) and runner.status().records_in >= records)
    (run,) = runner._runs
    return task, run


async def until(condition: Callable[[], bool]) -> None:
    """Poll from outside the runner (it has no event to wait on for these moments)."""
    while not condition():  # noqa: ASYNC110
        await asyncio.sleep(0.001)


def test_an_idle_task_checkpoints_in_its_idle_time_and_records_that_arrive_do_not_wait(tmp_path: Path) -> None:
    """While a task has nothing to process, its checkpoint runs unpaced in short steps.

    A checkpoint of 30,000 changed entities takes a few hundred ms of work: held to
    `CHECKPOINT_SHARE` it would take ten times that. Idle, it takes little more than its
    work, and a record appended meanwhile is readable long before it ends.
    """
    app = App("wide")
    view = FeatureView("user", entity="user", features={"n": Rolling(Count(), over="1h", pane="1m")})
    app.stream(app.topic("events"), event_time=EventTime("ts")).key_by("user").features(view).to(app.topic("out"))
    produce(tmp_path, "events", [{"user": f"u{i}", "ts": 1000 + i} for i in range(30_000)])

    async def scenario() -> tuple[float, bool, float, float]:
        runner = Runner(app, settings(tmp_path, until_end=False, checkpoint_interval_ms=1500), handle_signals=False)
        readable: list[tuple[float, bool]] = []
        runner.on_publish(
            lambda _ms, _views, batches: readable.extend(
                (time.perf_counter(), run.checkpointing is not None) for b in batches if b.values[0].find(b"late") > 0
            )
        )
        task, run = await started(runner, records=30_000)
        await until(lambda: run.checkpointing is not None)
        began = time.perf_counter()
        EmbeddedLog(tmp_path / "log").producer("events").send_many([orjson.dumps({"user": "late", "ts": 50_000})], [0])
        appended = time.perf_counter()
        await until(lambda: run.checkpointing is None)
        took, work = time.perf_counter() - began, run.pacer._busy_s
        runner.stop()
        await task
        ((at, during),) = readable
        return at - appended, during, took, work

    wait_s, during_checkpoint, took_s, work_s = asyncio.run(scenario())
    assert during_checkpoint and wait_s < 0.05, (wait_s, took_s)
    assert work_s > 0.1 and took_s < 3 * work_s, (took_s, work_s)


def test_a_slow_disk_sync_does_not_stop_the_stream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fsync that makes a checkpoint durable runs in a thread; the checkpoint counts after it."""
    real_sync = TaskStore.sync_wal

    def slow_sync(store: TaskStore) -> None:
        time.sleep(0.3)  # a disk under write-back pressure; sleeping releases the GIL, as flush_wal does
        real_sync(store)

    monkeypatch.setattr(TaskStore, "sync_wal", slow_sync)
    produce(tmp_path, "orders", [ev("a", 10)], partitions=1)

    async def scenario() -> tuple[int, int, float]:
        runner = Runner(
            window_app(partitions=1),
            settings(tmp_path, until_end=False, checkpoint_interval_ms=50, fsync="always"),
            handle_signals=False,
        )
        task, run = await started(runner, records=1)
        await until(lambda: run.syncing is not None)
        counted_before = run.task.counters.checkpoints
        appended = time.perf_counter()
        EmbeddedLog(tmp_path / "log").producer("orders").send_many([orjson.dumps(ev("a", 20))], [0])
        await until(lambda: runner.status().records_in >= 2)
        waited = time.perf_counter() - appended
        counted_while_syncing = run.task.counters.checkpoints if run.syncing is not None else -1
        runner.stop()
        await task
        return counted_before, counted_while_syncing, waited

    before, while_syncing, waited_s = asyncio.run(scenario())
    assert while_syncing == before, "the checkpoint counted before its sync ended (or the record waited for it)"
    assert waited_s < 0.2
