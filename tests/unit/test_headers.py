"""Input headers reach outputs, and a step can ask for the record an event came from (embedded log).

The same on Kafka, across a repartition: ``tests/integration/test_kafka.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from helpers import run
from streamcore.operators import Count, Tumbling

from streamcore import App, EventTime, Record
from streamcore.io.log import EmbeddedLog, TopicConfig


def _described(event: dict[str, Any], record: Record | None) -> dict[str, Any]:
    assert record is not None
    return {
        **event,
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": record.timestamp,
        "key": None if record.key is None else record.key.decode(),
        "raw": orjson.loads(record.value) == event,
    }


def _app() -> App:
    app = App("hdr")
    events = app.topic("events", partitions=2)
    stream = app.stream(events, event_time=EventTime("ts"))
    stream.filter(lambda e, r: r is not None and r.offset != 1, with_record=True).map(_described, with_record=True).to(
        app.topic("described")
    )
    app.stream(events, event_time=EventTime("ts"), name="counts").key_by("k").window(Tumbling(100)).aggregate(
        n=Count()
    ).to(app.topic("counts"))
    return app


def test_headers_reach_outputs_and_steps_see_their_record(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path / "log")
    log.create_topic(TopicConfig("events", 2))
    for p in (0, 1):
        values = [orjson.dumps({"k": f"k{i}", "ts": 10 * i + p, "p": p}) for i in range(3)]
        keys = [f"key{p}-{i}".encode() for i in range(3)]
        headers = [(("traceparent", f"00-{p}{i}-01".encode()),) if i != 2 else () for i in range(3)]
        log.producer("events").send_many(values, [1_000 + i for i in range(3)], keys, headers, partition=p)
    log.close()

    status = run(_app(), tmp_path)
    assert status.records_in == 12 and all(t.counters.accounted == t.counters.records_in for t in status.tasks)

    log = EmbeddedLog(tmp_path / "log")
    described = log.read_all("described")
    assert [(orjson.loads(r.value)["partition"], orjson.loads(r.value)["offset"]) for r in described] == [
        (0, 0),
        (0, 2),
        (1, 0),
        (1, 2),
    ]  # offset 1 filtered out by a step that read its record
    first = orjson.loads(described[0].value)
    assert first["topic"] == "events" and first["key"] == "key0-0" and first["timestamp"] == 1_000 and first["raw"]
    assert [r.headers for r in described] == [(("traceparent", b"00-00-01"),), (), (("traceparent", b"00-10-01"),), ()]
    counts = log.read_all("counts")
    assert counts and all(r.headers == () for r in counts)  # a window's result comes from many records
    log.close()
