"""``streamcore backfill``: a view's features as of each row's time, from the log, with nothing later leaking in."""

from __future__ import annotations

import csv
import random
from pathlib import Path
from typing import Any

import orjson
from cli_checks import cli

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

    done = cli(
        "backfill",
        APP,
        "--view",
        "card",
        "--at",
        str(tmp_path / "rows.csv"),
        "--out",
        str(tmp_path / "out.jsonl"),
        "--log-dir",
        str(tmp_path / "log"),
    )
    assert done.returncode == 0, done.stderr
    assert f"{len(rows)} rows of 6 features of view 'card'" in done.stdout
    got = [orjson.loads(line) for line in (tmp_path / "out.jsonl").read_bytes().splitlines()]
    assert [(g["card"], int(g["ts"])) for g in got] == rows
    for g in got:
        want = _as_of(events, g["card"], int(g["ts"]))
        assert {k: g[k] for k in want} == want, g

    as_csv = cli(
        "backfill",
        APP,
        "--view",
        "card",
        "--at",
        str(tmp_path / "rows.csv"),
        "--out",
        str(tmp_path / "out.csv"),
        "--log-dir",
        str(tmp_path / "log"),
        "--quiet",
    )
    assert as_csv.returncode == 0, as_csv.stderr
    with (tmp_path / "out.csv").open() as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == ["card", "ts", "n", "spend", "avg", "top", "merchants", "last"]
    assert len(table) == len(rows)


def test_backfill_reads_a_view_that_sits_after_a_model(tmp_path: Path) -> None:
    """The fraud app's decisions view is fed by the model and the rules: backfill runs them as live."""
    from streamcore.apps.fraud.generate import TransactionGenerator

    generator = TransactionGenerator(seed=3, cards=50)
    log = EmbeddedLog(tmp_path / "log")
    log.create_topic(TopicConfig("transactions", 4))
    start = 1_767_225_600_000
    for i in range(20):
        for p in range(4):
            batch = generator.batch(start + 500 * i, 10, p)
            log.producer("transactions").send_many(batch, [start + 500 * i] * len(batch), partition=p)
    log.close()
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
