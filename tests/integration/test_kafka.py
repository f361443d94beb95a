"""streamcore against a real Kafka-protocol broker: workers, offsets, state that moves, backpressure.

Every test runs `streamcore worker` processes of `apps/kafka_windows.py` against Tansu
(see conftest.py) and compares the final window results with a brute-force count of
the same input, or with the TCK oracle's: nothing lost, nothing counted twice.
"""

from __future__ import annotations

import signal
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from streamcore.runtime.repartition import SOURCE_HEADER
from streamcore.serving.http import SERVED_BY as SERVED
from streamcore.testing import free_port
from tests.integration.conftest import (
    Worker,
    closing_events,
    consume_all,
    create_topic,
    expected_windows,
    final_windows,
    oracle_windows,
    produce,
    run,
    window_events,
)

pytestmark = pytest.mark.integration


def _app() -> str:
    return f"k{uuid.uuid4().hex[:8]}"


def _setup(kafka: str, name: str) -> None:
    run(create_topic(kafka, f"{name}-events", 4))
    run(create_topic(kafka, f"{name}-totals", 1))


def _results(kafka: str, name: str, expect: int) -> tuple[list[Any], dict[tuple[str, int], tuple[int, int]]]:
    records = run(consume_all(kafka, f"{name}-totals", expect=expect, timeout_s=60))
    values = [orjson.loads(r.value) for r in records]
    return records, final_windows(values)


def _wait_for(kafka: str, name: str, expected: dict[Any, Any], timeout_s: float = 90) -> dict[Any, Any]:
    deadline = time.monotonic() + timeout_s
    got: dict[Any, Any] = {}
    while time.monotonic() < deadline:
        _, got = _results(kafka, name, 0)
        if got == expected:
            return got
        time.sleep(0.5)
    return got


def test_a_missing_topic_is_a_clear_error(kafka: str, tmp_path: Path) -> None:
    name = _app()
    worker = Worker(kafka, name, tmp_path / "w1")
    assert worker.proc.wait(60) == 2
    message = worker.log.read_text()
    assert f"topic '{name}-events' does not exist" in message
    assert "STREAMCORE_KAFKA_CREATE_TOPICS=1" in message


def test_round_trip_keeps_keys_timestamps_and_counts_every_event(kafka: str, tmp_path: Path) -> None:
    name = _app()
    _setup(kafka, name)
    events = window_events(keys=20, per_key=40)
    run(produce(kafka, f"{name}-events", events + closing_events(events), headers=True))
    worker = Worker(kafka, name, tmp_path / "w1")
    try:
        expected = expected_windows(events)
        assert _wait_for(kafka, name, expected) == expected
    finally:
        assert worker.stop() == 0
    records, _ = _results(kafka, name, len(expected))
    for record in records:
        value = orjson.loads(record.value)
        assert record.key == value["key"].encode()  # keyed by the window's key
        assert record.timestamp == value["end"] - 1  # stamped with the window's last instant


def test_input_headers_cross_a_repartition_to_outputs_and_steps_see_their_record(kafka: str, tmp_path: Path) -> None:
    """Keyed by "user" (the topic is keyed by "key"): each event crosses the repartition
    topic, carrying its headers, which the output has; streamcore's own headers do not."""
    name = _app()
    run(create_topic(kafka, f"{name}-events", 4))
    run(create_topic(kafka, f"{name}-described", 1))
    events = [{"key": f"k{i}", "user": f"u{i % 3}", "ts": 1_700_000_000_000 + i, "amount": i} for i in range(12)]
    run(produce(kafka, f"{name}-events", events, headers=True))  # each with ("source", b"test")
    worker = Worker(kafka, name, tmp_path / "w1", app_file="tests/integration/apps/kafka_headers.py")
    try:
        records = run(consume_all(kafka, f"{name}-described", expect=len(events), timeout_s=60))
    finally:
        assert worker.stop() == 0
    assert len(records) == len(events)
    for record in records:
        value = orjson.loads(record.value)
        assert list(record.headers) == [("source", b"test")]  # the input's, not streamcore-source
        assert value["record_topic"].startswith(f"{name}-") and value["record_topic"].endswith("-repartition")
        assert value["record_key"] == value["user"]  # the repartitioned record is keyed by the new key


def test_a_restarted_worker_resumes_from_its_checkpoint_and_committed_offsets(kafka: str, tmp_path: Path) -> None:
    name = _app()
    _setup(kafka, name)
    events = window_events(keys=10, per_key=60)
    first, second = events[: len(events) // 2], events[len(events) // 2 :]
    run(produce(kafka, f"{name}-events", first))
    worker = Worker(kafka, name, tmp_path / "w1")
    time.sleep(8)
    assert worker.stop() == 0  # SIGTERM: checkpoint, changelog, offsets, then leave

    committed = run(_committed(kafka, name, f"{name}-events", 4))
    assert sum(committed.values()) == len(first)  # every record of the first half, committed once

    run(produce(kafka, f"{name}-events", second + closing_events(events)))
    worker = Worker(kafka, name, tmp_path / "w1")
    try:
        expected = expected_windows(events)
        assert _wait_for(kafka, name, expected) == expected  # no window counted twice or short
    finally:
        assert worker.stop() == 0
    assert "resuming at {" in worker.log.read_text()


async def _committed(kafka: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        out = {}
        for p in range(partitions):
            out[p] = await consumer.committed(TopicPartition(topic, p)) or 0
        return out
    finally:
        await consumer.stop()


def _produce_slowly(kafka: str, name: str, events: list[dict[str, Any]], seconds: float) -> None:
    chunks = 10
    size = len(events) // chunks + 1
    for i in range(chunks):
        run(produce(kafka, f"{name}-events", events[i * size : (i + 1) * size]))
        time.sleep(seconds / chunks)


def _two_workers_halfway(kafka: str, tmp_path: Path, **env: str) -> tuple[str, list[dict[str, Any]], list[Worker]]:
    """Two workers of a new app, with the first half of the events fed to them over 3 s."""
    name = _app()
    _setup(kafka, name)
    events = window_events(keys=40, per_key=80)
    workers = [Worker(kafka, name, tmp_path / "w1", **env), Worker(kafka, name, tmp_path / "w2", **env)]
    time.sleep(3)
    _produce_slowly(kafka, name, events[: len(events) // 2], 3)
    return name, events, workers


def test_two_workers_one_killed_and_restarted_lose_and_double_count_nothing(kafka: str, tmp_path: Path) -> None:
    """Windows per "user" of events keyed by "key": the stream crosses a repartition topic.

    SIGKILL mid-stream leaves shuffled events written twice (the restarted shuffle task
    writes again what followed its checkpoint) and watermark records from every source
    partition interleaved in every repartition partition. The final windows must still
    be exactly the TCK oracle's for the same input on the source partitions.
    """
    key_by = {"STREAMCORE_TEST_KEY_BY": "user"}
    name, events, workers = _two_workers_halfway(kafka, tmp_path, **key_by)
    try:
        second_half = threading.Thread(target=_produce_slowly, args=(kafka, name, events[len(events) // 2 :], 3))
        second_half.start()
        time.sleep(1)
        workers[1].kill()  # SIGKILL mid-stream: its partitions go to w1, restored from the changelog
        second_half.join()
        workers[1] = Worker(kafka, name, tmp_path / "w2", **key_by)  # back, with its old local state
        closing = closing_events(events)
        run(produce(kafka, f"{name}-events", closing))
        expected = oracle_windows(events + closing, key="user")
        assert expected == expected_windows(events, key="user")  # the oracle agrees with a plain count
        assert _wait_for(kafka, name, expected) == expected
    finally:
        for w in workers:
            w.stop()
    logs = (tmp_path / "w1.log").read_text() + (tmp_path / "w2.log").read_text()
    assert "state restored" in logs
    shuffled = run(consume_all(kafka, f"{name}-totals-repartition"))
    origins = [dict(r.headers).get(SOURCE_HEADER) for r in shuffled]
    events_written = [o for o in origins if o is not None]
    assert len(set(events_written)) == len(events) + len(closing)  # every event crossed, under one origin
    print(
        f"repartition topic: {len(events_written) - len(set(events_written))} events written twice (skipped), "
        f"{len(origins) - len(events_written)} watermark records"
    )


@pytest.mark.parametrize("key_by", ["key", "user"])
def test_a_third_worker_joining_takes_partitions_and_results_stay_exact(
    kafka: str, tmp_path: Path, key_by: str
) -> None:
    """By the message key (no repartition) and by "user" (shuffle and keyed tasks both move)."""
    env = {"STREAMCORE_TEST_KEY_BY": key_by}
    name, events, workers = _two_workers_halfway(kafka, tmp_path, **env)
    try:
        workers.append(Worker(kafka, name, tmp_path / "w3", **env))
        _produce_slowly(kafka, name, events[len(events) // 2 :], 4)
        run(produce(kafka, f"{name}-events", closing_events(events)))
        expected = expected_windows(events, key=key_by)
        assert _wait_for(kafka, name, expected) == expected
        assert "state restored" in (tmp_path / "w3.log").read_text()  # it owns partitions now
    finally:
        for w in workers:
            w.stop()


RSS_BOUND_KIB = 200 * 1024
"""Peak RSS a worker may reach while its sink is stalled under a 300k-event backlog (~30 MB of JSON)."""


def test_a_stalled_sink_pauses_the_source_memory_stays_bounded_and_it_catches_up(kafka: str, tmp_path: Path) -> None:
    name = _app()
    _setup(kafka, name)
    stall = tmp_path / "stall"
    stall.touch()
    events = window_events(keys=500, per_key=600)  # 300k events
    worker = Worker(kafka, name, tmp_path / "w1", STREAMCORE_TEST_STALL_FILE=str(stall))
    try:
        run(produce(kafka, f"{name}-events", events + closing_events(events)))
        time.sleep(8)  # stalled: the first results wait in the sink, the source is paused
        assert worker.proc.poll() is None
        peak_stalled = worker.peak_rss_kib()
        stall.unlink()  # the sink recovers
        expected = expected_windows(events)
        out = Path(str(stall) + ".out")
        got: dict[Any, Any] = {}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and got != expected:
            time.sleep(1)
            if out.exists():
                got = final_windows([orjson.loads(line) for line in out.read_bytes().splitlines()])
        assert got == expected  # nothing lost, nothing counted twice
        peak = worker.peak_rss_kib()
    finally:
        worker.stop()
    print(f"peak RSS: {peak_stalled / 1024:.0f} MiB while stalled, {peak / 1024:.0f} MiB overall")
    assert peak < RSS_BOUND_KIB
    log = (tmp_path / "w1.log").read_text()
    # heartbeats went on: the partitions were gained once, and released only by the final SIGTERM
    assert log.count("state restored") == 4 and log.count("released") == 4


def _get(port: int, path: str) -> tuple[int, dict[str, Any], dict[str, str]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, orjson.loads(answer.read()), dict(answer.headers)
    except urllib.error.HTTPError as error:
        return error.code, orjson.loads(error.read()), dict(error.headers)


def test_every_worker_answers_for_every_entity_by_asking_its_owner(kafka: str, tmp_path: Path) -> None:
    name = _app()
    _setup(kafka, name)
    ports = [free_port(), free_port()]
    workers = [Worker(kafka, name, tmp_path / f"w{i}", http_port=port) for i, port in enumerate(ports)]
    keys = [f"k{k}" for k in range(16)]
    try:
        time.sleep(3)  # both in the group, partitions split
        run(produce(kafka, f"{name}-events", window_events(keys=len(keys), per_key=5)))
        deadline = time.monotonic() + 60
        while True:
            answers = {(port, key): _get(port, f"/features/{key}?view=per_key") for port in ports for key in keys}
            counts = {
                where: body["views"][0]["features"]["events_1h"]["value"] if status == 200 else status
                for where, (status, body, _) in answers.items()
            }
            if set(counts.values()) == {5} or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert set(counts.values()) == {5}, counts  # both workers, every key, the full count
        for key in keys:  # one worker owns the key and answers itself; the other asks it
            served_by = {port: answers[port, key][2].get(SERVED) for port in ports}
            (owner,) = [port for port in ports if served_by[port] is None]
            (other,) = [port for port in ports if port != owner]
            assert served_by[other] == f"http://127.0.0.1:{owner}"
        status, body, _ = _get(ports[0], "/features/k1?view=nope")
        assert status == 404 and "nope" in body["error"]

        workers[1].kill()  # its partitions move to the survivor: meanwhile a retry, never a wrong answer
        seen = set()

        def current(status: int, body: dict[str, Any], headers: dict[str, str]) -> bool:
            return status == 200 and SERVED not in headers and body["views"][0]["stale_ms"] is None

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            answers = {key: _get(ports[0], f"/features/{key}?view=per_key") for key in keys}
            for status, body, headers in answers.values():
                seen.add(status)
                if status == 200 and body["views"][0]["stale_ms"] is None:
                    assert body["views"][0]["features"]["events_1h"]["value"] == 5
                elif status == 200:  # restored from the killed worker's last checkpoint, catching up: it says so
                    assert 0 <= body["views"][0]["features"]["events_1h"]["value"] <= 5
                else:
                    assert status == 503 and headers.get("Retry-After") == "1", (status, body)
            if all(current(*answer) for answer in answers.values()):
                break
            time.sleep(0.2)
        assert all(current(*answer) for answer in answers.values()), seen
    finally:
        for w in workers:
            w.stop()


def _count(body: dict[str, Any]) -> Any:
    return body["views"][0]["features"]["events_1h"]["value"]


def _assigned_at(log: Path) -> float:
    """The wall time (epoch s) of the log's last "partitions assigned" line: the last rebalance."""
    import datetime

    line = [line for line in log.read_text().splitlines() if "partitions assigned" in line][-1]
    stamp = datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")  # noqa: DTZ007 - the log's local time
    return stamp.timestamp()


def test_a_worker_that_stops_hands_its_partitions_over_without_a_gap(kafka: str, tmp_path: Path) -> None:
    """Issue 14.5: while a partition moves, reads answer from its last checkpoint (stale), never 503."""
    name = _app()
    _setup(kafka, name)
    ports = [free_port(), free_port()]
    workers = [Worker(kafka, name, tmp_path / f"w{i}", http_port=port) for i, port in enumerate(ports)]
    keys = [f"k{k}" for k in range(16)]
    try:
        time.sleep(3)
        run(produce(kafka, f"{name}-events", window_events(keys=len(keys), per_key=5)))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # every event applied (a 200 alone can be a key not seen yet)
            answers = {key: _get(ports[0], f"/features/{key}?view=per_key") for key in keys}
            if all(status == 200 and _count(body) == 5 for status, body, _ in answers.values()):
                break
            time.sleep(0.3)
        moving = [key for key, (_, _, headers) in answers.items() if SERVED in headers]
        assert moving, "the second worker owns some keys"

        workers[1].proc.send_signal(signal.SIGTERM)
        stale, fresh_at = 0, None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for key in moving:
                status, body, headers = _get(ports[0], f"/features/{key}?view=per_key")
                assert status == 200, (status, body)  # never a gap
                (read,) = body["views"]
                assert read["features"]["events_1h"]["value"] == 5  # the last checkpoint: every event
                if read["stale_ms"] is not None:  # from the worker that let it go, or the new owner catching up
                    stale += 1
                    assert read["stale_ms"] >= 0 and headers.get(SERVED) in (f"http://127.0.0.1:{ports[1]}", None)
            now = [_get(ports[0], f"/features/{key}?view=per_key") for key in moving]
            if all(SERVED not in headers and body["views"][0]["stale_ms"] is None for _, body, headers in now):
                fresh_at = time.time()
                break
            time.sleep(0.05)
        assert fresh_at is not None, "the survivor never served the moved keys itself"
        assert stale > 0, "the stopping worker served its released partitions stale meanwhile"
        gap = fresh_at - _assigned_at(tmp_path / "w0.log")
        print(f"served by the new owner {gap:.2f} s after the rebalance; {stale} stale answers meanwhile")
        assert gap < 2.0
        assert workers[1].proc.wait(30) == 0  # a clean exit, once its new owner came
        assert "no longer served stale here (its new owner announced itself)" in (tmp_path / "w1.log").read_text()
    finally:
        for w in workers:
            w.stop()


def _metrics(port: int) -> dict[str, list[tuple[dict[str, str], float]]]:
    """The worker's /metrics: family name -> [(labels, value)] of its samples (promtool must find nothing)."""
    from debian_tools import promtool_problems
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        raw = answer.read()
    assert promtool_problems(raw) == ""
    text = raw.decode()
    families: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            families.setdefault(sample.name, []).append((sample.labels, sample.value))
    return families


def _read_in(metrics: dict[str, list[tuple[dict[str, str], float]]]) -> float:
    return sum(v for labels, v in metrics.get("streamcore_records_in_total", []) if labels["stream"] == "totals")


def test_metrics_name_streams_not_tasks_keep_counting_across_a_rebalance_and_say_idle(
    kafka: str, tmp_path: Path
) -> None:
    """Issue 16.6: ``stream`` is the stream (the partition is its own label), counters never go
    back when partitions move, and a stream with no input reports idle, not a growing lag."""
    name = _app()
    _setup(kafka, name)
    port = free_port()
    first = Worker(kafka, name, tmp_path / "w1", http_port=port)
    events = window_events(keys=16, per_key=5)
    workers = [first]
    try:
        time.sleep(3)
        run(produce(kafka, f"{name}-events", events))
        deadline = time.monotonic() + 30
        while _read_in(_metrics(port)) < len(events) and time.monotonic() < deadline:
            time.sleep(0.3)
        before = _metrics(port)
        assert _read_in(before) == len(events)
        assert {labels["stream"] for family in before.values() for labels, _ in family if "stream" in labels} == {
            "totals"
        }  # never "totals/p0": the partition is the partition label's
        assert {labels["partition"] for labels, _ in before["streamcore_records_in_total"]} == {"0", "1", "2", "3"}

        workers.append(Worker(kafka, name, tmp_path / "w2"))  # takes two partitions from the first
        deadline = time.monotonic() + 30
        while first.log.read_text().count("partitions assigned") < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1)
        after = _metrics(port)
        assert _read_in(after) == len(events)  # the released partitions' counts stay counted
        outputs = {m: sum(v for _, v in after[m]) for m in ("streamcore_records_out_total",)}
        assert outputs["streamcore_records_out_total"] >= sum(v for _, v in before["streamcore_records_out_total"])

        time.sleep(5.5)  # no input: the stream goes idle
        quiet = _metrics(port)
        (idle,) = quiet["streamcore_stream_idle_seconds"]
        assert idle[0] == {"stream": "totals"} and idle[1] >= 5.0
        assert "streamcore_watermark_lag_seconds" not in quiet  # not an ever-growing number
        run(produce(kafka, f"{name}-events", closing_events(events)))  # input again: a lag, and not idle
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and "streamcore_watermark_lag_seconds" not in (busy := _metrics(port)):
            time.sleep(0.2)
        assert busy["streamcore_stream_idle_seconds"][0][1] == 0.0
    finally:
        for w in workers:
            w.stop()


def test_a_partition_just_assigned_is_not_at_its_end_until_its_records_are_read(kafka: str) -> None:
    """`KafkaPartitionSource.at_end`: an empty fetch before the first fetch response is not the end
    (the runner counted it as caught up: see tests/unit/test_catching_up.py)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from streamcore.io.kafka_source import KafkaPartitionSource

    topic = f"{_app()}-ends"
    run(create_topic(kafka, topic, 1))
    run(produce(kafka, topic, window_events(keys=2, per_key=5)))

    async def check() -> tuple[bool, bool, int]:
        consumer = AIOKafkaConsumer(bootstrap_servers=kafka, group_id=f"{topic}-g", enable_auto_commit=False)
        await consumer.start()
        try:
            consumer.assign([TopicPartition(topic, 0)])
            source = KafkaPartitionSource(consumer, topic, 0)
            await source.start({})
            before = source.at_end({0: 0})
            read = 0
            for _ in range(200):
                batch = await source.fetch(1000)
                if batch is None:
                    if source.at_end({0: read}):
                        break
                    await source.wait(0.05)
                    continue
                read = batch.next_offset
            return before, source.at_end({0: read}), read
        finally:
            await consumer.stop()

    before, after, read = run(check())
    assert (before, after, read) == (False, True, 10)
