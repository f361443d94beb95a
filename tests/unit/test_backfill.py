"""``streamcore backfill``: a view's features as of each row's time, from the log, with nothing later leaking in."""

from __future__ import annotations

import csv
import random
from pathlib import Path
from typing import Any

import orjson
from cli_checks import cli
from live import fraud_log, live_worker, stop_worker

from streamcore.io.log import EmbeddedLog, TopicConfig

ROOT = Path(__file__).parents[2]
APP = str(ROOT / "tests" / "fixtures" / "features_app.py")
OVER, PANE = 10_000, 1_000


def _as_of(events: list[dict[str, Any]], card: str, at: int) -> dict[str, Any]:
    """Brute force: the card's events stamped at or before `at`, in the panes overlapping (at - over, at]."""
    mine = [e for e in events if e["card"] == card and e["ts"] <= at]
    window = [e for e in mine if e["ts"] - e["ts"] % PANE + PANE > at - OVER]
    amounts = [e["amount"] for e in window]
    newest = max((e["ts"] for e in mine), default=None)
    return {
        "n": len(window),
        "spend": sum(amounts),
        "avg": sum(amounts) / len(amounts) if amounts else None,
        "top": max(amounts, default=None),
        "merchants": len({e["merchant"] for e in window}),
        "last": [e["amount"] for e in mine if e["ts"] == newest][-1] if mine else None,  # the last to arrive
    }


def test_backfill_gives_each_row_the_features_as_of_its_time(tmp_path: Path) -> None:
    rng = random.Random(4)
    events = [
        {
            "card": rng.choice("abc"),
            "ts": rng.randrange(60_000),
            "amount": rng.randrange(1, 100),
            "merchant": rng.choice("xyz"),
        }
        for _ in range(300)
    ]
    log = EmbeddedLog(tmp_path / "log")
    log.create_topic(TopicConfig("tx", 2))
    log.producer("tx").send_many([orjson.dumps(e) for e in events], [0] * len(events), partition=0)  # arrival order
    log.close()
    rows = [(card, at) for card in "abcd" for at in (0, 5_500, 30_000, 59_999, 90_000)]
    (tmp_path / "rows.csv").write_text("card,ts\n" + "".join(f"{c},{t}\n" for c, t in rows))

    backfill = [
        "backfill",
        APP,
        "--view",
        "card",
        "--at",
        str(tmp_path / "rows.csv"),
        "--log-dir",
        str(tmp_path / "log"),
    ]
    done = cli(*backfill, "--out", str(tmp_path / "out.jsonl"))
    assert done.returncode == 0, done.stderr
    assert f"{len(rows)} rows of 6 features of view 'card'" in done.stdout
    got = [orjson.loads(line) for line in (tmp_path / "out.jsonl").read_bytes().splitlines()]
    assert [(g["card"], int(g["ts"])) for g in got] == rows
    for g in got:
        want = _as_of(events, g["card"], int(g["ts"]))
        assert {k: g[k] for k in want} == want, g

    as_csv = cli(*backfill, "--out", str(tmp_path / "out.csv"), "--quiet")
    assert as_csv.returncode == 0, as_csv.stderr
    with (tmp_path / "out.csv").open() as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == ["card", "ts", "n", "spend", "avg", "top", "merchants", "last"]
    assert len(table) == len(rows)


def test_backfill_reads_and_writes_parquet_with_timestamp_columns(tmp_path: Path) -> None:
    """Rows as Parquet, the time a Parquet timestamp (UTC instants): the same features as from CSV."""
    import datetime

    import pyarrow
    import pyarrow.parquet

    events = [{"card": c, "ts": 1_000 * i, "amount": i, "merchant": "x"} for i, c in enumerate("abcabcabc")]
    log = EmbeddedLog(tmp_path / "log")
    log.create_topic(TopicConfig("tx", 2))
    log.producer("tx").send_many([orjson.dumps(e) for e in events], [0] * len(events), partition=0)
    log.close()
    at = [("a", 3_500), ("b", 9_000), ("z", 9_000)]
    stamps = [datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC) for _, ms in at]
    table = pyarrow.table({"card": [c for c, _ in at], "timestamp": pyarrow.array(stamps, pyarrow.timestamp("ms"))})
    pyarrow.parquet.write_table(table, tmp_path / "rows.parquet")
    (tmp_path / "rows.csv").write_text("card,ts\n" + "".join(f"{c},{ms}\n" for c, ms in at))
    where = ["--log-dir", str(tmp_path / "log"), "--quiet"]
    for rows, out in (("rows.parquet", "out.parquet"), ("rows.csv", "out.jsonl")):
        done = cli(
            "backfill", APP, "--view", "card", "--at", str(tmp_path / rows), "--out", str(tmp_path / out), *where
        )
        assert done.returncode == 0, done.stderr
    got = pyarrow.parquet.read_table(tmp_path / "out.parquet").to_pylist()
    want = [orjson.loads(line) for line in (tmp_path / "out.jsonl").read_bytes().splitlines()]
    features = ["n", "spend", "avg", "top", "merchants", "last"]
    assert [{k: g[k] for k in ["card", *features]} for g in got] == [
        {k: w[k] for k in ["card", *features]} for w in want
    ]
    assert [g["n"] for g in got] == [2, 3, 0]  # a at 3.5 s: events 0 and 3; b at 9 s: 1, 4, 7; z: none


def test_backfill_rows_that_cannot_be_read_are_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "rows.jsonl").write_text('{"card": "a", "ts": "yesterday"}\n')
    (tmp_path / "list.jsonl").write_text('["a", 1]\n')
    for rows, message in (
        ("missing.csv", "does not exist"),
        ("list.jsonl", "every line must be a JSON object"),
        ("rows.jsonl", "row 1: expected epoch milliseconds or an ISO datetime"),
    ):
        done = cli("backfill", APP, "--view", "card", "--at", str(tmp_path / rows), "--out", str(tmp_path / "o.csv"))
        assert done.returncode == 2 and message in done.stderr, (rows, done.stderr)


def test_backfill_reads_a_view_that_sits_after_a_model(tmp_path: Path) -> None:
    """The fraud app's decisions view is fed by the model and the rules: backfill runs them as live."""
    start = fraud_log(tmp_path, seed=3, cards=50, ticks=20, per_tick=10, tick_ms=500)
    (tmp_path / "rows.csv").write_text(f"entity,timestamp\nc1,{start + 9_000}\nc2,{start + 60_000}\n")
    app = str(ROOT / "apps" / "fraud" / "app.py")
    out = tmp_path / "out.jsonl"
    done = cli(
        "backfill",
        app,
        "--view",
        "card_decisions",
        "--at",
        str(tmp_path / "rows.csv"),
        "--out",
        str(out),
        "--log-dir",
        str(tmp_path / "log"),
    )
    assert done.returncode == 0, done.stderr
    got = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [g["card"] for g in got] == ["c1", "c2"]
    assert all(g["last_decision"] in ("approve", "review", "decline") for g in got)
    assert all(g["declines_60m"] >= 0 for g in got)


def test_parity_the_live_fraud_app_serves_what_a_replay_to_its_position_computes(tmp_path: Path) -> None:
    fraud_log(tmp_path, seed=5, cards=300, ticks=30, per_tick=20, tick_ms=200)
    app = str(ROOT / "apps" / "fraud" / "app.py")
    proc, url = live_worker(app, tmp_path)
    try:
        for view in ("card", "card_decisions"):
            checked = cli(
                "backfill", app, "--view", view, "--parity", url, "--log-dir", str(tmp_path / "log"), "--quiet"
            )
            assert checked.returncode == 0, checked.stdout + checked.stderr
            assert "MISMATCH" not in checked.stdout and " 0 mismatches" in checked.stdout
            entities = int(checked.stdout.split(" entities")[0].rsplit(" ", 1)[-1].replace(",", ""))
            assert entities >= 250, checked.stdout  # about every card
    finally:
        stop_worker(proc)


def test_parity_reports_a_worker_that_serves_other_definitions(tmp_path: Path) -> None:
    events = [{"card": c, "ts": 1_000 * i, "amount": i, "merchant": "x"} for i, c in enumerate("abcabcabcabcabc")]
    log = EmbeddedLog(tmp_path / "log")
    log.create_topic(TopicConfig("tx", 2))
    log.producer("tx").send_many([orjson.dumps(e) for e in events], [0] * len(events), partition=0)
    log.close()
    proc, url = live_worker(APP, tmp_path, STREAMCORE_TEST_OVER="5000")  # 5 s windows live, 10 s in the definitions
    try:
        checked = cli("backfill", APP, "--view", "card", "--parity", url, "--log-dir", str(tmp_path / "log"))
    finally:
        stop_worker(proc)
    assert checked.returncode == 1 and "MISMATCH a n: live 2, replayed 3" in checked.stdout, checked.stdout
