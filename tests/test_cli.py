"""The command line as a user drives it: produce, run, tail, dead letters, replay, demo."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import orjson
import pytest
from cli_checks import check_dead_letter_tools, cli

from streamcore.state.store import TaskStore
from streamcore.testing import cli_command

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "apps" / "payments" / "app.py"


def test_produce_run_tail_and_replay(tmp_path: Path) -> None:
    log = ["--log-dir", str(tmp_path / "log")]
    lines = [
        {"card": "c1", "merchant": "m1", "amount": 10.0, "ts": 1_000},
        {"card": "c1", "merchant": "m2", "amount": 5.5, "ts": 2_000},
        {"card": "c2", "merchant": "m1", "amount": 1.0, "ts": 3_000},
    ]
    stdin = b"\n".join(orjson.dumps(x) for x in lines) + b"\n{broken\n"
    produced = cli("log", "produce", "payments", "--partitions", "4", "--key-field", "card", *log, stdin=stdin)
    assert produced.returncode == 0, produced.stderr
    assert "appended 4 records" in produced.stderr

    ran = cli("run", str(APP), "--until-end", "--state-dir", str(tmp_path / "state"), *log, "--quiet")
    assert ran.returncode == 0, ran.stderr
    assert "every record accounted for" in ran.stderr and "MISSING" not in ran.stderr

    served = cli("run", str(APP), "--until-end", "--state-dir", str(tmp_path / "served"), *log, "--http", "127.0.0.1:0")
    port = re.search(r"HTTP on http://127\.0\.0\.1:(\d+): the status page is ", served.stderr)
    assert served.returncode == 0 and port is not None and int(port.group(1)) > 0, served.stderr  # the real port

    tail = cli("log", "tail", "card-spend", *log)
    windows = [orjson.loads(line) for line in tail.stdout.splitlines()]
    c1 = next(w for w in windows if w["key"] == "c1")
    assert (c1["payments"], c1["total"], c1["start"], c1["end"]) == (2, 15.5, 0, 5_000)

    topics = cli("log", "topics", *log)
    assert "payments-dlq" in topics.stdout and "card-spend" in topics.stdout

    check_dead_letter_tools(log, source="payments", broken="{broken")


def test_errors_are_clear(tmp_path: Path) -> None:
    missing = cli("log", "tail", "nope", "--log-dir", str(tmp_path))
    assert missing.returncode == 2 and "topic 'nope' does not exist" in missing.stderr
    bad_app = cli("run", str(tmp_path / "absent.py"))
    assert bad_app.returncode == 2 and "no such file" in bad_app.stderr
    no_choice = cli("dlq", "replay", "--topic", "x-dlq", "--log-dir", str(tmp_path))
    assert no_choice.returncode == 2


def test_payments_demo_runs_and_accounts_for_everything(tmp_path: Path) -> None:
    demo = cli("demo", "payments", "--seconds", "3", "--rate", "4000", "--dir", str(tmp_path / "kept"))
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert "every record accounted for" in demo.stdout
    tail = demo.stdout.rpartition("the log and state are in")[2].splitlines()[1:]
    assert tail[0] == f"  cd {tmp_path / 'kept'}" and (tmp_path / "kept" / "log").is_dir()
    assert all(len(line) <= 80 for line in tail[1:])  # the hints fit 80 columns, however long the path
    (tmp_path / "t").mkdir()
    on_its_own = cli("demo", "payments", "--seconds", "1", "--rate", "1000", env={"TMPDIR": str(tmp_path / "t")})
    assert on_its_own.returncode == 0 and "the log and state are in" not in on_its_own.stdout
    assert list((tmp_path / "t").iterdir()) == []  # removed at the end
    assert "future_timestamp" in demo.stdout and "late" in demo.stdout


def test_fraud_demo_decides_catches_fraud_and_shows_freshness(tmp_path: Path) -> None:
    demo = cli("demo", "--seconds", "6", "--rate", "2000", "--dir", str(tmp_path))
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    out = demo.stdout
    assert "every record accounted for" in out and "curl -s http://127.0.0.1:" in out
    assert "decline" in out and "freshness p50" in out and "future_timestamp" in out
    caught = out.split("injected fraud: ")[1].split(", ")[1].split(" ")[0]
    assert int(caught) > 0  # injected fraud was caught


def test_unknown_demo_is_a_clear_error() -> None:
    demo = cli("demo", "nope")
    assert demo.returncode == 2 and "no demo 'nope'" in demo.stderr


def _payments(tmp_path: Path, count: int, first_ts: int = 1_000) -> subprocess.CompletedProcess[str]:
    lines = [{"card": "c1", "merchant": "m1", "amount": 1, "ts": first_ts + i} for i in range(count)]
    stdin = b"".join(orjson.dumps(x) + b"\n" for x in lines)
    log = ["--log-dir", str(tmp_path / "log")]
    return cli("log", "produce", "payments", "--partitions", "4", "--partition", "0", *log, stdin=stdin)


def _run_payments(tmp_path: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    log = ["--log-dir", str(tmp_path / "log")]
    return cli("run", str(APP), "--until-end", "--state-dir", str(tmp_path / "state"), *log, "--quiet", *extra, env=env)


def test_a_checkpoint_past_the_end_of_the_log_stops_the_run_instead_of_skipping_new_records(tmp_path: Path) -> None:
    """The log's tail was lost after a checkpoint counted it: new appends would reuse its offsets."""
    assert _payments(tmp_path, 10).returncode == 0
    assert _run_payments(tmp_path).returncode == 0  # checkpoints partition 0 at offset 10
    segment = tmp_path / "log" / "payments" / "0" / f"{0:020d}.log"
    segment.unlink()  # the tail is gone (here: all of it)
    assert _payments(tmp_path, 3, first_ts=50_000).returncode == 0  # new records at offsets 0..2

    stopped = _run_payments(tmp_path)
    assert stopped.returncode == 2
    assert "topic 'payments' partition 0: the checkpoint resumes at offset 10, but the log ends at offset 3" in (
        stopped.stderr
    )
    assert "--offset-reset latest" in stopped.stderr

    going_on = _run_payments(tmp_path, "--offset-reset", "latest", "--log-format", "json")  # at the log's end, 3
    assert going_on.returncode == 0, going_on.stderr
    logged = [orjson.loads(line) for line in going_on.stderr.splitlines() if line.startswith("{")]
    assert any(d["level"] == "warning" and "past the log's end 3" in d["message"] for d in logged), logged
    assert _payments(tmp_path, 2, first_ts=60_000).returncode == 0  # offsets 3, 4
    after = _run_payments(tmp_path)  # no flag needed: the checkpoint now holds offset 3
    assert after.returncode == 0 and "every record accounted for" in after.stderr, after.stderr
    tail = cli("log", "tail", "card-spend", "--log-dir", str(tmp_path / "log"))
    windows = [orjson.loads(line) for line in tail.stdout.splitlines()]
    assert any(w["start"] == 60_000 and w["payments"] == 2 for w in windows)


def test_a_damaged_frame_stops_the_run_and_log_check_names_it(tmp_path: Path) -> None:
    assert _payments(tmp_path, 500).returncode == 0
    segment = tmp_path / "log" / "payments" / "0" / f"{0:020d}.log"
    data = bytearray(segment.read_bytes())
    data[-3] ^= 0x01  # one flipped byte in the last frame
    segment.write_bytes(bytes(data))

    ran = _run_payments(tmp_path)
    assert ran.returncode == 2 and f"{segment} at byte 0: frame checksum mismatch" in ran.stderr
    checked = cli("log", "check", "--log-dir", str(tmp_path / "log"))
    assert checked.returncode == 1 and f"DAMAGED payments/0: {segment} at byte 0" in checked.stdout
    assert "ok      payments/1" in checked.stdout
    produced = _payments(tmp_path, 1)
    assert produced.returncode == 2 and "checksum mismatch" in produced.stderr
    assert segment.read_bytes() == bytes(data)  # nothing truncated


def test_produce_counts_as_malformed_only_what_is_not_a_json_object(tmp_path: Path) -> None:
    """A key with an unpaired surrogate is a JSON object (the app dead-letters it as schema), not malformed."""
    stdin = b'{"card": "\\ud800", "amount": 1, "ts": 1}\n{"card": "c1", "amount": 1e400, "ts": 2}\n{broken\n'
    produced = cli(
        "log",
        "produce",
        "payments",
        "--partitions",
        "4",
        "--key-field",
        "card",
        "--log-dir",
        str(tmp_path),
        stdin=stdin,
    )
    assert produced.returncode == 0 and "appended 3 records to payments" in produced.stderr
    assert "warning: 1 lines are not JSON objects (line 3)" in produced.stderr


def test_an_unknown_streamcore_variable_is_warned_about_with_a_guess(tmp_path: Path) -> None:
    assert _payments(tmp_path, 3).returncode == 0
    ran = _run_payments(tmp_path, env={"STREAMCORE_CHECKPOINT_INTERVAL": "5s", "STREAMCORE_TEST_ANYTHING": "1"})
    assert ran.returncode == 0, ran.stderr
    assert (
        "unknown setting STREAMCORE_CHECKPOINT_INTERVAL (did you mean STREAMCORE_CHECKPOINT_INTERVAL_MS?)" in ran.stderr
    )
    assert "STREAMCORE_TEST_ANYTHING" not in ran.stderr  # the test suite's own


def test_clear_words_for_held_state_a_bad_broker_port_and_a_reader_that_stops(tmp_path: Path) -> None:
    """A second run on state another worker holds, ``kafka://host:notaport``, and ``log tail | head``."""
    assert _payments(tmp_path, 5).returncode == 0
    assert _run_payments(tmp_path).returncode == 0
    held = TaskStore(tmp_path / "state" / "payments" / "spend-per-card")  # as a running worker holds it
    try:
        second = _run_payments(tmp_path)
    finally:
        held.close()
    assert second.returncode == 2 and "another worker holds the state at" in second.stderr, second.stderr
    assert "Resource temporarily unavailable" not in second.stderr

    port = cli("log", "topics", "--broker", "kafka://127.0.0.1:notaport")
    assert port.returncode == 2 and "has port 'notaport', not a number" in port.stderr, port.stderr

    assert _payments(tmp_path, 3_000).returncode == 0
    tail = subprocess.Popen(
        cli_command("log", "tail", "payments", "--log-dir", str(tmp_path / "log")),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert tail.stdout is not None and tail.stdout.readline()  # `head -1`: one line, then the pipe closes
    tail.stdout.close()
    assert tail.wait(30) == 0
    assert tail.stderr is not None
    with tail.stderr:
        assert tail.stderr.read() == b""  # no traceback


def test_errors_in_the_users_app_name_its_file_and_line_and_usage_is_the_subcommands(tmp_path: Path) -> None:
    bad_argument = tmp_path / "bad_argument.py"
    bad_argument.write_text("from streamcore import App, Sum\n\napp = App('x')\nSum(3)\n")
    ran = cli("run", str(bad_argument), "--until-end", "--log-dir", str(tmp_path / "log"))
    assert ran.returncode == 2, ran.stderr
    assert f"{bad_argument}:4: sum.field: sum needs the name of a numeric field" in ran.stderr
    assert "Traceback" not in ran.stderr

    bad_syntax = tmp_path / "bad_syntax.py"
    bad_syntax.write_text("from streamcore import App\napp = App('x'\n")
    ran = cli("run", str(bad_syntax), "--log-dir", str(tmp_path / "log"))
    assert ran.returncode == 2 and f"{bad_syntax}:2: SyntaxError: '(' was never closed" in ran.stderr, ran.stderr
    assert "importlib" not in ran.stderr

    unknown = cli("log", "tail", "payments", "--bogus")
    assert unknown.returncode == 2 and "streamcore log tail: error: unrecognized arguments: --bogus" in unknown.stderr
    assert "usage: streamcore log tail" in unknown.stderr


def test_log_produce_says_which_lines_are_not_json_objects_and_which_have_no_key(tmp_path: Path) -> None:
    lines = b'{"card":"c1","ts":1}\n{broken\n[1,2]\n{"ts":3}\n'
    log = ["--log-dir", str(tmp_path / "log")]
    produced = cli("log", "produce", "payments", "--partitions", "4", "--key-field", "card", *log, stdin=lines)
    assert produced.returncode == 0 and "appended 4 records to payments" in produced.stderr
    assert "warning: 2 lines are not JSON objects (lines 2, 3): appended as they are" in produced.stderr
    assert "warning: 1 records have no 'card' field (line 4): appended without a key" in produced.stderr


def test_a_run_to_the_end_of_an_input_that_does_not_exist_says_so(tmp_path: Path) -> None:
    """Before: it created the topic empty and reported every record (none) accounted for."""
    ran = _run_payments(tmp_path)
    assert ran.returncode == 2, ran.stderr
    assert "input topic 'payments' does not exist in" in ran.stderr and "log produce payments" in ran.stderr
    assert "accounted for" not in ran.stderr


def test_event_times_in_seconds_or_long_ago_get_one_warning_per_stream(tmp_path: Path) -> None:
    now_s = int(time.time())
    assert _payments(tmp_path, 50, first_ts=now_s).returncode == 0  # seconds, not milliseconds
    ran = _run_payments(tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert ran.stderr.count("event times look like seconds") == 2  # once for each of the app's two streams
    assert "multiply them by 1000" in ran.stderr

    fresh = tmp_path / "ms"
    assert _payments(fresh, 50, first_ts=now_s * 1000).returncode == 0
    assert "event times" not in _run_payments(fresh).stderr
    old = tmp_path / "old"
    assert _payments(old, 50, first_ts=1_000).returncode == 0
    assert "event times are more than ten years old" in _run_payments(old).stderr


def test_help_shows_defaults_the_demos_and_every_flag_the_readme_names(tmp_path: Path) -> None:
    replay = cli("replay", "--help")
    assert replay.returncode == 0 and "(default: earliest)" in replay.stdout and "(default: None)" not in replay.stdout
    assert "usage: streamcore demo [fraud]" in cli("demo", "--help").stdout
    assert "usage: streamcore demo payments" in cli("demo", "payments", "--help").stdout
    assert "--fsync {never,always}" in cli("run", "--help").stdout  # the README names it
    assert _payments(tmp_path, 3).returncode == 0
    assert _run_payments(tmp_path, "--fsync", "always").returncode == 0


def test_the_fraud_demo_fits_80_columns_speaks_in_words_and_cleans_up(tmp_path: Path) -> None:
    before = set(Path(tempfile.gettempdir()).glob("streamcore-fraud-*"))
    demo = cli("demo", "--seconds", "3", "--rate", "1000")
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    wide = [line for line in demo.stdout.splitlines() if len(line) > 80]
    assert not wide, wide
    assert "decisions: " in demo.stdout and " approved, " in demo.stdout and "{'" not in demo.stdout
    assert set(Path(tempfile.gettempdir()).glob("streamcore-fraud-*")) == before  # removed: no --keep

    kept = cli("demo", "--seconds", "2", "--rate", "500", "--keep")
    assert kept.returncode == 0 and "the log and state are in " in kept.stdout
    where = Path(kept.stdout.split("the log and state are in ")[1].split()[0])
    assert (where / "log").is_dir()
    shutil.rmtree(where)


def test_ctrl_c_stops_the_demo_with_the_summary_so_far() -> None:
    demo = subprocess.Popen(cli_command("demo", "--seconds", "60", "--rate", "500"), stdout=subprocess.PIPE, text=True)
    assert demo.stdout is not None
    with demo.stdout:
        for line in demo.stdout:
            if " in " in line and "/s)" in line:  # the first progress line: it runs
                break
        demo.send_signal(signal.SIGINT)
        rest = demo.stdout.read()
    assert demo.wait(60) == 0
    assert "stopped after" in rest and "(interrupted)" in rest and "every record accounted for" in rest


def test_a_replayed_record_that_fails_again_is_not_replayed_round_and_round(tmp_path: Path) -> None:
    """Replay a broken record, let the app fail it again: its new dead letters name the one they
    came from (sc.replayed_from), and the next replay skips them rather than send them round again.
    The app has two streams of the topic, so each broken record is dead-lettered twice."""
    log = ["--log-dir", str(tmp_path / "log")]
    good = orjson.dumps({"card": "c1", "merchant": "m1", "amount": 1.0, "ts": 1_000})
    assert cli("log", "produce", "payments", "--partitions", "4", *log, stdin=good + b"\n{broken\n").returncode == 0

    def run_app() -> None:
        ran = cli("run", str(APP), "--until-end", "--state-dir", str(tmp_path / "state"), *log, "--quiet")
        assert ran.returncode == 0, ran.stderr

    run_app()
    topic = ["--topic", "payments-dlq"]
    first = cli("dlq", "replay", "--reason", "decode", *topic, *log)
    assert "2 dead letters replayed" in first.stdout, first.stdout + first.stderr
    run_app()  # the two replayed copies are still broken: each dead-lettered by both streams
    shown = [orjson.loads(line) for line in cli("dlq", "show", "--reason", "decode", *topic, *log).stdout.splitlines()]
    originals = {f"payments-dlq/{d['dlq_partition']}@{d['dlq_offset']}" for d in shown[:2]}
    lineage = [d["replayed_from"] for d in shown]
    assert lineage[:2] == [None, None] and len(lineage) == 6 and set(lineage[2:]) == originals
    second = cli("dlq", "replay", "--reason", "decode", *topic, *log)
    assert second.returncode == 0 and second.stdout.strip().endswith(
        "0 dead letters replayed; 2 skipped: replayed before (--again replays them again); "
        "4 skipped: they failed again after their replay (fix them first, or --again)"
    ), second.stdout
    forced = cli("dlq", "replay", "--reason", "decode", "--again", *topic, *log)
    assert "6 dead letters replayed" in forced.stdout, forced.stdout


def test_a_full_disk_is_recognised_however_it_is_raised() -> None:
    """The chaos suite's disk-full scenario found both: an OSError inside the runner's task
    group, and RocksDB's own error (rocksdict raises a plain Exception with its status text)."""
    import errno as errnos

    from streamcore.cli.main import _disk_full

    full = OSError(errnos.ENOSPC, "No space left on device", "/state/x.log")
    assert _disk_full(ExceptionGroup("task group", [ValueError("other"), full])) == (
        "No space left on device writing /state/x.log"
    )
    rocks = Exception("IO error: No space left on device: While appending to file: /state/000009.sst")
    assert _disk_full(rocks) == str(rocks)
    assert _disk_full(OSError(errnos.EACCES, "Permission denied")) is None
    assert _disk_full(ValueError("No space left on device")) is None  # only RocksDB's plain Exception


def test_the_stdio_bridge_without_the_sdk_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse
    import sys

    from streamcore.cli.mcp_command import mcp_command

    monkeypatch.setitem(sys.modules, "httpx2", None)  # as if the extra were not installed
    assert mcp_command(argparse.Namespace(url="http://127.0.0.1:1", token=None)) == 2
    assert "pip install 'streamcore[mcp]'" in capsys.readouterr().err
