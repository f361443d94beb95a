"""Same input, same output, bit for bit, with or without a restart in between."""

from __future__ import annotations

from pathlib import Path

import orjson
from helpers import produce, run, table
from streamcore.operators import Session, Sum

from streamcore import App, EventTime


def session_app() -> App:
    app = App("sessions")
    (
        app.stream(app.topic("in"), event_time=EventTime("ts", max_out_of_orderness=100))
        .key_by("k")
        .window(Session(15))
        .aggregate(total=Sum("v"))
        .to(app.topic("out"))
    )
    return app


# Sessions [20, 35) and [0, 15), created in that order, then an event that bridges both.
# Floats combine differently by order: (1 + 1e16) + 1 == 1e16, but (1 + 1) + 1e16 == 1e16 + 2.
BEFORE = [{"k": "a", "ts": 20, "v": 1e16}, {"k": "a", "ts": 0, "v": 1.0}]
BRIDGE = {"k": "a", "ts": 12, "v": 1.0}


def test_a_session_merge_after_a_restore_adds_floats_in_the_order_of_an_uninterrupted_run(tmp_path: Path) -> None:
    """Restored sessions come back sorted by start; a live run's were in creation order."""
    whole = tmp_path / "whole"
    produce(whole, "in", [*BEFORE, BRIDGE])
    run(session_app(), whole)

    restarted = tmp_path / "restarted"
    produce(restarted, "in", BEFORE)
    run(session_app(), restarted)  # checkpoints both sessions at the end
    produce(restarted, "in", [BRIDGE])
    run(session_app(), restarted)  # restores them, then merges

    merged = ("a", 0, 35)
    want, got = table(whole, "out")[merged]["total"], table(restarted, "out")[merged]["total"]
    assert orjson.dumps(got) == orjson.dumps(want) == b"1.0000000000000002e+16"
