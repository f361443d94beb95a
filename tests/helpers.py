"""Small helpers for tests that run apps on a real embedded log and RocksDB state."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
from streamcore.operators import Count, FeatureView, Latest, Rolling, Sum

from streamcore import App, Runner, RunSettings, RunStatus
from streamcore.base.deadletter import DeadLetter
from streamcore.io.log import EmbeddedLog, TopicConfig
from streamcore.testing import results_table

CARD_VIEW = FeatureView(
    "card",
    entity="card",
    features={
        "n": Rolling(Count(), over="1h", pane="1m"),
        "spend": Rolling(Sum("amount"), over="1h", pane="1m"),
        "last": Latest("amount"),
    },
)
"""A small view of card transactions, shared by the model and serving tests."""


def settings(tmp_path: Path, **overrides: Any) -> RunSettings:
    options: dict[str, Any] = {"until_end": True, **overrides}
    return RunSettings(state_dir=tmp_path / "state", broker=f"embedded:{tmp_path / 'log'}", **options)


def produce(
    tmp_path: Path,
    topic: str,
    lines: Iterable[bytes | dict[str, Any]],
    partitions: int = 1,
    partition: int | None = None,
    key: str | None = None,
) -> None:
    log = EmbeddedLog(tmp_path / "log")
    log.create_topic(TopicConfig(topic, partitions))
    values = [line if isinstance(line, bytes) else orjson.dumps(line) for line in lines]
    keys = None
    if key is not None:
        keys = [str(orjson.loads(v).get(key)).encode() if v.startswith(b"{") else None for v in values]
    log.producer(topic).send_many(values, [0] * len(values), keys, partition=partition)
    log.close()


def run(app: App, tmp_path: Path, **overrides: Any) -> RunStatus:
    return asyncio.run(Runner(app, settings(tmp_path, **overrides), handle_signals=False).run())


def table(tmp_path: Path, topic: str) -> dict[tuple[str, int, int], dict[str, Any]]:
    return results_table(EmbeddedLog(tmp_path / "log").read_all(topic))


def dead_letters(tmp_path: Path, topic: str) -> list[DeadLetter]:
    return [DeadLetter.from_record(r) for r in EmbeddedLog(tmp_path / "log").read_all(topic)]


def use_python_references(monkeypatch: Any) -> None:
    """Run on the compiled kernels' Python references, as ``STREAMCORE_PURE_PYTHON=1`` would
    (that switch is read once, at import): frame splitting, the window and feature kernels."""
    from streamcore.operators import compiled_windows, features

    from streamcore.io.log import format as frame_format
    from streamcore.io.log import split

    monkeypatch.setattr(frame_format, "fast_split_values", split.split_values)
    monkeypatch.setattr(frame_format, "fast_split_keys", split.split_keys)
    monkeypatch.setattr(compiled_windows, "_kernel", None)
    monkeypatch.setattr(features, "_kernel", None)


class RecordingContext:
    """An operator context for driving one operator by hand: records what it emits
    (each value as its repr, so 1 and 1.0 differ) and admits every event."""

    def __init__(self) -> None:
        self.emitted: list[tuple[Any, str, int]] = []

    def emit(self, key: Any, value: Any, ts: int) -> None:
        self.emitted.append((key, repr(value), ts))

    @staticmethod
    def admit(ts: int) -> None:
        return None

    def fail_output(self, key: Any, value: Any, ts: int, error: BaseException) -> None:
        raise AssertionError(f"no result may fail here: {error}")
