"""``streamcore replay`` on the embedded log: a bounded range, into suffixed topics, from fresh state."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import orjson
from cli_checks import cli
from test_reset import APP, T0, copied, produce

from streamcore.io.log import EmbeddedLog


def _ids(tmp_path: Path, topic: str) -> list[int]:
    log = EmbeddedLog(tmp_path / "log")
    ids = sorted(orjson.loads(r.value)["id"] for r in log.read_all(topic)) if log.has_topic(topic) else []
    log.close()
    return ids


def test_replay_runs_a_range_into_suffixed_topics_and_leaves_the_live_app_alone(tmp_path: Path) -> None:
    where, state = ["--log-dir", str(tmp_path / "log")], ["--state-dir", str(tmp_path / "state")]
    produce(tmp_path, 0, 20)  # ids 0, 2, 4, ... in partition 0 and 1, 3, 5, ... in partition 1
    assert copied(tmp_path, where, state) == list(range(20))

    replay = ["replay", APP, *where, "--state-dir", str(tmp_path / "replay1")]
    ran = cli(*replay, "--from", "0:2,1:1", "--to", "0:5,1:3", "--output-suffix", "-r1")
    assert ran.returncode == 0, ran.stderr
    assert "replay events [0: 2..5, 1: 1..3] into *-r1: 5 records" in ran.stderr
    assert "100% 5/5" in ran.stderr and "every record accounted for" in ran.stderr
    assert _ids(tmp_path, "copies-r1") == [3, 4, 5, 6, 8]  # offsets 2..4 of p0 (4, 6, 8), 1..2 of p1 (3, 5)
    assert _ids(tmp_path, "copies") == list(range(20))  # the live outputs are untouched
    log = EmbeddedLog(tmp_path / "log")
    assert log.has_topic("passthrough-dlq-r1") and log.has_topic("passthrough-late-r1")
    log.close()

    since = dt.datetime.fromtimestamp((T0 + 15_000) / 1000, dt.UTC).isoformat()  # record i: T0 + i s
    by_time = cli(
        "replay", APP, *where, "--state-dir", str(tmp_path / "replay2"), "--from", since, "--output-suffix", "-r2"
    )
    assert by_time.returncode == 0, by_time.stderr
    assert _ids(tmp_path, "copies-r2") == [15, 16, 17, 18, 19]

    again = cli(*replay, "--output-suffix", "-r3")  # the first replay's state is there
    assert again.returncode == 2 and "holds state already" in again.stderr, again.stderr
    no_suffix = cli("replay", APP, *where, "--output-suffix", "", "--state-dir", str(tmp_path / "replay4"))
    assert no_suffix.returncode == 2 and "give a suffix" in no_suffix.stderr


def test_the_progress_of_a_replay_counts_each_stream_that_reads_a_topic(tmp_path: Path) -> None:
    """The payments app has two streams of one topic: 10 records are 20 reads, and 100% is 20/20."""
    where = ["--log-dir", str(tmp_path / "log")]
    lines = b"".join(orjson.dumps({"card": f"c{i}", "amount": i, "ts": 1_000 * i}) + b"\n" for i in range(10))
    produced = cli("log", "produce", "payments", "--partitions", "4", "--key-field", "card", *where, stdin=lines)
    assert produced.returncode == 0, produced.stderr
    app = str(Path(__file__).parents[2] / "apps" / "payments" / "app.py")
    ran = cli("replay", app, *where, "--state-dir", str(tmp_path / "r"), "--output-suffix", "-r")
    assert ran.returncode == 0, ran.stderr
    assert "into *-r: 10 records, read by 2 streams" in ran.stderr and "100% 20/20" in ran.stderr, ran.stderr
