"""SIGTERM drains and checkpoints: a restarted worker resumes where the stopped one ended."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from helpers import produce, table

from streamcore.base.deadletter import DeadLetter
from streamcore.io.log import EmbeddedLog
from streamcore.testing import cli_command

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "apps" / "payments" / "app.py"


def start(tmp_path: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        cli_command(
            "run",
            str(APP),
            "--log-dir",
            str(tmp_path / "log"),
            "--state-dir",
            str(tmp_path / "state"),
            "--progress-every",
            "0.2",
            *extra,
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigterm_checkpoints_and_restart_processes_each_record_once(tmp_path: Path) -> None:
    payments = [{"card": f"c{i % 7}", "merchant": "m1", "amount": 1.0, "ts": 1_000 + i} for i in range(3_000)]
    produce(tmp_path, "payments", payments[:2_000], partitions=4, key="card")
    worker = start(tmp_path)
    deadline = time.monotonic() + 30
    while "in     2,000" not in (worker.stderr.readline() if worker.stderr else "") and time.monotonic() < deadline:
        pass  # wait until the worker has read everything there is
    os.kill(worker.pid, signal.SIGTERM)
    _, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
    assert "(SIGTERM)" in err  # drained and stopped by the signal, not killed

    produce(tmp_path, "payments", payments[2_000:], partitions=4, key="card")
    rerun = start(tmp_path, "--until-end", "--quiet")
    _, err = rerun.communicate(timeout=60)
    assert rerun.returncode == 0, err
    assert "records in           1,000" in err  # only the new records: the first run checkpointed on SIGTERM
    windows = table(tmp_path, "card-spend")
    assert sum(w["payments"] for w in windows.values()) == 3_000  # every payment counted exactly once
    assert [DeadLetter.from_record(r) for r in EmbeddedLog(tmp_path / "log").read_all("payments-dlq")] == []
