"""A real worker process is killed with SIGKILL mid-stream and restarted; results must not change."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from chaos.scenarios.kill9 import run_with_kills
from chaos.workload import differences, generate, outcome, prepare, uninterrupted

pytestmark = pytest.mark.slow


def test_kill_9_and_restart_gives_the_uninterrupted_results(tmp_path: Path) -> None:
    lines = generate(200_000, seed=11)
    reference, chaotic = tmp_path / "reference", tmp_path / "chaotic"
    prepare(reference, lines)
    prepare(chaotic, lines)
    run_s = uninterrupted(reference)

    landed = run_with_kills(chaotic, kills=2, rnd=random.Random(5), run_s=run_s)

    assert landed >= 1, "the worker finished before it could be killed: make the input larger"
    expected, got = outcome(reference), outcome(chaotic)
    assert len(expected["totals"]) > 1_000 and expected["late"] and expected["dlq"]
    assert differences(expected, got) == []
