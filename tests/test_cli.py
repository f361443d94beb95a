"""The command line as a user drives it: produce, run, tail, dead letters, replay, demo."""

from __future__ import annotations

import subprocess
from pathlib import Path

import orjson

from streamcore.testing import cli_command

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "apps" / "payments" / "app.py"


def cli(*args: str, stdin: bytes | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_command(*args),
        input=stdin.decode() if stdin else None,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        check=False,
    )


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

    tail = cli("log", "tail", "card-spend", *log)
    windows = [orjson.loads(line) for line in tail.stdout.splitlines()]
    c1 = next(w for w in windows if w["key"] == "c1")
    assert (c1["payments"], c1["total"], c1["start"], c1["end"]) == (2, 15.5, 0, 5_000)

    topics = cli("log", "topics", *log)
    assert "payments-dlq" in topics.stdout and "card-spend" in topics.stdout

    listed = cli("dlq", "list", "--reason", "decode", *log)
    assert listed.returncode == 0 and "decode" in listed.stdout
    shown = cli("dlq", "show", "--reason", "decode", *log)
    doc = orjson.loads(shown.stdout.splitlines()[0])
    assert doc["value"] == "{broken" and doc["source"]["topic"] == "payments"

    replayed = cli("dlq", "replay", "--offset", str(doc["dlq_offset"]), *log)
    assert replayed.returncode == 0 and "replayed" in replayed.stdout
    again = cli("log", "tail", "payments", "--meta", *log)
    last = [orjson.loads(line) for line in again.stdout.splitlines() if "sc.replayed_from" in line]
    assert last and last[0]["value"] == "{broken"


def test_errors_are_clear(tmp_path: Path) -> None:
    missing = cli("log", "tail", "nope", "--log-dir", str(tmp_path))
    assert missing.returncode == 2 and "topic 'nope' does not exist" in missing.stderr
    bad_app = cli("run", str(tmp_path / "absent.py"))
    assert bad_app.returncode == 2 and "no such file" in bad_app.stderr
    no_choice = cli("dlq", "replay", "--topic", "x-dlq", "--log-dir", str(tmp_path))
    assert no_choice.returncode == 2


def test_payments_demo_runs_and_accounts_for_everything(tmp_path: Path) -> None:
    demo = cli("demo", "payments", "--seconds", "3", "--rate", "4000", "--dir", str(tmp_path))
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert "every record accounted for" in demo.stdout
    assert "future_timestamp" in demo.stdout and "late" in demo.stdout


def test_fraud_demo_decides_catches_fraud_and_shows_freshness(tmp_path: Path) -> None:
    demo = cli("demo", "--seconds", "6", "--rate", "2000", "--dir", str(tmp_path))
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    out = demo.stdout
    assert "every record accounted for" in out and "curl -s http://127.0.0.1:" in out
    assert "decline" in out and "freshness p50" in out and "future_timestamp" in out
    caught = out.split("declined or reviewed ")[1].split(" ")[0]
    assert int(caught) > 0  # injected fraud was caught


def test_unknown_demo_is_a_clear_error() -> None:
    demo = cli("demo", "nope")
    assert demo.returncode == 2 and "no demo 'nope'" in demo.stderr
