"""The window-aggregate operator spec, and what its two implementations share.

`WindowAggregateSpec` is what ``.window(...).aggregate(...)`` builds; it picks
`FixedWindows` (tumbling, sliding) or `SessionWindows`. Both keep every open window in
memory, fire a window once the watermark reaches its end (in ``(end, key, start)``
order), re-emit it for every accepted late event while the watermark is below
``end + allowed_lateness``, and purge it after that. Timers are derived from the
checkpointed windows (end + fired flag), so recovery fires exactly what a
crash-free run fires.

Each result is ``{"key", "start", "end", <aggregations>..., "revision"}``: revision 0
is the first firing, later ones are updates. A session window that is merged away
after it fired is withdrawn with ``{"key", "start", "end", "retracted": true, "revision"}``.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from streamcore.errors import SchemaError, StateError
from streamcore.operator import Operator, OperatorContext

from .aggregations import Aggregation

_LEN = struct.Struct(">I")
_U64 = struct.Struct(">Q")


@dataclass(frozen=True, slots=True)
class WindowAggregateSpec:
    """A keyed window aggregation; built into an operator per task."""

    name: str
    kind: str
    aggregations: Mapping[str, Aggregation]
    allowed_lateness_ms: int
    size: int = 0
    slide: int = 0
    gap: int = 0
    state_version: int = 1
    needs_event_time: bool = field(default=True, init=False)

    def build(self, context: OperatorContext) -> Operator:
        if self.kind == "session":
            from .session_windows import SessionWindows

            return SessionWindows(self, context)
        from .fixed_windows import FixedWindows

        return FixedWindows(self, context)


class WindowBase:
    """Validation, accumulators, results and state encoding shared by both window kinds."""

    def __init__(self, spec: WindowAggregateSpec, context: OperatorContext) -> None:
        self.spec = spec
        self.emit = context.emit
        self.admit = context.admit
        self.fail_output = context.fail_output
        self.lateness = spec.allowed_lateness_ms
        self.names = tuple(spec.aggregations)
        self.aggs = tuple(spec.aggregations.values())
        self.fields = tuple(a.field for a in self.aggs)
        self.numeric = tuple(a.numeric for a in self.aggs)
        self.watermark: float = -math.inf
        self.dirty: set[Any] = set()

    # -- per event ----------------------------------------------------------------
    def extract(self, event: Any) -> list[Any]:
        """The value each aggregation reads; raises SchemaError before any state changes."""
        values = []
        for name, fld, numeric in zip(self.names, self.fields, self.numeric, strict=True):
            if fld is None:
                values.append(event)
                continue
            try:
                v = event[fld]
            except (KeyError, TypeError, IndexError):
                raise SchemaError(f"field {fld!r} (aggregation {name!r}) is missing") from None
            if numeric:
                kind = type(v)
                if not (kind is int or (kind is float and v - v == 0.0)):
                    raise SchemaError(f"field {fld!r} (aggregation {name!r}) is {v!r}, not a finite number")
            values.append(v)
        return values

    def create(self) -> list[Any]:
        return [agg.create() for agg in self.aggs]

    def added(self, accs: list[Any], values: list[Any]) -> list[Any]:
        """New accumulators with one event added; the old ones are left untouched."""
        return [agg.add(acc, v) for agg, acc, v in zip(self.aggs, accs, values, strict=True)]

    def merged(self, a: list[Any], b: list[Any]) -> list[Any]:
        return [agg.merge(x, y) for agg, x, y in zip(self.aggs, a, b, strict=True)]

    # -- results ------------------------------------------------------------------
    def emit_result(self, key: str, start: int, end: int, state: list[Any]) -> None:
        """Emit the window's current values as its next revision. state = [accs, fired, revision]."""
        revision = state[2]
        state[2] = revision + 1
        try:
            out: dict[str, Any] = {"key": key, "start": start, "end": end}
            for name, agg, acc in zip(self.names, self.aggs, state[0], strict=True):
                out[name] = agg.result(acc)
        except Exception as exc:  # noqa: BLE001 - a user result() failed: dead-letter this result only
            self.fail_output(key, {"key": key, "start": start, "end": end}, end - 1, exc)
            return
        out["revision"] = revision
        self.emit(key, out, end - 1)

    def emit_retraction(self, key: str, start: int, end: int, revision: int) -> None:
        self.emit(key, {"key": key, "start": start, "end": end, "retracted": True, "revision": revision}, end - 1)

    # -- state encoding -------------------------------------------------------------
    @staticmethod
    def encode_key(key: str, *bounds: int) -> bytes:
        raw = key.encode()
        return _LEN.pack(len(raw)) + raw + b"".join(_U64.pack(b) for b in bounds)

    @staticmethod
    def decode_key(raw: bytes, bounds: int) -> tuple[str, tuple[int, ...]]:
        (n,) = _LEN.unpack_from(raw, 0)
        key = raw[4 : 4 + n].decode()
        pos = 4 + n
        return key, tuple(_U64.unpack_from(raw, pos + 8 * i)[0] for i in range(bounds))

    def encode_state(self, state: list[Any]) -> bytes:
        try:
            return orjson.dumps(state)
        except TypeError as exc:
            raise StateError(
                f"window operator {self.spec.name!r}: an accumulator is not JSON data ({exc}); "
                "aggregations must keep numbers, strings, lists or dicts"
            ) from exc
