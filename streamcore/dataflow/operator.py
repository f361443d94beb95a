"""The operator interface: what the runtime asks of a stateful step, and nothing more.

The runtime never imports `operators`; window, aggregation, join and feature
operators implement these protocols and are handed to a `Stream` as specs.

A record moves through a pipeline as ``(key, value, ts)``: the entity key (a str
once ``key_by`` ran), the decoded event, and its event time in epoch ms. Each step
calls the next one; the value a step returns travels back to the runtime, which
only looks for `LATE` and `FILTERED`.

Contract for a stateful `Operator`:

* `process` applies one event completely or not at all: it validates first and
  raises `SchemaError` (dead-lettered as ``schema``) or any other exception
  (``operator_error``) before it changes state. Between validating and changing
  state it calls ``context.admit(ts)``, which raises `FutureTimestamp` for an event
  too far ahead of processing time (the contract checks the schema first). It
  returns `LATE` when the event is too late for every window it belongs to.
* `on_watermark` is called every time the watermark advances; the operator fires
  and purges what is due, calling ``context.emit`` for each result.
* State lives in the operator's memory between checkpoints. `checkpoint` writes
  what changed since the last one into the runtime's write batch (which commits
  it atomically with source positions and watermarks); `restore` loads it back.
  State with more keys than memory holds uses ``context.keyed_state(name)``, a
  write-back cache over RocksDB that the runtime checkpoints in the same batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

from streamcore.base.records import Span
from streamcore.state.writer import StateWriter

if TYPE_CHECKING:
    from streamcore.eventtime.watermarks import WatermarkTracker
    from streamcore.online.reads import FeatureReader
    from streamcore.online.views import EntityStore
    from streamcore.state.keyed import KeyedState

LATE: Final = False
"""Returned by `Operator.process` (and passed back up the pipeline) when an event is late."""


class _Filtered:
    __slots__ = ()

    def __repr__(self) -> str:
        return "FILTERED"


FILTERED: Final = _Filtered()
"""Returned by a filter step (and passed back up the pipeline) when it dropped the event."""

Emit = Callable[[Any, Any, int], Any]
"""The next step of a pipeline: ``emit(key, value, ts)``."""


def admit_any(ts: int) -> None:
    """The `OperatorContext.admit` of operators that need no future-skew check."""
    return None


class OperatorContext(Protocol):
    """What the runtime gives an operator when it is built for a task."""

    emit: Emit
    """Send a result downstream: ``emit(key, value, ts)``."""

    admit: Callable[[int], None]
    """Call with an event's time after validating it, before changing state."""

    def fail_output(self, key: Any, value: Any, ts: int, error: BaseException) -> None:
        """Dead-letter a result the operator could not produce (e.g. a user ``result()`` raised)."""
        ...

    def keyed_state(self, name: str, *, capacity: int = 100_000) -> KeyedState:
        """Per-key state too large for memory, checkpointed with everything else (see `keyed_state`)."""
        ...

    def entity_store(self, view: str, reader: FeatureReader, *, capacity: int = 100_000) -> EntityStore:
        """Keyed state that the online state serves as feature view `view` (see `online`)."""
        ...


@runtime_checkable
class Operator(Protocol):
    """A keyed, stateful step of one task, built from an `OperatorSpec`."""

    def process(self, key: Any, value: Any, ts: int) -> Any: ...

    def on_watermark(self, watermark: float) -> None: ...

    def on_end_of_input(self) -> None:
        """Fire everything not fired yet, as a watermark of +inf would, but keep the state.

        The runner checkpoints afterwards with the real watermark, so a later run over a
        grown log continues these windows: it revises them, and retracts merged sessions.
        """
        ...

    def restore(self, entries: Iterable[tuple[bytes, bytes]]) -> None: ...

    def checkpoint(self, writer: StateWriter) -> None: ...

    def state_entries(self) -> int:
        """How many state entries the operator holds in memory (for metrics)."""
        ...


SCAN_DONE: Final = 0
"""`RawScan` applied every record of the range it was given."""
SCAN_SLOW: Final = 1
"""`RawScan` left this record untouched: run it through the pipeline as a decoded event."""
SCAN_LATE: Final = 2
"""`RawScan` found this record late for all its windows (state unchanged): write it to the late output."""
SCAN_MOVED: Final = 3
"""`RawScan` applied this record, and its event time may move the watermark: observe it, then go on."""
SCAN_ARRIVAL: Final = 4
"""`RawScan` reached the first run of a partition that has not arrived yet: note its arrival, then go on."""

RawScan = Callable[[list[Span], int, int, float, "WatermarkTracker", set[int]], tuple[int, int, int, int]]
"""``scan(spans, k, i, future_limit, tracker, arrived) -> (k, i, outcome, ts)``: a compiled
operator applying runs of keyed records (``(batch, start, stop)``, in order) straight from
their bytes, from record `i` of run `k` on, until a record needs the task (one of the
``SCAN_*`` outcomes, with where it stopped). `future_limit` is the largest event time
admitted; `tracker` holds the watermarks, which the operator may raise for a partition
that cannot move W (as `WatermarkTracker.observe` would); `arrived` holds the partitions
whose arrival the task has noted."""


@runtime_checkable
class ScansRawRecords(Protocol):
    """An operator that can be the first step after ``key_by(field)`` and read records itself."""

    def raw_scanner(self, ts_field: str, key_field: str) -> RawScan | None:
        """Its `RawScan` for records timed and keyed by these fields, or None if it cannot read them."""
        ...


class OperatorSpec(Protocol):
    """A frozen description of an operator; builds its runtime logic for one task.

    `name` identifies the operator's state in checkpoints together with `state_version`:
    renaming the operator or changing the state layout without a new version would make
    old checkpoints unreadable, so the runtime refuses to mix them.
    """

    @property
    def name(self) -> str: ...

    @property
    def state_version(self) -> int: ...

    @property
    def needs_event_time(self) -> bool:
        """True if the operator needs event time (a stream without it is refused when built)."""
        ...

    def build(self, context: OperatorContext) -> Operator: ...

    def checker(self) -> Callable[[Any], None]:
        """A function that raises a `RecordError` (e.g. `SchemaError`) for an event the operator would reject.

        Before a repartition (`streamcore.runtime.repartition`) the shuffle stage calls it on every
        event, so that an event the operator rejects is dead-lettered where it entered and
        does not move the watermark, as it would not without the repartition. Built once
        per task; return one that accepts anything if unsure.
        """
        ...


class WindowSpec(Protocol):
    """A window definition (tumbling, sliding, session, ...) from the `operators` package."""

    def aggregate_operator(
        self, aggregations: Mapping[str, Any], *, allowed_lateness_ms: int, name: str
    ) -> OperatorSpec: ...
