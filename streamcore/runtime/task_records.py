"""The task's hot loops: every record of a batch, decoded and run through the pipeline.

`RecordLoops` is the part of `streamcore.runtime.task.Task` that applies a fetched
batch, in the order of the contract (``docs/semantics.md``): decode the JSON value
(``decode``), check it is an object with an integer event time in 0 .. 2**62 and a key
of valid Unicode (``schema``), run the pipeline (the first stateful operator checks the
future skew), write late events aside, and let a later event time move the watermark.

Two loops do this. `_apply_records` decodes each record with orjson and calls the
pipeline's head, one call per record and no object per record beyond the decoded
event. `_apply_spans` hands runs of records to a compiled first operator (`RawScan`),
which applies them straight from their bytes and returns only for a record that needs the
task: one it cannot read (`_apply_records` takes it, in its place), a late one, or one
that may move the watermark. One event is completely applied before the next starts,
so readers on the same event loop never see half of it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from streamcore.base.decoding import bad_key, bad_timestamp, decode_strict, valid_unicode
from streamcore.base.errors import RecordError
from streamcore.base.records import Headers, Record, RecordBatch, Span
from streamcore.dataflow.operator import FILTERED, LATE, SCAN_ARRIVAL, SCAN_DONE, SCAN_LATE, SCAN_SLOW, Emit, RawScan
from streamcore.eventtime.watermarks import WatermarkTracker
from streamcore.runtime.counters import TaskCounters
from streamcore.runtime.repartition import INTERNAL_HEADERS
from streamcore.runtime.set_aside import error_text

MAX_TIMESTAMP = 2**62
"""Largest accepted event time (epoch ms, about the year 146 million): window bounds stay in 64 bits."""


class RecordLoops:
    """The record loops of a `Task` (a mixin: the task sets these attributes)."""

    counters: TaskCounters
    positions: dict[int, int]
    tracker: WatermarkTracker
    tracks_arrivals: bool
    tracks_records: bool
    """A step asked for each record's metadata (`current_record`)."""
    current_batch: RecordBatch | None
    current_index: int
    _record_batch: RecordBatch | None
    """The batch whose record `current_index` is being run through the pipeline; None
    between records and while windows fire (their results come from many records)."""
    _head: Emit
    _raw_scan: RawScan | None
    _ts_field: str | None
    _key_field: str | None
    _future_skew: int | None
    _future_limit: float
    _dead_letter: Callable[[RecordBatch, int, int, str, str], None]
    """`SetAside.dead_letter`: ``(batch, index, at, reason, error)``."""
    _write_late: Callable[[RecordBatch, int, int, int], None]
    """`SetAside.late`: ``(batch, index, at, ts)``."""
    _fire: Callable[[], None]
    """Every operator learns the new watermark (`Task._fire`)."""

    def _apply(self, batch: RecordBatch, at: int) -> None:
        """Run every record of `batch` through the pipeline (the hot loop)."""
        n = len(batch.values)
        if self._raw_scan is not None:
            self._apply_spans([(batch, 0, n)], at, arrivals=False)
            return
        p = batch.partition
        counters = self.counters
        counters.records_in += n
        by_partition = counters.records_in_by_partition
        by_partition[p] = by_partition.get(p, 0) + n
        if self._ts_field is None:
            self._process_without_event_time(batch, at)
            return
        self.current_batch = batch
        if self._future_skew is not None:
            self._future_limit = at + self._future_skew
        dead_before = counters.dead_letter_total
        filtered, late = self._apply_records(batch, at, 0, n)
        counters.accepted += n - filtered - late - (counters.dead_letter_total - dead_before)
        counters.filtered += filtered
        counters.late += late

    def _apply_records(self, batch: RecordBatch, at: int, begin: int, end: int) -> tuple[int, int]:
        """Records `begin` .. `end` - 1 of `batch`, decoded one by one: (filtered, late)."""
        p = batch.partition
        tracker = self.tracker
        ts_field = self._ts_field
        track = self.tracks_arrivals or self.tracks_records or batch.headers is not None
        head = self._head
        key_field = self._key_field
        observe = tracker.observe
        moves_watermark = tracker.moves_above(p)  # only a later event time can move this partition's watermark
        loads = orjson.loads
        decode_error = orjson.JSONDecodeError
        filtered = late = 0
        values = batch.values
        self._record_batch = batch if track else None
        for i in range(begin, end):
            try:
                event = loads(values[i])
            except decode_error:
                event = self._decode_fallback(batch, i, at)
                if event is None:
                    continue
            if type(event) is not dict:
                self._dead_letter(batch, i, at, "schema", f"expected a JSON object, got {type(event).__name__}")
                continue
            ts = event.get(ts_field)
            if type(ts) is not int or not 0 <= ts <= MAX_TIMESTAMP:
                self._dead_letter(batch, i, at, "schema", bad_timestamp(self._ts_field, ts))
                continue
            if track:
                self.current_index = i
            key = None
            if key_field is not None:
                key = event.get(key_field)
                if type(key) is not str:
                    self._dead_letter(batch, i, at, "schema", bad_key(key_field, key))
                    continue
            try:
                status = head(key, event, ts)
            except RecordError as exc:
                self._dead_letter(batch, i, at, exc.reason, str(exc))
                continue
            except Exception as exc:  # noqa: BLE001 - user code: dead-letter the record, keep going
                self._dead_letter(batch, i, at, "operator_error", error_text(exc))
                continue
            if status is not None:  # None: accepted, by far the most common
                if status is LATE:
                    late += 1
                    self._write_late(batch, i, at, ts)
                elif status is FILTERED:
                    filtered += 1
            if ts > moves_watermark:
                if observe(p, ts):
                    self._fire()
                moves_watermark = tracker.moves_above(p)
        self._record_batch = None
        return filtered, late

    # -- the record in hand, for outputs and steps that ask ------------------------------------
    def current_headers(self) -> Headers:
        """The headers of the record being run through the pipeline, for the outputs it makes
        (trace propagation); none for window results, and without streamcore's own."""
        batch = self._record_batch
        if batch is None or batch.headers is None:
            return ()
        headers = batch.headers[self.current_index]
        return tuple(h for h in headers if h[0] not in INTERNAL_HEADERS) if headers else ()

    def current_record(self) -> Record | None:
        """The record being run through the pipeline (its value still the raw bytes); None for
        window results."""
        batch = self._record_batch
        return None if batch is None else batch.record(self.current_index)

    def _apply_spans(self, spans: list[Span], at: int, *, arrivals: bool) -> None:
        """The hot loop on a compiled first operator, over runs of one or more partitions.

        The operator's `RawScan` applies records from their bytes, run after run, and
        returns to the task only for what needs it: a partition's first run (with
        `arrivals`, its arrival is noted then, as `Task.process_batch` does for each batch;
        again would change nothing: every run arrived at `at`), a record it cannot read
        (`_apply_records` runs it, in its place), a late one, or one that may move the
        watermark W (a partition above W only raises its own watermark, which the kernel
        does itself). The counters and, with `arrivals`, the positions are added up once.
        """
        scan = self._raw_scan
        assert scan is not None
        counters = self.counters
        tracker = self.tracker
        if self._future_skew is not None:
            self._future_limit = at + self._future_skew
        future_limit = self._future_limit
        arrived: set[int] = set() if arrivals else {batch.partition for batch, _, _ in spans}
        dead_before = counters.dead_letter_total
        filtered = late = 0
        k, i = 0, (spans[0][1] if spans else 0)
        while True:
            k, i, outcome, ts = scan(spans, k, i, future_limit, tracker, arrived)
            if outcome == SCAN_DONE:
                break
            batch = spans[k][0]
            p = batch.partition
            if outcome == SCAN_ARRIVAL:
                arrived.add(p)
                if tracker.on_arrival(p, at):
                    self._fire()
                continue
            if outcome == SCAN_SLOW:
                one_filtered, one_late = self._apply_records(batch, at, i, i + 1)
                filtered += one_filtered
                late += one_late
            else:
                if outcome == SCAN_LATE:
                    late += 1
                    self._write_late(batch, i, at, ts)
                if tracker.observe(p, ts):
                    self._fire()
            i += 1
        records = 0
        by_partition = counters.records_in_by_partition
        positions = self.positions
        for batch, start, stop in spans:
            p = batch.partition
            records += stop - start
            by_partition[p] = by_partition.get(p, 0) + stop - start
            if arrivals:
                positions[p] = batch.base_offset + stop
        counters.records_in += records
        counters.accepted += records - filtered - late - (counters.dead_letter_total - dead_before)
        counters.filtered += filtered
        counters.late += late

    def _process_without_event_time(self, batch: RecordBatch, at: int) -> None:
        head = self._head
        loads = orjson.loads
        stamps = batch.timestamps
        track = self.tracks_arrivals or self.tracks_records or batch.headers is not None
        self.current_batch = batch
        self._record_batch = batch if track else None
        for i, raw in enumerate(batch.values):
            try:
                event = loads(raw)
            except orjson.JSONDecodeError:
                event = self._decode_fallback(batch, i, at)
                if event is None:
                    continue
            if track:
                self.current_index = i
            try:
                status = head(None, event, stamps[i])
            except RecordError as exc:
                self._dead_letter(batch, i, at, exc.reason, str(exc))
                continue
            except Exception as exc:  # noqa: BLE001
                self._dead_letter(batch, i, at, "operator_error", error_text(exc))
                continue
            if status is FILTERED:
                self.counters.filtered += 1
            else:
                self.counters.accepted += 1
        self._record_batch = None

    def _decode_fallback(self, batch: RecordBatch, i: int, at: int) -> Any:
        """orjson refused the bytes: dead-letter them unless they are JSON after all.

        Such JSON is a number orjson cannot hold (``1e400``) or a string with an unpaired
        surrogate (``"\\ud800"``): fine in an ordinary field, but a key must be valid
        Unicode (``schema``). orjson never returns such a string, so only here is it checked.
        """
        try:
            event = decode_strict(batch.values[i])
        except (ValueError, RecursionError) as exc:
            self._dead_letter(batch, i, at, "decode", f"not valid JSON: {exc}")
            return None
        key_field = self._key_field
        if key_field is not None and type(event) is dict:
            key = event.get(key_field)
            if type(key) is str and not valid_unicode(key):
                self._dead_letter(batch, i, at, "schema", f"key field {key_field!r} is not valid Unicode: {key!r}")
                return None
        return event
