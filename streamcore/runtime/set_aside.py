"""Dead-letter and late records of a task: the original bytes, where they came from, and why.

`SetAside` writes them with the envelope of `streamcore.base.deadletter`; after a
repartition the source position is the one the event entered by, not the
repartition topic's. It also builds the `fail` callbacks that dead-letter a result an
operator or a later step could not produce.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

from streamcore.base.clock import Clock
from streamcore.base.codec import encode_output
from streamcore.base.deadletter import LATE_REASON, REPLAYED_FROM, envelope_headers
from streamcore.base.records import RecordBatch
from streamcore.dataflow.stream import Pipeline
from streamcore.io.transport import Sink
from streamcore.runtime.counters import TaskCounters
from streamcore.runtime.nodes import key_bytes
from streamcore.runtime.repartition import source_position


def error_text(exc: BaseException) -> str:
    frame = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" (at {frame[0].filename}:{frame[0].lineno})" if frame else ""
    return f"{type(exc).__name__}: {exc}{where}"


class SetAside:
    """Writes a task's dead letters and late records."""

    def __init__(
        self,
        *,
        pipeline: Pipeline,
        app_name: str,
        app_version: str,
        clock: Clock,
        counters: TaskCounters,
        dead_letters: Sink,
        late: Sink,
        watermark: Callable[[], float],
    ) -> None:
        self.pipeline = pipeline
        self.app_name = app_name
        self.app_version = app_version
        self.clock = clock
        self.counters = counters
        self.dead_letters = dead_letters
        self.late_sink = late
        self.watermark = watermark
        self._step_label = pipeline.name

    def fail_output_of(self, step: str) -> Callable[[Any, Any, int, BaseException], None]:
        def fail(key: Any, value: Any, ts: int, exc: BaseException) -> None:
            try:
                raw = encode_output(value)
            except (TypeError, ValueError):
                raw = repr(value).encode("utf-8", "backslashreplace")
            self.counters.output_errors += 1
            self._write_dead_letter(
                self.dead_letters,
                "operator_error",
                error_text(exc),
                key_bytes(key),
                raw,
                f"{self.pipeline.name}:{step}",
                -1,
                -1,
                ts,
                step,
            )

        return fail

    def dead_letter(self, batch: RecordBatch, i: int, at: int, reason: str, error: str) -> None:
        counts = self.counters.dead_lettered
        counts[reason] = counts.get(reason, 0) + 1
        self.counters.dead_letter_total += 1
        self._set_aside(self.dead_letters, reason, error, batch, i, at)

    def late(self, batch: RecordBatch, i: int, at: int, ts: int) -> None:
        error = f"event time {ts} is too late for all its windows (watermark {self.watermark()})"
        self._set_aside(self.late_sink, LATE_REASON, error, batch, i, at)

    def _set_aside(self, sink: Sink, reason: str, error: str, batch: RecordBatch, i: int, at: int) -> None:
        """Write record `i` of `batch` to the dead-letter or late topic, with its source position.

        After a repartition that is the position in the topic the event entered by
        (from its `streamcore.runtime.repartition.SOURCE_HEADER`), not in the repartition topic.
        """
        topic, partition, offset = batch.topic, batch.partition, batch.base_offset + i
        headers = batch.header_list(i)
        origin = self.pipeline.repartitioned_from
        if origin is not None and (position := source_position(headers)) is not None:
            topic = origin.name
            partition, offset = position
        self._write_dead_letter(
            sink,
            reason,
            error,
            batch.key(i),
            batch.values[i],
            topic,
            partition,
            offset,
            batch.timestamps[i],
            self._step_label,
            at,
            next((value for name, value in headers if name == REPLAYED_FROM), None),
        )

    def _write_dead_letter(
        self,
        sink: Sink,
        reason: str,
        error: str,
        key: bytes | None,
        value: bytes,
        topic: str,
        partition: int,
        offset: int,
        timestamp: int,
        step: str,
        at: int | None = None,
        replayed_from: bytes | None = None,
    ) -> None:
        headers = envelope_headers(
            reason=reason,
            error=error,
            topic=topic,
            partition=partition,
            offset=offset,
            timestamp=timestamp,
            time_ms=self.clock.now_ms() if at is None else at,
            app=self.app_name,
            app_version=self.app_version,
            step=step,
            replayed_from=replayed_from,
        )
        sink.add(key, value, timestamp, headers)
