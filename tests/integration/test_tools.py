"""The operator's tools against a real Kafka-protocol broker: ``log`` and ``dlq`` on ``--broker kafka://``.

The same commands, with the same checks, run on the embedded log in ``tests/test_cli.py``.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import orjson
import pytest
from cli_checks import check_dead_letter_tools, cli

from tests.integration.conftest import Worker, consume_all, run, window_events

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
