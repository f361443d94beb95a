"""A worker whose broker vanishes: /health says so, and SIGTERM still stops it in bounded time.

This test kills its broker, so it starts one of its own instead of the session's.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from streamcore.testing import free_port, start_tansu
from tests.integration.conftest import Worker, create_topic, produce, run, window_events

pytestmark = pytest.mark.integration


def _health(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def _until(condition: object, timeout_s: float) -> float:
    """Seconds until `condition()` held; fails after `timeout_s`."""
    started = time.monotonic()
    while not condition():  # type: ignore[operator]
        assert time.monotonic() - started < timeout_s, f"not within {timeout_s} s"
        time.sleep(0.1)
    return time.monotonic() - started


def test_a_worker_whose_broker_vanished_turns_not_ready_and_stops_on_sigterm(tmp_path: Path) -> None:
    broker, bootstrap = start_tansu()
    worker = None
    try:
        name = f"b{uuid.uuid4().hex[:8]}"
        run(create_topic(bootstrap, f"{name}-events", 4))
        run(create_topic(bootstrap, f"{name}-totals", 1))
        run(produce(bootstrap, f"{name}-events", window_events(keys=5, per_key=10)))
        port = free_port()
        worker = Worker(bootstrap, name, tmp_path / "w1", http_port=port)
        _until(lambda: _health(port) == 200, 60)

        broker.kill()
        broker.wait(10)
        noticed_s = _until(lambda: _health(port) == 503, 10)  # not ready: it cannot reach its broker

        stop_started = time.monotonic()
        worker.proc.send_signal(15)
        worker.proc.wait(60)
        stop_s = time.monotonic() - stop_started
        assert stop_s < 30, stop_s  # bounded by the stop timeout (20 s), not hung on the broker
        assert "broker unreachable" in worker.log.read_text()
        print(f"not ready {noticed_s:.1f} s after the broker died; stopped {stop_s:.1f} s after SIGTERM")
    finally:
        if worker is not None and worker.proc.poll() is None:
            worker.kill()
        if broker.poll() is None:
            broker.kill()
