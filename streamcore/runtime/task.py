"""A task runs one pipeline over the partitions of its source topic.

For every arrival, in this order (the contract of ``docs/semantics.md``):

1. the partition is active as of the arrival's processing time: recompute W, fire;
2. decode the JSON value (``decode``), check it is an object with an integer event
   time in 0 .. 2**62 and a key of valid Unicode (``schema``);
3. dead-letter events too far in the future (``future_timestamp``);
4. run the pipeline's steps; a stateful operator may report the event `LATE`
   (late output) or reject it (``schema`` / ``operator_error``);
5. an event that was not dead-lettered moves its partition's watermark; fire.

`process_batch` is called once per fetched batch; the record loops behind it (steps 2
to 5) are `streamcore.runtime.task_records`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from typing import cast

from streamcore.base.clock import Clock
from streamcore.base.errors import FutureTimestamp
from streamcore.base.records import Batches, Record, RecordBatch
from streamcore.dataflow.operator import Emit, Operator, RawScan, ScansRawRecords, admit_any
from streamcore.dataflow.stream import FilterStep, KeyByStep, MapStep, OperatorStep, Pipeline, ScoreStep, ShuffleSink
from streamcore.eventtime.watermarks import NEG_INF, WatermarkTracker, time_unit_warning
from streamcore.io.transport import Sink
from streamcore.online.models import Model
from streamcore.online.views import OnlineState
from streamcore.runtime import nodes
from streamcore.runtime.counters import TaskCounters
from streamcore.runtime.nodes import CallbackSink
from streamcore.runtime.repartition import PartitionedSink, ProducerWatermarks, ShuffledInput, ShuffleWriter
from streamcore.runtime.set_aside import SetAside
from streamcore.runtime.task_checkpoint import TaskCheckpoint, check_compatible, checkpoint_meta
from streamcore.runtime.task_context import TaskContext, TaskStream
from streamcore.runtime.task_records import RecordLoops
from streamcore.state.keyed import KeyedState
from streamcore.state.store import TaskStore

log = logging.getLogger("streamcore.task")


class Task(RecordLoops):
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
        self._record_batch: RecordBatch | None = None
        self.tracks_records = False
        self._time_unit_checked = False
        self._ended = False
        self.set_aside = SetAside(
            pipeline=pipeline,
            app_name=app_name,
            app_version=app_version,
            clock=clock,
            counters=self.counters,
            dead_letters=dead_letters,
            late=late,
            watermark=lambda: self.tracker.watermark,
        )
        self._dead_letter = self.set_aside.dead_letter
        self._write_late = self.set_aside.late
        self._fail_output_of = self.set_aside.fail_output_of
        self._head = self._build_chain()

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
                self.current_headers,
            )
            self._shuffle_writer = writer
            emit = nodes.counted(writer.emit, self.counters)
        else:
            emit = nodes.topic_sink(sink, self.counters, self.current_headers)
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
                emit = nodes.map_values(step.fn, emit, self._record_for(step.with_record))
            elif isinstance(step, FilterStep):
                emit = nodes.filter_values(step.fn, emit, self._record_for(step.with_record))
            elif isinstance(step, KeyByStep):
                emit = nodes.key_by(step.field, step.fn, emit)
            elif isinstance(step, ScoreStep):
                emit = nodes.score(self.models[step.model], self.online, step.into, step.features_into, emit)
            elif isinstance(step, OperatorStep):
                spec = step.spec
                admit = self._admit if index == first_operator and self._future_skew is not None else admit_any
                namespace = f"{spec.name}@v{spec.state_version}"
                context = TaskContext(
                    self, namespace, self._guard(spec.name, emit), self._fail_output_of(spec.name), admit
                )
                operator = spec.build(context)
                self._operators.insert(0, (namespace, operator))
                emit = operator.process
        self._raw_scan: RawScan | None = None
        """The first operator reads the records' bytes itself (a compiled kernel, see `_apply_spans`)."""
        if self._key_field is not None and first_operator == 0 and not self.tracks_arrivals:
            first = self._operators[0][1]
            if isinstance(first, ScansRawRecords):
                assert self._ts_field is not None
                self._raw_scan = first.raw_scanner(self._ts_field, self._key_field)
        return emit

    def _record_for(self, asked: bool) -> Callable[[], Record | None] | None:
        """`current_record` for a step that asked for each record's metadata (else None)."""
        if not asked:
            return None
        self.tracks_records = True
        return self.current_record

    def _admit(self, ts: int) -> None:
        if ts > self._future_limit:
            at = self._future_limit - (self._future_skew or 0)
            raise FutureTimestamp(f"event time {ts} is {ts - at} ms ahead of processing time {at}")

    def _guard(self, step: str, nxt: Emit) -> Emit:
        """Downstream of an operator: a failing step dead-letters that result, not the task."""
        fail = self._fail_output_of(step)
        if nxt is self._sink_emit and not isinstance(self.sink, CallbackSink):
            return nodes.guarded_topic_sink(self.sink, self.counters, fail, self.current_headers)
        return nodes.guard(nxt, fail)

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

    def process_runs(self, batches: Batches, at: int) -> list[RecordBatch]:
        """Process consecutive runs of several partitions, in their order; all arrived at `at`.

        On the compiled path (`_apply_spans`) the runs are applied in place, with the
        per-batch bookkeeping paid once for all of them, and nothing is returned; otherwise
        one by one, as batches, which are returned (a feature stream's freshness metric
        keeps them; such a stream is never on the compiled path).
        """
        if self._raw_scan is None or self._shuffled is not None or self._shuffle_writer is not None:
            runs = batches.runs
            for run in runs:
                self.process_batch(run, at)
            return runs
        self._apply_spans(batches.spans, at, arrivals=True)
        return []

    def _fire(self) -> None:
        watermark = self.tracker.watermark
        if not self._time_unit_checked:
            self._check_time_unit(watermark)
        in_hand, self._record_batch = self._record_batch, None  # results of windows: no record's headers
        try:
            for _, operator in self._operators:
                operator.on_watermark(watermark)
        finally:
            self._record_batch = in_hand

    def finish(self) -> None:
        """End of input: every window fires, as at W = +inf.

        State is kept and the watermark stays what it was, so the checkpoint taken next
        lets a later run over a grown log continue (revise, retract) instead of treating
        everything new as late.
        """
        if not self._time_unit_checked:  # a short input may end before the watermark moves
            self._check_time_unit(max(self.tracker.wm.values(), default=NEG_INF))
        for _, operator in self._operators:
            operator.on_end_of_input()
        self._ended = True

    def _check_time_unit(self, watermark: float) -> None:
        """Once per task: warn if the first watermark suggests event times are not epoch milliseconds."""
        if watermark == NEG_INF:
            return
        self._time_unit_checked = True
        if (warning := time_unit_warning(watermark, self.clock.now_ms())) is not None:
            log.warning("stream %s: %s", self.pipeline.name, warning)

    @property
    def watermark(self) -> float:
        return self.tracker.watermark

    @property
    def ended(self) -> bool:
        return self._ended

    # -- dead letters and late records ------------------------------------------
    # -- checkpoints --------------------------------------------------------------
    @property
    def operator_names(self) -> list[str]:
        return [name for name, _ in self._operators]

    def restore(self) -> dict[int, int]:
        """Load the last checkpoint, if any; return the source positions to resume from."""
        meta = self.store.load_checkpoint()
        check_compatible(meta, self.store, self.operator_names, self.pipeline.name, self.partitions)
        if meta is None:
            start = self.store.start_positions()  # a reset may say where to start
            self.positions.update(start)
            return start
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
        meta = checkpoint_meta(
            self.checkpoint_id,
            self.clock.now_ms(),
            app=(self.app_name, self.app_version),
            stream=self.pipeline.name,
            operators=self.operator_names,
            positions=self.positions,
            watermark=self.tracker.snapshot(),
        )
        write = self.store.checkpoint_write(self.checkpoint_id)
        for name, operator in self._operators:
            operator.checkpoint(write.writer(name))
        for state in self.keyed_states:
            state.begin_checkpoint(write.writer(state.namespace))
        return TaskCheckpoint(self.keyed_states, self.counters, write, meta)

    def state_entries(self) -> int:
        return sum(op.state_entries() for _, op in self._operators)
