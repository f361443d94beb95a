"""Live workers for tests: `streamcore run --http` as a real process, and the fraud app's input."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from streamcore.io.log import EmbeddedLog, TopicConfig
from streamcore.testing import cli_command, free_port


def live_worker(app: str, tmp_path: Path, *args: str, **env: str) -> tuple[subprocess.Popen[bytes], str]:
    """`streamcore run APP --http [ARGS]` over the test's log (no end of input), once its /health says ready."""
    port = free_port()
    proc = subprocess.Popen(
        cli_command(
            "run",
            app,
            "--log-dir",
            str(tmp_path / "log"),
            "--state-dir",
            str(tmp_path / "live"),
            "--http",
            f"127.0.0.1:{port}",
            "--quiet",
            *args,
        ),
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
                if response.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("the live worker did not become ready")


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)


def fraud_log(tmp_path: Path, *, seed: int, cards: int, ticks: int, per_tick: int, tick_ms: int) -> int:
    """The fraud app's input: `ticks` appends of `per_tick` transactions per partition; returns the first time."""
    from streamcore.apps.fraud.generate import TransactionGenerator

    generator = TransactionGenerator(seed=seed, cards=cards)
    log = EmbeddedLog(tmp_path / "log")
    log.create_topic(TopicConfig("transactions", 4))
    start = 1_767_225_600_000
    for i in range(ticks):
        for p in range(4):
            batch = generator.batch(start + tick_ms * i, per_tick, p)
            log.producer("transactions").send_many(batch, [start + tick_ms * i] * len(batch), partition=p)
    log.close()
    return start
