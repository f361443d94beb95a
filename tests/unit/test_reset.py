"""``streamcore reset`` on the embedded log: the next run starts where it says, and nothing derived survives."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import orjson
from cli_checks import cli

from streamcore.io.log import EmbeddedLog, TopicConfig
from streamcore.state.store import TaskStore

APP = str(Path(__file__).parents[1] / "fixtures" / "passthrough_app.py")
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z: record i of a batch is stamped T0 + i s


def produce(tmp_path: Path, first: int, count: int) -> None:
    log = EmbeddedLog(tmp_path / "log")
    log.create_topic(TopicConfig("events", 2))
    for p in (0, 1):
        ids = [i for i in range(first, first + count) if i % 2 == p]
        values = [orjson.dumps({"id": i, "key": f"k{i}", "ts": i}) for i in ids]
        log.producer("events").send_many(values, [T0 + 1_000 * i for i in ids], partition=p)
    log.close()


def copied(tmp_path: Path, where: list[str], state: list[str]) -> list[int]:
    """Run the app to the end of its input; the ids it copied in this run."""
    log = EmbeddedLog(tmp_path / "log")
    before = len(log.read_all("copies")) if log.has_topic("copies") else 0
    log.close()
    ran = cli("run", APP, "--until-end", "--quiet", *where, *state)
    assert ran.returncode == 0, ran.stderr
    log = EmbeddedLog(tmp_path / "log")
    ids = sorted(orjson.loads(r.value)["id"] for r in log.read_all("copies")[before:])
    log.close()
    return ids


def test_reset_moves_the_start_to_earliest_latest_a_time_or_a_duration_ago(tmp_path: Path) -> None:
    where, state = ["--log-dir", str(tmp_path / "log")], ["--state-dir", str(tmp_path / "state")]
    produce(tmp_path, 0, 10)
    assert copied(tmp_path, where, state) == list(range(10))

    dry = cli("reset", APP, "--to", "earliest", "--dry-run", *where, *state)
    assert dry.returncode == 0 and "would reset app 'passthrough'" in dry.stdout, dry.stderr
    assert "events/0: 5 -> 0" in dry.stdout and "remove state" in dry.stdout
    produce(tmp_path, 10, 2)
    assert copied(tmp_path, where, state) == [10, 11]  # a dry run changed nothing

    latest = cli("reset", APP, "--to", "latest", *where, *state)
    assert latest.returncode == 0 and "events/1: 6 -> 6" in latest.stdout, latest.stdout + latest.stderr
    produce(tmp_path, 12, 2)
    assert copied(tmp_path, where, state) == [12, 13]  # only what came after the reset

    moment = dt.datetime.fromtimestamp((T0 + 9_000) / 1000, dt.UTC).isoformat()
    assert cli("reset", APP, "--to", moment, *where, *state).returncode == 0
    assert copied(tmp_path, where, state) == list(range(9, 14))  # stamped at or after T0 + 9 s

    assert cli("reset", APP, "--to", "earliest", *where, *state).returncode == 0
    assert copied(tmp_path, where, state) == list(range(14))

    ago = cli("reset", APP, "--to", "-1d", *where, *state)  # the records are from January: none that recent
    assert ago.returncode == 0 and "events/0: 7 -> 7" in ago.stdout, ago.stdout
    assert copied(tmp_path, where, state) == []


def test_reset_refuses_while_a_worker_holds_the_state_and_names_bad_targets(tmp_path: Path) -> None:
    where, state = ["--log-dir", str(tmp_path / "log")], ["--state-dir", str(tmp_path / "state")]
    produce(tmp_path, 0, 4)
    assert copied(tmp_path, where, state) == [0, 1, 2, 3]
    held = TaskStore(tmp_path / "state" / "passthrough" / "events")  # as a running worker holds it
    try:
        refused = cli("reset", APP, "--to", "earliest", *where, *state)
    finally:
        held.close()
    assert refused.returncode == 2 and "a worker holds" in refused.stderr, refused.stderr
    assert copied(tmp_path, where, state) == []  # nothing was reset

    for bad, message in (("yesterday", "expected earliest, latest"), ("2026-01-01T00:00:00", "has no time zone")):
        wrong = cli("reset", APP, "--to", bad, *where, *state)
        assert wrong.returncode == 2 and message in wrong.stderr, wrong.stderr
