"""Repartitioning (`streamcore.repartition`): the plan, and the two stages against the TCK oracle.

The Kafka integration test runs the stages as real workers. Here they run in one process,
with real state, fed one arrival at a time: each source arrival goes through its
partition's shuffle task, and whatever that writes to the repartition topic (events and
watermark records) is handed at once to the keyed task of its partition. Fed that way the
keyed stage sees the events in the oracle's order, so its results, late and dead-letter
sets must be exactly the oracle's, with positions in the source topic.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson
import pytest
import tck_shared as tck
from streamcore.operators import Count, Tumbling

from chaos.conformance.streamcore_adapter import build_app
from streamcore import App, EventTime, ManualClock
from streamcore.base.deadletter import DeadLetter
from streamcore.base.errors import ConfigError
from streamcore.base.records import Headers, Record, RecordBatch
from streamcore.dataflow.stream import Pipeline, ShuffleSink
from streamcore.io.transport import TopicSpec
from streamcore.runtime.repartition import SOURCE_HEADER, ProducerWatermarks, ShuffledInput, plan
from streamcore.runtime.task import Task
from streamcore.state.store import TaskStore
from streamcore.testing import results_table


class ListSink:
    """A topic in memory: records per partition, in the order added."""

    def __init__(self, topic: str, partitions: int = 1) -> None:
        self.topic = topic
        self.records: list[list[Record]] = [[] for _ in range(partitions)]
        self.pending = 0

    def add(
        self, key: bytes | None, value: bytes, timestamp: int, headers: Headers = (), partition: int | None = None
    ) -> None:
        log = self.records[partition or 0]
        log.append(Record(self.topic, partition or 0, len(log), timestamp, key, value, headers))

    async def flush(self) -> None:
        return None

    def all(self) -> list[Record]:
        return [r for log in self.records for r in log]


def _topics(app: App) -> dict[str, TopicSpec]:
    return {t.name: t for t in app.topics}


def _windows_app(key: str | None, key_by: str) -> App:
    app = App("plan")
    source = app.topic("input", partitions=3, key=key)
    out = app.topic("out")
    app.stream(source, event_time=EventTime("ts")).key_by(key_by).window(Tumbling(10)).aggregate(n=Count()).to(out)
    return app


def test_a_stream_keyed_by_its_topics_key_runs_as_written() -> None:
    app = _windows_app(key="card", key_by="card")
    assert plan(app.name, app.pipelines, _topics(app)) == list(app.pipelines)


def test_a_stream_keyed_by_another_field_is_cut_at_its_key_by() -> None:
    app = _windows_app(key="card", key_by="merchant")
    shuffle, keyed = plan(app.name, app.pipelines, _topics(app))
    assert shuffle.source == "input" and isinstance(shuffle.sink, ShuffleSink)
    assert shuffle.sink == ShuffleSink("plan-input-repartition", 3)
    assert keyed.source == "plan-input-repartition" and keyed.repartitioned_from == _topics(app)["input"]
    assert [type(s).__name__ for s in shuffle.steps] == ["KeyByStep", "MapStep"]  # the key, the window's check
    assert [type(s).__name__ for s in keyed.steps] == ["KeyByStep", "OperatorStep"]
    assert keyed.event_time is not None and keyed.event_time.out_of_orderness_ms == 0


def test_a_stream_without_a_stateful_operator_is_not_cut() -> None:
    app = App("plain")
    source = app.topic("input", partitions=2)
    app.stream(source).key_by("user").map(lambda e: e).to(app.topic("out"))
    assert plan(app.name, app.pipelines, _topics(app)) == list(app.pipelines)


def test_a_stream_named_like_a_shuffle_stage_is_a_config_error() -> None:
    app = _windows_app(key=None, key_by="card")
    twin = Pipeline("input-shuffle", "input", None, (), app.pipelines[0].sink)
    with pytest.raises(ConfigError, match="clashes with the shuffle stage"):
        plan(app.name, [*app.pipelines, twin], _topics(app))


def _shuffled(producer: int, offset: int, value: bytes = b"{}") -> tuple[bytes, Headers]:
    return value, ((SOURCE_HEADER, b"%d:%d" % (producer, offset)),)


def _watermark(producer: int, watermark: int) -> tuple[bytes, Headers]:
    return orjson.dumps({"producer": producer, "watermark": watermark}), (("streamcore-watermark", b"1"),)


def test_a_keyed_stage_skips_events_a_restarted_producer_wrote_again_and_moves_w_on_watermark_records() -> None:
    tracker = ProducerWatermarks(2, None)
    shuffled = ShuffledInput(tracker)
    records = [
        _shuffled(0, 10),
        _shuffled(1, 4),
        _watermark(0, 100),
        _shuffled(0, 11),
        _shuffled(0, 10),  # producer 0 restarted from offset 10: written again
        _shuffled(0, 11),
        _shuffled(0, 12),
        _watermark(1, 50),
        _shuffled(1, 5),
    ]
    batch = RecordBatch("r", 0, 0, [v for v, _ in records], [0] * len(records), None, [h for _, h in records])
    runs: list[list[int]] = []
    fired: list[float] = []
    shuffled.process(
        batch,
        1,
        lambda run: runs.append(list(range(run.base_offset, run.next_offset))),
        lambda: fired.append(tracker.watermark),
    )
    assert runs == [[0, 1], [3], [6], [8]]
    assert shuffled.duplicates == 2
    assert fired == [50]  # min over both producers, once producer 1 reported
    assert tracker.applied == {0: 12, 1: 5}
    restored = ProducerWatermarks(2, None)
    restored.restore(tracker.snapshot())
    assert restored.applied == tracker.applied and restored.watermark == 50


def _task(pipeline: Pipeline, partition: int, store: Path, sink: ListSink, dlq: ListSink, late: ListSink) -> Task:
    return Task(
        pipeline,
        app_name="tck",
        app_version="0",
        partitions=(partition,),
        store=TaskStore(store),
        sink=sink,
        dead_letters=dlq,
        late=late,
        clock=ManualClock(0),
        split_views=True,
    )


def run_repartitioned(case: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """Run `case` through a shuffle task per source partition and a keyed task per repartition partition."""
    n = case["partitions"]
    app = build_app(case["job"], n)
    shuffle, keyed = plan(app.name, app.pipelines, _topics(app))
    assert isinstance(shuffle.sink, ShuffleSink)
    repartition = ListSink(shuffle.sink.topic, n)
    results, dlq, late = ListSink("results"), ListSink("dlq"), ListSink("late")
    shufflers = [_task(shuffle, p, workdir / f"s{p}", repartition, dlq, late) for p in range(n)]
    keyers = [_task(keyed, p, workdir / f"k{p}", results, dlq, late) for p in range(n)]
    offsets = [0] * n
    delivered = [0] * n
    for arrival in case["arrivals"]:
        p, at = arrival["p"], arrival["at"]
        data = arrival["data"].encode()
        shufflers[p].process_batch(RecordBatch("input", p, offsets[p], [data], [at], [None], [()]), at)
        offsets[p] += 1
        for d in range(n):
            for record in repartition.records[d][delivered[d] :]:
                batch = RecordBatch(
                    record.topic, d, record.offset, [record.value], [record.timestamp], [record.key], [record.headers]
                )
                keyers[d].process_batch(batch, at)
            delivered[d] = len(repartition.records[d])
    for task in keyers:
        task.finish()
    for task in shufflers + keyers:
        assert task.counters.accounted == task.counters.records_in
        task.store.close()
    table = results_table(results.all())
    late_set = {(d.source_partition, d.source_offset) for d in map(DeadLetter.from_record, late.all())}
    dlq_set = {(d.source_partition, d.source_offset, d.reason) for d in map(DeadLetter.from_record, dlq.all())}
    assert {d.source_topic for d in map(DeadLetter.from_record, late.all() + dlq.all())} <= {"input"}
    return {
        "results": [{k: v for k, v in value.items() if k != "revision"} for _, value in sorted(table.items())],
        "late": [{"p": p, "offset": o} for p, o in sorted(late_set)],
        "dlq": [{"p": p, "offset": o, "reason": r} for p, o, r in sorted(dlq_set)],
    }


def _cases(count: int, seed: int) -> list[dict[str, Any]]:
    """Random TCK cases without recovery (the Kafka test kills workers). With idle timeouts
    a keyed stage judges a producer idle by what reaches it, close to but not exactly the
    source's idleness; these cases agree with the oracle (see docs/semantics.md)."""
    gen = tck.generator()
    rng = random.Random(seed)
    out = []
    for i in range(count):
        case = gen.random_case(rng, i, 300)
        case.pop("recovery", None)
        case["expected"] = tck.oracle().expected(case)
        out.append(case)
    return out


@pytest.mark.skipif(not tck.available(), reason="../shared/tck is not beside the repo")
@pytest.mark.parametrize("seed", range(4))
def test_the_two_stages_give_the_oracles_results_late_and_dead_letters(tmp_path: Path, seed: int) -> None:
    for i, case in enumerate(_cases(25, seed)):
        got = run_repartitioned(case, tmp_path / f"c{i}")
        assert tck.runner().compare(case["expected"], got) == [], case
