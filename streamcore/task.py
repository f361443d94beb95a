"""A task runs one pipeline over the partitions of its source topic.

For every arrival, in this order (the contract of ``docs/semantics.md``):

1. the partition is active as of the arrival's processing time: recompute W, fire;
2. decode the JSON value (``decode``), check it is an object with an integer event
   time >= 0 (``schema``);
3. dead-letter events too far in the future (``future_timestamp``);
4. run the pipeline's steps; a stateful operator may report the event `LATE`
   (late output) or reject it (``schema`` / ``operator_error``);
5. an event that was not dead-lettered moves its partition's watermark; fire.

`process_batch` is the hot loop: one call per fetched batch, no coroutine and no
object per record beyond the decoded event itself. One event is completely applied
before the next one starts, so readers on the same event loop never see half of it.
"""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import orjson

from . import nodes
from .clock import Clock
from .codec import encode_output
from .deadletter import LATE_REASON, envelope_headers
from .decoding import decode_strict, describe_type, valid_unicode
from .errors import FutureTimestamp, IncompatibleState, RecordError
from .eventtime import WatermarkTracker
from .keyed_state import KeyedState
from .models import Model
from .nodes import CallbackSink, key_bytes
from .online import EntityStore, FeatureReader, OnlineState
from .operator import FILTERED, LATE, Emit, Operator, admit_any
from .records import RecordBatch
from .repartition import PartitionedSink, ProducerWatermarks, ShuffledInput, ShuffleWriter, source_position
from .state import CheckpointWrite, TaskStore
from .stream import FilterStep, KeyByStep, MapStep, OperatorStep, Pipeline, ScoreStep, ShuffleSink
from .transport import Sink

CHECKPOINT_FORMAT = 1
ENCODE_CHUNK = 32
"""Keyed entries a checkpoint step encodes between looks at the clock (a large entry takes ~10 µs)."""
MAX_TIMESTAMP = 2**62
"""Largest accepted event time (epoch ms, about the year 146 million): window bounds stay in 64 bits."""


@dataclass(slots=True)
class TaskCounters:
    """What happened to every input record; `accounted` must always equal `records_in`."""

    records_in: int = 0
    records_in_by_partition: dict[int, int] = field(default_factory=dict)
    accepted: int = 0
    filtered: int = 0
    late: int = 0
    dead_lettered: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    """Repartitioned input written again by a restarted producer, skipped (already applied)."""
    outputs: int = 0
    output_errors: int = 0
    checkpoints: int = 0
    last_checkpoint_ms: float = 0.0
    last_checkpoint_bytes: int = 0
    backpressure_s: float = 0.0
    """Time spent waiting for sinks to flush and checkpoints to commit."""

    @property
    def dead_letter_total(self) -> int:
        return sum(self.dead_lettered.values())

    @property
    def accounted(self) -> int:
        return self.accepted + self.filtered + self.late + self.dead_letter_total + self.duplicates


def _error_text(exc: BaseException) -> str:
    frame = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" (at {frame[0].filename}:{frame[0].lineno})" if frame else ""
    return f"{type(exc).__name__}: {exc}{where}"


class _Context:
    """What an operator may call back into: admit events, emit results, report failures, keyed state."""

    __slots__ = ("_namespace", "_task", "admit", "emit", "fail_output")

    def __init__(
        self,
        task: Task,
        namespace: str,
        emit: Emit,
        fail_output: Callable[[Any, Any, int, BaseException], None],
        admit: Callable[[int], None],
    ) -> None:
        self._task = task
        self._namespace = namespace
        self.emit = emit
        self.fail_output = fail_output
        self.admit = admit

    def keyed_state(self, name: str, *, capacity: int = 100_000) -> KeyedState:
        state = KeyedState(self._task.store, f"{self._namespace}/{name}", capacity=capacity)
        self._task.keyed_states.append(state)
        return state

    def entity_store(self, view: str, reader: FeatureReader, *, capacity: int = 100_000) -> EntityStore:
        task = self._task
        task.tracks_arrivals = True
        partition = task.partitions[0] if task.split_views else None
        keyed = self.keyed_state(f"view:{view}", capacity=capacity)
        return task.online.register(view, keyed, task.stream, reader, partition)


class TaskStream:
    """The task as the online state sees it (`streamcore.online.StreamInfo`)."""

    def __init__(self, task: Task) -> None:
        self._task = task

    @property
    def name(self) -> str:
        return self._task.pipeline.name

    def positions(self) -> dict[int, int]:
        return dict(self._task.positions)

    def watermark(self) -> float:
        return self._task.watermark

    def current_arrival(self) -> tuple[int, int, int]:
        batch, i = self._task.current_batch, self._task.current_index
        if batch is None:
            return -1, -1, 0
        return batch.partition, batch.base_offset + i, batch.timestamps[i]


class Task:
    """One pipeline over its source partitions, with its state store and sinks."""

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        app_name: str,
        app_version: str,
        partitions: tuple[int, ...],
        store: TaskStore,
        sink: Sink | CallbackSink,
        dead_letters: Sink,
        late: Sink,
        clock: Clock,
        online: OnlineState | None = None,
        models: Mapping[str, Model] | None = None,
        split_views: bool = False,
    ) -> None:
        """`split_views`: this task is one partition of its stream (Kafka), and its feature
        views hold that partition's entities only."""
        self.pipeline = pipeline
        self.split_views = split_views
        self.app_name = app_name
        self.app_version = app_version
        self.partitions = partitions
        self.store = store
        self.sink = sink
        self.dead_letters = dead_letters
        self.late_sink = late
        self.clock = clock
        self.counters = TaskCounters()
        self.positions: dict[int, int] = dict.fromkeys(partitions, 0)
        self.checkpoint_id = 0
        et = pipeline.event_time
        self.event_time = et
        idle_timeout_ms = et.idle_timeout_ms if et else None
        self._shuffled: ShuffledInput | None = None
        """Repartitioned input: the watermark comes from its producers' watermark records."""
        self.tracker: WatermarkTracker
        if pipeline.repartitioned_from is not None:
            producers = ProducerWatermarks(pipeline.repartitioned_from.partitions, idle_timeout_ms)
            self._shuffled = ShuffledInput(producers)
            self.tracker = producers
        else:
            self.tracker = WatermarkTracker(partitions, et.out_of_orderness_ms if et else 0, idle_timeout_ms)
        self._shuffle_writer: ShuffleWriter | None = None
        self._ts_field = et.field if et else None
        self._future_skew = et.max_future_skew_ms if et else None
        self._future_limit = math.inf  # processing time of the current batch + max_future_skew
        self._operators: list[tuple[str, Operator]] = []
        self.keyed_states: list[KeyedState] = []
        self.online = online if online is not None else OnlineState()
        self.models = dict(models or {})
        self.stream = TaskStream(self)
        self.tracks_arrivals = False  # set when a step needs to know the record being applied
        self.current_batch: RecordBatch | None = None
        self.current_index = 0
        self._ended = False
        self._head = self._build_chain()
        self._step_label = pipeline.name

    # -- building -----------------------------------------------------------
    def _build_chain(self) -> Emit:
        """Compose the steps into nested calls, sink first.

        Source events are admitted (future-skew check) by the first stateful operator,
        after it validated them, or just before the sink if there is none.
        """
        sink = self.sink
        emit: Emit
        if isinstance(sink, CallbackSink):
            emit = nodes.function_sink(sink, self.counters)
        elif isinstance(self.pipeline.sink, ShuffleSink):
            self.tracks_arrivals = True  # each shuffled event carries its source position
            et = self.event_time
            writer = ShuffleWriter(
                cast("PartitionedSink", sink),  # a KafkaSink: only Kafka tasks shuffle
                self.pipeline.sink,
                self.partitions[0],
                self.stream,
                et.idle_timeout_ms if et else None,
            )
            self._shuffle_writer = writer
            emit = nodes.counted(writer.emit, self.counters)
        else:
            emit = nodes.topic_sink(sink, self.counters)
        self._sink_emit = emit
        steps = self.pipeline.steps
        # A leading key_by(field) is run inline by the hot loop (operator chaining).
        self._key_field: str | None = None
        if steps and isinstance(steps[0], KeyByStep) and steps[0].field is not None and self._ts_field is not None:
            self._key_field = steps[0].field
            steps = steps[1:]
        first_operator = next((i for i, s in enumerate(steps) if isinstance(s, OperatorStep)), None)
        if first_operator is None and self._future_skew is not None:
            emit = nodes.admit(self._admit, emit)
        for index in range(len(steps) - 1, -1, -1):
            step = steps[index]
            if isinstance(step, MapStep):
                emit = nodes.map_values(step.fn, emit)
            elif isinstance(step, FilterStep):
                emit = nodes.filter_values(step.fn, emit)
            elif isinstance(step, KeyByStep):
                emit = nodes.key_by(step.field, step.fn, emit)
            elif isinstance(step, ScoreStep):
                emit = nodes.score(self.models[step.model], self.online, step.into, step.features_into, emit)
            elif isinstance(step, OperatorStep):
                spec = step.spec
                admit = self._admit if index == first_operator and self._future_skew is not None else admit_any
                namespace = f"{spec.name}@v{spec.state_version}"
                context = _Context(
                    self, namespace, self._guard(spec.name, emit), self._fail_output_of(spec.name), admit
                )
                operator = spec.build(context)
                self._operators.insert(0, (namespace, operator))
                emit = operator.process
        return emit

    def _admit(self, ts: int) -> None:
        if ts > self._future_limit:
            at = self._future_limit - (self._future_skew or 0)
            raise FutureTimestamp(f"event time {ts} is {ts - at} ms ahead of processing time {at}")

    def _guard(self, step: str, nxt: Emit) -> Emit:
        """Downstream of an operator: a failing step dead-letters that result, not the task."""
        fail = self._fail_output_of(step)
        if nxt is self._sink_emit and not isinstance(self.sink, CallbackSink):
            return nodes.guarded_topic_sink(self.sink, self.counters, fail)
        return nodes.guard(nxt, fail)

    def _fail_output_of(self, step: str) -> Callable[[Any, Any, int, BaseException], None]:
        def fail(key: Any, value: Any, ts: int, exc: BaseException) -> None:
            try:
                raw = encode_output(value)
            except (TypeError, ValueError):
                raw = repr(value).encode("utf-8", "backslashreplace")
            self.counters.output_errors += 1
            self._write_dead_letter(
                self.dead_letters,
                "operator_error",
                _error_text(exc),
                key_bytes(key),
                raw,
                f"{self.pipeline.name}:{step}",
                -1,
                -1,
                ts,
                step,
            )

        return fail

    # -- processing -----------------------------------------------------------
    def process_batch(self, batch: RecordBatch, at: int) -> None:
        """Process one fetched batch of one partition; all its records arrived at `at`."""
        p = batch.partition
        if self._shuffled is not None:
            skipped = self._shuffled.duplicates
            self._shuffled.process(batch, at, lambda run: self._apply(run, at), self._fire)
            skipped = self._shuffled.duplicates - skipped
            counters = self.counters
            counters.records_in += skipped
            counters.records_in_by_partition[p] = counters.records_in_by_partition.get(p, 0) + skipped
            counters.duplicates += skipped
        else:
            if self.tracker.on_arrival(p, at):
                self._fire()
            self._apply(batch, at)
        self.positions[p] = batch.next_offset
        if self._shuffle_writer is not None:
            self._shuffle_writer.after_batch(self.tracker.watermark, at)

    def _apply(self, batch: RecordBatch, at: int) -> None:
        """Run every record of `batch` through the pipeline (the hot loop)."""
        p = batch.partition
        tracker = self.tracker
        counters = self.counters
        n = len(batch.values)
        counters.records_in += n
        by_partition = counters.records_in_by_partition
        by_partition[p] = by_partition.get(p, 0) + n
        if self._ts_field is None:
            self._process_without_event_time(batch, at)
            return
        ts_field = self._ts_field
        track = self.tracks_arrivals
        self.current_batch = batch
        if self._future_skew is not None:
            self._future_limit = at + self._future_skew
        head = self._head
        key_field = self._key_field
        observe = tracker.observe
        moves_watermark = tracker.moves_above(p)  # only a later event time can move this partition's watermark
        loads = orjson.loads
        decode_error = orjson.JSONDecodeError
        filtered = late = 0
        dead_before = counters.dead_letter_total
        for i, raw in enumerate(batch.values):
            try:
                event = loads(raw)
            except decode_error:
                event = self._decode_fallback(batch, i, at)
                if event is None:
                    continue
            if type(event) is not dict:
                self._dead_letter(batch, i, at, "schema", f"expected a JSON object, got {type(event).__name__}")
                continue
            ts = event.get(ts_field)
            if type(ts) is not int or not 0 <= ts <= MAX_TIMESTAMP:
                self._dead_letter(batch, i, at, "schema", self._bad_timestamp(ts))
                continue
            if track:
                self.current_index = i
            key = None
            if key_field is not None:
                key = event.get(key_field)
                if type(key) is not str:
                    self._dead_letter(batch, i, at, "schema", self._bad_key(key))
                    continue
            try:
                status = head(key, event, ts)
            except RecordError as exc:
                self._dead_letter(batch, i, at, exc.reason, str(exc))
                continue
            except Exception as exc:  # noqa: BLE001 - user code: dead-letter the record, keep going
                self._dead_letter(batch, i, at, "operator_error", _error_text(exc))
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
        counters.accepted += n - filtered - late - (counters.dead_letter_total - dead_before)
        counters.filtered += filtered
        counters.late += late

    def _process_without_event_time(self, batch: RecordBatch, at: int) -> None:
        head = self._head
        loads = orjson.loads
        stamps = batch.timestamps
        track = self.tracks_arrivals
        self.current_batch = batch
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
                self._dead_letter(batch, i, at, "operator_error", _error_text(exc))
                continue
            if status is FILTERED:
                self.counters.filtered += 1
            else:
                self.counters.accepted += 1

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

    def _bad_key(self, key: Any) -> str:
        if key is None:
            return f"key field {self._key_field!r} is missing"
        return f"key field {self._key_field!r} is {describe_type(key)}, expected a string"

    def _bad_timestamp(self, ts: Any) -> str:
        name = self._ts_field
        if ts is None:
            return f"timestamp field {name!r} is missing"
        if type(ts) is int:
            return f"timestamp field {name!r} is {ts}, outside 0 .. 2**62 epoch ms"
        return f"timestamp field {name!r} is {type(ts).__name__}, expected an integer of epoch ms"

    def _fire(self) -> None:
        watermark = self.tracker.watermark
        for _, operator in self._operators:
            operator.on_watermark(watermark)

    def finish(self) -> None:
        """End of input: every window fires, as at W = +inf.

        State is kept and the watermark stays what it was, so the checkpoint taken next
        lets a later run over a grown log continue (revise, retract) instead of treating
        everything new as late.
        """
        for _, operator in self._operators:
            operator.on_end_of_input()
        self._ended = True

    @property
    def watermark(self) -> float:
        return self.tracker.watermark

    @property
    def ended(self) -> bool:
        return self._ended

    # -- dead letters and late records ------------------------------------------
    def _dead_letter(self, batch: RecordBatch, i: int, at: int, reason: str, error: str) -> None:
        counts = self.counters.dead_lettered
        counts[reason] = counts.get(reason, 0) + 1
        self._set_aside(self.dead_letters, reason, error, batch, i, at)

    def _write_late(self, batch: RecordBatch, i: int, at: int, ts: int) -> None:
        error = f"event time {ts} is too late for all its windows (watermark {self.tracker.watermark})"
        self._set_aside(self.late_sink, LATE_REASON, error, batch, i, at)

    def _set_aside(self, sink: Sink, reason: str, error: str, batch: RecordBatch, i: int, at: int) -> None:
        """Write record `i` of `batch` to the dead-letter or late topic, with its source position.

        After a repartition that is the position in the topic the event entered by
        (from its `streamcore.repartition.SOURCE_HEADER`), not in the repartition topic.
        """
        topic, partition, offset = batch.topic, batch.partition, batch.base_offset + i
        origin = self.pipeline.repartitioned_from
        if origin is not None and (position := source_position(batch.header_list(i))) is not None:
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
        )
        sink.add(key, value, timestamp, headers)

    # -- checkpoints --------------------------------------------------------------
    @property
    def operator_names(self) -> list[str]:
        return [name for name, _ in self._operators]

    def restore(self) -> dict[int, int]:
        """Load the last checkpoint, if any; return the source positions to resume from."""
        meta = self.store.load_checkpoint()
        if meta is None:
            stale = self.store.namespaces()
            if stale:
                raise IncompatibleState(
                    f"{self.store.path} holds operator state {sorted(stale)} "
                    "but no checkpoint record; remove the directory to start over"
                )
            return {}
        if meta.get("operators") != self.operator_names:
            raise IncompatibleState(
                f"state in {self.store.path} was written for operators {meta.get('operators')}, "
                f"but stream {self.pipeline.name!r} now has {self.operator_names}. Renaming an operator "
                "or changing its state version needs a fresh state directory (or a migration)."
            )
        saved_parts = {int(p) for p in meta["positions"]}
        if saved_parts != set(self.partitions):
            raise IncompatibleState(
                f"state in {self.store.path} covers partitions {sorted(saved_parts)}, "
                f"the source now has {list(self.partitions)}"
            )
        self.positions = {int(p): off for p, off in meta["positions"].items()}
        self.tracker.restore(meta["watermark"])
        self.checkpoint_id = meta["id"]
        for name, operator in self._operators:
            operator.restore(self.store.scan(name))
        self._fire()  # operators learn the restored watermark (nothing is due: it fired before the checkpoint)
        return dict(self.positions)

    def start_checkpoint(self) -> TaskCheckpoint:
        """Take the cut of a checkpoint now; encode and commit it in steps (`TaskCheckpoint`).

        Call only after the sinks were flushed: the positions written promise that every
        output of the records before them is durable (outputs are at-least-once, state is
        exactly-once).
        """
        self.checkpoint_id += 1
        meta = {
            "format": CHECKPOINT_FORMAT,
            "id": self.checkpoint_id,
            "time_ms": self.clock.now_ms(),
            "app": self.app_name,
            "app_version": self.app_version,
            "stream": self.pipeline.name,
            "operators": self.operator_names,
            "positions": {str(p): off for p, off in self.positions.items()},
            "watermark": self.tracker.snapshot(),
        }
        write = self.store.checkpoint_write(self.checkpoint_id)
        for name, operator in self._operators:
            operator.checkpoint(write.writer(name))
        for state in self.keyed_states:
            state.begin_checkpoint(write.writer(state.namespace))
        return TaskCheckpoint(self, write, meta)

    def state_entries(self) -> int:
        return sum(op.state_entries() for _, op in self._operators)


class TaskCheckpoint:
    """A checkpoint being taken while the stream goes on.

    The cut (positions, watermarks, operator deltas, which keyed entries changed) was
    taken by `Task.start_checkpoint`. `step` then works for a bounded time: it encodes
    the changed keyed entries (an entry that changes meanwhile is encoded first,
    copy-on-write, so the checkpoint holds exactly the state of the cut), and then
    writes the checkpoint in small batches: journal, commit record, apply
    (`streamcore.state.CheckpointWrite`). `commit` finishes once `step` says it is done.
    """

    def __init__(self, task: Task, write: CheckpointWrite, meta: dict[str, Any]) -> None:
        self.task = task
        self.write = write
        self.meta = meta
        self.positions = {int(p): off for p, off in meta["positions"].items()}
        self.started = time.perf_counter()
        self._sealed = False

    def step(self, budget_s: float) -> bool:
        """Work for up to about `budget_s`; True once the checkpoint is written."""
        deadline = time.perf_counter() + budget_s
        if not self._sealed:
            for state in self.task.keyed_states:
                while not state.encode_some(ENCODE_CHUNK):
                    if time.perf_counter() >= deadline:
                        return False
            self.write.seal(self.meta)
            self._sealed = True
        return self.write.step(max(0.0, deadline - time.perf_counter()))

    def commit(self) -> None:
        """After `step` returned True: the cache may shrink; count the checkpoint."""
        for state in self.task.keyed_states:
            state.end_checkpoint()
        counters = self.task.counters
        counters.checkpoints += 1
        counters.last_checkpoint_ms = (time.perf_counter() - self.started) * 1000
        counters.last_checkpoint_bytes = self.write.bytes
