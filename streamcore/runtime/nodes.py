"""The stateless steps of a pipeline, as nested calls: ``node(key, value, ts)`` calls the next.

`Task` composes them from the sink backwards. Each node returns what the rest of the
pipeline returned, so `LATE` and `FILTERED` travel back to the task's hot loop.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Protocol

import orjson

from streamcore.base.codec import encode_output
from streamcore.base.decoding import describe_type, valid_unicode
from streamcore.base.errors import SchemaError
from streamcore.base.records import Headers, Record
from streamcore.dataflow.operator import FILTERED, Emit
from streamcore.io.transport import Sink
from streamcore.online.models import Model
from streamcore.online.views import OnlineState

Fail = Callable[[Any, Any, int, BaseException], None]
"""Dead-letters a result a step could not produce: ``fail(key, value, ts, error)``."""


class Counting(Protocol):
    """What a sink node counts (`streamcore.runtime.counters.TaskCounters` has it)."""

    outputs: int


class CallbackSink:
    """Collects output values and hands them to a user function once per flush.

    The function may be async: the stream then waits for it, and while it is slow the
    source is paused (backpressure), with the event loop free for heartbeats and reads.
    """

    def __init__(self, fn: Callable[[list[Any]], Any], label: str) -> None:
        self.fn = fn
        self.topic = label
        self.values: list[Any] = []

    @property
    def pending(self) -> int:
        return len(self.values)

    async def flush(self) -> None:
        if self.values:
            values, self.values = self.values, []
            result = self.fn(values)
            if inspect.isawaitable(result):
                await result


def key_bytes(key: Any) -> bytes | None:
    """The record key of an output: the entity key as UTF-8, or None.

    A key that is not valid Unicode (only a dead letter's can be: `key_by` refuses them)
    keeps its unpaired surrogates as their UTF-8 bit patterns rather than failing.
    """
    if key is None:
        return None
    return (key if type(key) is str else str(key)).encode("utf-8", "surrogatepass")


def map_values(fn: Callable[..., Any], nxt: Emit, record: Callable[[], Record | None] | None = None) -> Emit:
    """``fn(event)``, or with `record` (a step that asked) ``fn(event, record)``: the record in hand."""
    if record is not None:

        def map_with_record(key: Any, value: Any, ts: int) -> Any:
            return nxt(key, fn(value, record()), ts)

        return map_with_record

    def map_node(key: Any, value: Any, ts: int) -> Any:
        return nxt(key, fn(value), ts)

    return map_node


def filter_values(fn: Callable[..., bool], nxt: Emit, record: Callable[[], Record | None] | None = None) -> Emit:
    """Keep events where ``fn(event)`` (or ``fn(event, record)``, see `map_values`) is true."""
    if record is not None:

        def filter_with_record(key: Any, value: Any, ts: int) -> Any:
            if fn(value, record()):
                return nxt(key, value, ts)
            return FILTERED

        return filter_with_record

    def filter_node(key: Any, value: Any, ts: int) -> Any:
        if fn(value):
            return nxt(key, value, ts)
        return FILTERED

    return filter_node


def key_by(field: str | None, fn: Callable[[Any], str] | None, nxt: Emit) -> Emit:
    """Re-key by a field or a function; a key that is not a string is a schema error."""
    if field is not None:

        def key_by_field(key: Any, value: Any, ts: int) -> Any:
            try:
                k = value[field]
            except (KeyError, TypeError, IndexError):
                raise SchemaError(f"key field {field!r} is missing") from None
            if type(k) is not str:
                raise SchemaError(f"key field {field!r} is {describe_type(k)}, expected a string")
            if not valid_unicode(k):
                raise SchemaError(f"key field {field!r} is {k!r}, not valid Unicode (an unpaired surrogate)")
            return nxt(k, value, ts)

        return key_by_field
    assert fn is not None

    def key_by_function(key: Any, value: Any, ts: int) -> Any:
        k = fn(value)
        if type(k) is not str:
            raise SchemaError(f"key function returned {describe_type(k)}, expected a string")
        if not valid_unicode(k):
            raise SchemaError(f"key function returned {k!r}, not valid Unicode (an unpaired surrogate)")
        return nxt(k, value, ts)

    return key_by_function


def admit(check: Callable[[int], None], nxt: Emit) -> Emit:
    """The future-skew check, for pipelines without a stateful operator to make it."""

    def admit_node(key: Any, value: Any, ts: int) -> Any:
        check(ts)
        return nxt(key, value, ts)

    return admit_node


def score(model: Model, online: OnlineState, into: str, features_into: str | None, nxt: Emit) -> Emit:
    """Score the event's entity from its current features; the event gets the score in `into`."""
    fallback_field = f"{into}_fallback"
    needed = frozenset(model.features)

    def score_node(key: Any, value: Any, ts: int) -> Any:
        store = online.store_for(model.view, key)
        record = store.record_as_of(key, None)
        features = store.reader.compute(None if record is None else record[0], store.reader.reference(), needed)
        inputs = model.inputs(features)
        result = model.score(inputs)
        out = value if type(value) is dict else {"event": value}
        out[into] = result.value
        if features_into is not None:
            out[features_into] = inputs
        if result.fallback:
            out[fallback_field] = result.reason
        return nxt(key, out, ts)

    return score_node


def guard(nxt: Emit, fail: Fail) -> Emit:
    """Downstream of an operator: a failing step dead-letters that result, not the task."""

    def guarded(key: Any, value: Any, ts: int) -> Any:
        try:
            return nxt(key, value, ts)
        except Exception as exc:  # noqa: BLE001 - user code: dead-letter the result
            fail(key, value, ts, exc)
            return None

    return guarded


def topic_sink(sink: Sink, counters: Counting, headers: Callable[[], Headers]) -> Emit:
    """Write each value to a topic as JSON, keyed by the entity key, with `headers()`: those
    of the record it came from (trace propagation; none for window results).

    orjson first, inline; `encode_output` only for what it cannot write (integers beyond
    64 bits, unpaired surrogates).
    """
    add = sink.add
    dumps = orjson.dumps

    def to_topic(key: Any, value: Any, ts: int) -> None:
        try:
            raw = dumps(value)
        except TypeError:
            raw = encode_output(value)
        add(key_bytes(key), raw, ts, headers())
        counters.outputs += 1

    return to_topic


def guarded_topic_sink(sink: Sink, counters: Counting, fail: Fail, headers: Callable[[], Headers]) -> Emit:
    """`topic_sink` with `guard` folded in: one call per result instead of two."""
    add = sink.add
    dumps = orjson.dumps

    def to_topic_guarded(key: Any, value: Any, ts: int) -> None:
        try:
            try:
                raw = dumps(value)
            except TypeError:
                raw = encode_output(value)
            add(key.encode() if type(key) is str else key_bytes(key), raw, ts, headers())
        except Exception as exc:  # noqa: BLE001 - e.g. a result that is not JSON: dead-letter it
            fail(key, value, ts, exc)
            return
        counters.outputs += 1

    return to_topic_guarded


def counted(emit: Emit, counters: Counting) -> Emit:
    """A last node that writes somewhere itself (e.g. `streamcore.runtime.repartition.ShuffleWriter`), counted."""

    def counted_output(key: Any, value: Any, ts: int) -> None:
        emit(key, value, ts)
        counters.outputs += 1

    return counted_output


def function_sink(sink: CallbackSink, counters: Counting) -> Emit:
    """Collect each value for a user function (the list is replaced on every flush)."""

    def to_function(key: Any, value: Any, ts: int) -> None:
        sink.values.append(value)
        counters.outputs += 1

    return to_function
