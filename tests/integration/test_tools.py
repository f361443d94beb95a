"""The operator's tools against a real Kafka-protocol broker: ``log`` and ``dlq`` on ``--broker kafka://``.

The same commands, with the same checks, run on the embedded log in ``tests/test_cli.py``.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from cli_checks import check_dead_letter_tools, cli

from tests.integration.conftest import (
    ROOT,
    TEST_APP,
    Worker,
    closing_events,
    consume_all,
    create_topic,
    expected_windows,
    final_windows,
    produce,
    run,
    window_events,
)

pytestmark = pytest.mark.integration


def test_log_and_dead_letter_tools_work_on_kafka(kafka: str, tmp_path: Path) -> None:
    name = f"t{uuid.uuid4().hex[:8]}"
    where = ["--broker", f"kafka://{kafka}"]
    for topic, partitions in ((f"{name}-events", "4"), (f"{name}-totals", "1")):
        created = cli("log", "topics", "--create", topic, "--partitions", partitions, *where)
        assert created.returncode == 0 and f"created {topic}" in created.stdout, created.stderr
    events = window_events(keys=5, per_key=4)
    lines = b"\n".join(orjson.dumps(e) for e in events) + b"\n{broken\n"
    produced = cli("log", "produce", f"{name}-events", "--key-field", "key", *where, stdin=lines)
    assert produced.returncode == 0 and f"appended {len(events) + 1} records" in produced.stderr, produced.stderr

    listed = cli("log", "topics", *where)
    assert listed.returncode == 0, listed.stderr
    line = next(row for row in listed.stdout.splitlines() if row.startswith(f"{name}-events "))
    assert "partitions 4" in line  # no count: Tansu's end offset is its last batch's first + 1

    worker = Worker(kafka, name, tmp_path / "w1")
    try:
        assert len(run(consume_all(kafka, f"{name}-dlq", expect=1, timeout_s=60))) == 1
    finally:
        assert worker.stop() == 0
    summary = worker.log.read_text().partition("(SIGTERM)")[2]
    counted = [int(line.split()[-1].replace(",", "")) for line in summary.splitlines() if "records in" in line]
    assert sum(counted) == len(events) + 1, summary  # every partition it held, released ones too

    tail = cli("log", "tail", f"{name}-events", *where)
    assert tail.returncode == 0 and len(tail.stdout.splitlines()) == len(events) + 1, tail.stderr
    assert len(cli("log", "tail", f"{name}-events", "--limit", "3", *where).stdout.splitlines()) == 3
    check_dead_letter_tools(where, source=f"{name}-events", broken="{broken", dlq_topic=f"{name}-dlq")


def test_a_broker_that_is_not_there_is_a_clear_error() -> None:
    started = time.monotonic()
    gone = cli("log", "topics", "--broker", "kafka://127.0.0.1:9")
    assert gone.returncode == 2 and "cannot reach Kafka at kafka://127.0.0.1:9" in gone.stderr
    assert time.monotonic() - started < 60


def test_reset_on_kafka_moves_the_group_drops_changelogs_and_the_app_starts_over(kafka: str, tmp_path: Path) -> None:
    """A run, a reset to earliest (refused while the worker is alive), and a second run over the
    same input from the start: the same windows again, computed from empty state (no changelog
    restored, nothing counted twice). Then a reset to latest commits the input's end offsets."""
    name = f"r{uuid.uuid4().hex[:8]}"
    where = ["--broker", f"kafka://{kafka}", "--state-dir", str(tmp_path / "w1")]
    stopped = [*where, "--force"]  # Tansu lists a stopped worker as a member for good
    app_env = {
        "STREAMCORE_TEST_APP": name,
        "PYTHONPATH": str(ROOT),
        "STREAMCORE_KAFKA_SESSION_TIMEOUT_MS": "2000",  # Tansu holds a join for half of it
        "STREAMCORE_KAFKA_HEARTBEAT_INTERVAL_MS": "300",
    }
    run(create_topic(kafka, f"{name}-events", 4))
    run(create_topic(kafka, f"{name}-totals", 1))
    events = window_events(keys=6, per_key=10)
    run(produce(kafka, f"{name}-events", events + closing_events(events)))
    expected = expected_windows(events)

    worker = Worker(kafka, name, tmp_path / "w1")
    try:
        assert _windows(kafka, name, len(expected)) == expected
        refused = cli("reset", TEST_APP, "--to", "earliest", *where, env=app_env, cwd=ROOT)
        assert refused.returncode == 2 and "has members: stop its workers first" in refused.stderr, refused.stderr
    finally:
        assert worker.stop() == 0
    first_run = len(run(consume_all(kafka, f"{name}-totals")))

    dry = cli("reset", TEST_APP, "--to", "earliest", "--dry-run", *stopped, env=app_env, cwd=ROOT)
    assert dry.returncode == 0 and f"delete topic {name}-totals-changelog" in dry.stdout, dry.stdout + dry.stderr
    reset = cli("reset", TEST_APP, "--to", "earliest", *stopped, env=app_env, cwd=ROOT)
    assert reset.returncode == 0 and "done: the next run starts there" in reset.stdout, reset.stderr
    assert f"{name}-events/0: " in reset.stdout and " -> 0" in reset.stdout
    assert not (tmp_path / "w1" / name).exists()

    worker = Worker(kafka, name, tmp_path / "w1")
    try:
        again = run(consume_all(kafka, f"{name}-totals", expect=first_run + len(expected), timeout_s=90))
        second = final_windows([orjson.loads(r.value) for r in again[first_run:]])
        assert second == expected  # from the first event on, from empty state
    finally:
        assert worker.stop() == 0

    latest = cli("reset", TEST_APP, "--to", "latest", *stopped, env=app_env, cwd=ROOT)
    assert latest.returncode == 0, latest.stderr
    offsets, ends = run(_group_offsets_and_ends(kafka, name))
    assert offsets == ends  # the end as the broker reports it (Tansu: its last batch's first offset + 1)


def _windows(kafka: str, name: str, expect: int) -> dict[tuple[str, int], tuple[int, int]]:
    records = run(consume_all(kafka, f"{name}-totals", expect=expect, timeout_s=60))
    return final_windows([orjson.loads(r.value) for r in records])


async def _group_offsets_and_ends(
    kafka: str, name: str
) -> tuple[dict[tuple[str, int], int], dict[tuple[str, int], int]]:
    from streamcore.io.admin import KafkaAdmin
    from streamcore.io.kafka_settings import KafkaSettings

    admin = KafkaAdmin(KafkaSettings.from_url(f"kafka://{kafka}"))
    await admin.start()
    try:
        info = await admin.topic(f"{name}-events")
        committed = await admin.group_offsets(name, [f"{name}-events"])
        return committed, {(info.name, p): end for p, end in info.end_offsets.items()}
    finally:
        await admin.close()


def test_replay_on_kafka_is_bounded_writes_suffixed_topics_and_leaves_the_group_alone(
    kafka: str, tmp_path: Path
) -> None:
    """The windows app over its whole input, read without joining its group: the same windows
    as a live run would give, in ``<name>-totals-rp``, and the run ends by itself."""
    name = f"p{uuid.uuid4().hex[:8]}"
    run(create_topic(kafka, f"{name}-events", 4))
    run(create_topic(kafka, f"{name}-totals", 1))
    events = window_events(keys=5, per_key=8)
    run(_produce_one_by_one(kafka, f"{name}-events", events))  # one batch each: Tansu's end offsets are exact
    env = {"STREAMCORE_TEST_APP": name, "PYTHONPATH": str(ROOT)}
    where = ["--broker", f"kafka://{kafka}", "--state-dir", str(tmp_path / "rp")]
    replayed = cli("replay", TEST_APP, "--output-suffix", "-rp", *where, env=env, cwd=ROOT)
    assert replayed.returncode == 0, replayed.stderr
    assert f"{len(events)} records" in replayed.stderr and "100%" in replayed.stderr
    assert "every record accounted for" in replayed.stderr
    results = run(consume_all(kafka, f"{name}-totals-rp", expect=1, timeout_s=30))
    assert final_windows([orjson.loads(r.value) for r in results]) == expected_windows(events)
    offsets, _ = run(_group_offsets_and_ends(kafka, name))
    assert offsets == {}  # the app's consumer group was not touched


async def _produce_one_by_one(kafka: str, topic: str, events: list[dict[str, Any]]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=kafka, linger_ms=0)
    await producer.start()
    try:
        for event in events:
            sent = await producer.send(topic, orjson.dumps(event), key=event["key"].encode(), timestamp_ms=event["ts"])
            await sent
    finally:
        await producer.stop()


def test_backfill_parity_on_kafka_checks_each_worker_on_the_partitions_it_owns(kafka: str, tmp_path: Path) -> None:
    """Two live workers split the partitions; a parity run against each replays just its partitions
    to its snapshot's positions and finds what it serves: together, every entity, no mismatch."""
    import urllib.request

    from streamcore.testing import free_port

    name = f"b{uuid.uuid4().hex[:8]}"
    run(create_topic(kafka, f"{name}-events", 4))
    run(create_topic(kafka, f"{name}-totals", 1))
    ports = [free_port(), free_port()]
    workers = [Worker(kafka, name, tmp_path / f"w{i}", http_port=port) for i, port in enumerate(ports)]
    env = {"STREAMCORE_TEST_APP": name, "PYTHONPATH": str(ROOT)}
    try:
        time.sleep(3)  # both in the group, partitions split
        events = window_events(keys=16, per_key=5)
        run(_produce_one_by_one(kafka, f"{name}-events", events))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # every key served with its full count
            counts = []
            for k in range(16):
                with urllib.request.urlopen(f"http://127.0.0.1:{ports[0]}/features/k{k}?view=per_key") as answer:
                    counts.append(orjson.loads(answer.read())["views"][0]["features"]["events_1h"]["value"])
            if counts == [5] * 16:
                break
            time.sleep(0.5)
        entities = 0
        for port in ports:
            checked = cli(
                "backfill", TEST_APP, "--view", "per_key", "--parity", f"http://127.0.0.1:{port}", "--quiet",
                "--broker", f"kafka://{kafka}", env=env, cwd=ROOT,
            )  # fmt: skip
            assert checked.returncode == 0, checked.stdout + checked.stderr
            assert "MISMATCH" not in checked.stdout and " 0 mismatches" in checked.stdout, checked.stdout
            entities += int(checked.stdout.split(" entities")[0].rsplit(" ", 1)[-1])
        assert entities == 16  # each entity checked once, by the worker that owns it
    finally:
        for w in workers:
            w.stop()


def test_the_compose_producer_sends_transactions_at_its_rate(kafka: str) -> None:
    """`produce_kafka --rate` (the compose file's producer service) paces itself in real time."""
    import subprocess
    import sys

    topic_args = ["--broker", f"kafka://{kafka}", "--count", "300", "--rate", "600"]
    started = time.monotonic()
    sent = subprocess.run(
        [sys.executable, "-m", "streamcore.apps.fraud.produce_kafka", *topic_args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert sent.returncode == 0 and "sent 30" in sent.stdout, sent.stderr  # 300, plus any injected fraud
    assert elapsed >= 0.45  # 300 at 600/s: half a second, not as fast as the broker takes them
    assert len(run(consume_all(kafka, "transactions", expect=300, timeout_s=30))) >= 300


def test_dead_letters_are_named_by_partition_and_offset_and_reading_creates_no_topic(
    kafka: str, tmp_path: Path
) -> None:
    """A dead-letter topic with two partitions holds offset 0 twice: the ledger and ``--offset``
    tell them apart, so a new dead letter is never skipped for an old one's offset. And asking
    about a topic that does not exist does not create it (Kafka and Tansu auto-create on a
    metadata request by name)."""
    name = f"d{uuid.uuid4().hex[:8]}"
    where = ["--broker", f"kafka://{kafka}"]
    missing = cli("dlq", "list", "--topic", f"{name}-nope", *where)
    assert missing.returncode == 2 and f"{name}-nope" in missing.stderr
    assert f"{name}-nope" not in cli("log", "topics", *where).stdout  # not created by asking

    run(create_topic(kafka, f"{name}-events", 4))
    run(create_topic(kafka, f"{name}-totals", 1))
    run(create_topic(kafka, f"{name}-dlq", 2))  # the operator made it with two partitions
    broken = [f'{{"key": "k{i}", broken'.encode() for i in range(6)]

    async def send(values: list[bytes]) -> None:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(bootstrap_servers=kafka)
        await producer.start()
        try:
            for i, value in enumerate(values):
                await (await producer.send(f"{name}-events", value, key=f"k{i}".encode()))
        finally:
            await producer.stop()

    run(send(broken))
    dlq = [*where, "--topic", f"{name}-dlq"]
    worker = Worker(kafka, name, tmp_path / "w1")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "6 of 6" not in cli("dlq", "list", *dlq).stdout:
            time.sleep(0.5)
        shown = [orjson.loads(line) for line in cli("dlq", "show", *dlq).stdout.splitlines()]
        assert {d["dlq_partition"] for d in shown} == {0, 1}  # both partitions: offset 0 twice
        ambiguous = cli("dlq", "replay", "--offset", "0", *dlq)
        assert ambiguous.returncode == 2 and "give one of 0:0, 1:0" in ambiguous.stderr, ambiguous.stderr
        one = cli("dlq", "replay", "--offset", "1:0", *dlq)
        assert one.returncode == 0 and "1 dead letters replayed" in one.stdout, one.stdout + one.stderr
        everything = cli("dlq", "replay", "--reason", "decode", *dlq)  # 0:0 is not 1:0: it is replayed
        assert "5 dead letters replayed; 1 skipped: replayed before" in everything.stdout, everything.stdout
    finally:
        assert worker.stop() == 0
