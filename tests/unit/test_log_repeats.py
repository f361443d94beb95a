"""`Repeats`: a library's repeated log message goes through once per interval, others always."""

from __future__ import annotations

import logging

import pytest

from streamcore.cli.log_repeats import Repeats


def _record(name: str, msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, None)


def test_a_repeated_template_passes_once_per_interval_and_other_loggers_always(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr("streamcore.cli.log_repeats.time.monotonic", lambda: clock[0])
    repeats = Repeats("aiokafka", every_s=10.0)
    connect = "Unable connect to node with id %s: %s"
    assert repeats.filter(_record("aiokafka", connect, 1, "refused"))
    assert not repeats.filter(_record("aiokafka", connect, 1, "refused again"))  # same template: dropped
    assert repeats.filter(_record("aiokafka.consumer.fetcher", connect, 1, "x"))  # another logger: its own
    assert repeats.filter(_record("aiokafka", "Unable to update metadata from %s", [1]))
    assert all(repeats.filter(_record("streamcore.runner", "broker unreachable")) for _ in range(3))
    clock[0] += 10.0
    assert repeats.filter(_record("aiokafka", connect, 1, "refused"))  # the interval passed
