"""State written by an earlier build (tests/fixtures/state_v1) must still restore and finish correctly.

If this fails after a change to how operators store state, bump that operator's
``state_version`` (old checkpoints are then refused with a clear error) instead of
reading old bytes wrongly; regenerate the fixture with tests/fixtures/make_state_v1.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
from fixtures.compat_app import build, events
from fixtures.make_state_v1 import append
from helpers import run, table

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "state_v1"


def test_a_v1_checkpoint_resumes_to_the_same_results(tmp_path: Path) -> None:
    work = tmp_path / "work"
    shutil.copytree(FIXTURE, work)
    append(work, events()[1_000:], 1_000)
    status = run(build(), work)
    assert all(t.counters.records_in == 1_000 for t in status.tasks)  # resumed after the checkpoint
    expected = orjson.loads((FIXTURE / "expected.json").read_bytes())
    for name, windows in expected.items():
        got = sorted([list(k), v] for k, v in table(work, f"out-{name}").items())
        assert [w[0] for w in got] == [w[0] for w in windows]
        for (_, value), (_, want) in zip(got, windows, strict=True):
            assert value["n"] == want["n"] and abs(value["total"] - want["total"]) < 1e-9
