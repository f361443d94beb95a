"""What tumbling, sliding and session windows share: validation, accumulators, results, state encoding.

`WindowBase` is built from a `WindowShape` (the `WindowAggregateSpec` of
`window_operator`, seen structurally, so that this module does not import the spec
that imports the window kinds).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from typing import Any, Protocol

from streamcore.base.codec import encode_state
from streamcore.base.errors import SchemaError, StateError
from streamcore.dataflow.operator import OperatorContext

from .aggregations import Aggregation
from .fused import fuse

_LEN = struct.Struct(">I")
_U64 = struct.Struct(">Q")


class WindowShape(Protocol):
    """The settings a window operator is built from."""

    @property
    def name(self) -> str: ...

    @property
    def aggregations(self) -> Mapping[str, Aggregation]: ...

    @property
    def allowed_lateness_ms(self) -> int: ...

    @property
    def size(self) -> int: ...

    @property
    def slide(self) -> int: ...

    @property
    def gap(self) -> int: ...


def extract_values(aggregations: Mapping[str, Aggregation], event: Any) -> list[Any]:
    """The value each aggregation reads from `event`; raises SchemaError for a missing or
    non-finite one (the generic path; `fused` generates faster equivalents)."""
    values = []
    for name, agg in aggregations.items():
        fld = agg.field
        if fld is None:
            values.append(event)
            continue
        try:
            v = event[fld]
        except (KeyError, TypeError, IndexError):
            raise SchemaError(f"field {fld!r} (aggregation {name!r}) is missing") from None
        if agg.numeric:
            kind = type(v)
            if not (kind is int or (kind is float and v - v == 0.0)):
                raise SchemaError(f"field {fld!r} (aggregation {name!r}) is {v!r}, not a finite number")
        values.append(v)
    return values


class WindowBase:
    """Validation, accumulators, results and state encoding shared by both window kinds."""

    def __init__(self, spec: WindowShape, context: OperatorContext) -> None:
        self.spec = spec
        self.emit = context.emit
        self.admit = context.admit
        self.fail_output = context.fail_output
        self.lateness = spec.allowed_lateness_ms
        self.names = tuple(spec.aggregations)
        self.aggs = tuple(spec.aggregations.values())
        self.watermark: float = -math.inf
        self.dirty: set[Any] = set()
        fused = self.fused = fuse(self.names, self.aggs)
        if fused is not None:
            self.extract = fused.extract  # type: ignore[method-assign,assignment]
            self.apply = fused.add  # type: ignore[method-assign,assignment]
            self.create = fused.create  # type: ignore[method-assign]
            self.results = fused.results  # type: ignore[method-assign,assignment]

    # -- per event (the generic path; `fused` generates faster equivalents) ----------
    def extract(self, event: Any) -> Any:
        """The value each aggregation reads; raises SchemaError before any state changes."""
        return extract_values(self.spec.aggregations, event)

    def create(self) -> list[Any]:
        return [agg.create() for agg in self.aggs]

    def apply(self, accs: list[Any], values: Any) -> list[Any]:
        """Accumulators with one event added.

        The generic path returns a new list and leaves `accs` untouched, so an exception
        in a user-defined ``add`` changes nothing; the fused path adds in place (it
        cannot fail after `extract`). Either way, store the returned list.
        """
        added = [agg.add(acc, v) for agg, acc, v in zip(self.aggs, accs, values, strict=True)]
        self.check_encodable(added)
        return added

    def check_encodable(self, accs: list[Any]) -> None:
        """Raise before state changes if a user-defined accumulator could not be checkpointed.

        Built-in aggregations keep numbers only (always encodable); a user's `Aggregate`
        may return anything, and a value that is not JSON data must fail the record that
        made it, not every checkpoint after it.
        """
        try:
            encode_state(accs)
        except TypeError as exc:
            raise TypeError(f"window operator {self.spec.name!r}: an accumulator is not JSON data ({exc})") from None

    def results(self, out: dict[str, Any], accs: list[Any]) -> None:
        """Write every aggregation's result for `accs` into `out`."""
        for name, agg, acc in zip(self.names, self.aggs, accs, strict=True):
            out[name] = agg.result(acc)

    def merged(self, a: list[Any], b: list[Any]) -> list[Any]:
        merged = [agg.merge(x, y) for agg, x, y in zip(self.aggs, a, b, strict=True)]
        if self.fused is None:
            self.check_encodable(merged)
        return merged

    # -- results ------------------------------------------------------------------
    def emit_result(self, key: str, start: int, end: int, state: list[Any]) -> None:
        """Emit the window's current values as its next revision. state = [accs, fired, revision]."""
        revision = state[2]
        state[2] = revision + 1
        out: dict[str, Any] = {"key": key, "start": start, "end": end}
        try:
            self.results(out, state[0])
        except Exception as exc:  # noqa: BLE001 - a user result() failed: dead-letter this result only
            self.fail_output(key, {"key": key, "start": start, "end": end}, end - 1, exc)
            return
        out["revision"] = revision
        self.emit(key, out, end - 1)

    def emit_retraction(self, key: str, start: int, end: int, revision: int) -> None:
        self.emit(key, {"key": key, "start": start, "end": end, "retracted": True, "revision": revision}, end - 1)

    # -- state encoding -------------------------------------------------------------
    @staticmethod
    def encode_key(key: str, start: int, end: int | None = None) -> bytes:
        raw = key.encode()
        head = _LEN.pack(len(raw)) + raw + _U64.pack(start)
        return head if end is None else head + _U64.pack(end)

    @staticmethod
    def decode_key(raw: bytes, bounds: int) -> tuple[str, tuple[int, ...]]:
        (n,) = _LEN.unpack_from(raw, 0)
        key = raw[4 : 4 + n].decode()
        pos = 4 + n
        return key, tuple(_U64.unpack_from(raw, pos + 8 * i)[0] for i in range(bounds))

    def encode_state(self, state: list[Any]) -> bytes:
        try:
            return encode_state(state)
        except TypeError as exc:
            raise StateError(
                f"window operator {self.spec.name!r}: an accumulator is not JSON data ({exc}); "
                "aggregations must keep numbers, strings, lists or dicts"
            ) from exc
