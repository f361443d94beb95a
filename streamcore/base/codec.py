"""JSON for state and outputs that keeps every value a record can put there.

orjson is the fast path, but it cannot write what a valid record can still bring in:
integers beyond 64 bits (an exact sum of large integers, or a big literal the lenient
decoder read), strings with unpaired surrogates (JSON allows ``"\\ud800"``), and it
writes a non-finite float (an overflowed float sum) as ``null``. So:

* `encode_state` / `decode_state` round-trip any JSON data exactly. What orjson writes
  exactly is written by orjson; anything else by the standard library with a leading
  marker byte (``\\x00``, which no orjson output begins with), so the decoder knows
  which reader to use. A checkpoint therefore never fails on a value a record put in
  state, and a restored run continues with bit-identical values.
* `encode_output` writes a record for a topic (results, repartitioned events, HTTP
  answers): exact integers at any magnitude (as JSON integers, as SQL's ``SUM(bigint)``
  gives a ``numeric``), ``null`` for a non-finite float (as the event-time contract
  says), and an unpaired surrogate as its ``\\ud800`` escape, which decodes back to it.
  It raises ``TypeError`` only for a value that is not JSON data (the caller
  dead-letters that result).
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

_EXACT = b"\x00"
"""Marks state written by the standard library (orjson could not write it exactly)."""


def encode_state(value: Any) -> bytes:
    """`value` as bytes that `decode_state` turns back into an equal value (floats bit for bit).

    Raises ``TypeError`` if `value` is not JSON data (numbers, strings, lists, dicts, bools, None,
    or an object whose ``json_data()`` gives JSON data: it is written as that data).
    """
    try:
        raw = orjson.dumps(value, default=_json_data)
    except TypeError:  # an integer beyond 64 bits, or a surrogate (or not JSON data at all)
        return _exact(value)
    if b"null" in raw and _has_non_finite(_plain(value)):  # orjson wrote inf or nan as null
        return _exact(value)
    return raw


def decode_state(raw: bytes) -> Any:
    """The value `encode_state` encoded."""
    if raw[:1] == _EXACT:
        return json.loads(raw[1:])
    return orjson.loads(raw)


def encode_output(value: Any) -> bytes:
    """A result record's JSON: exact integers of any size, ``null`` for non-finite floats."""
    try:
        return orjson.dumps(value)
    except TypeError:
        pass
    _check_keys(value)
    return json.dumps(_finite_or_null(value), ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode()


def _json_data(value: Any) -> Any:
    """The JSON data an object stands for, if it says (``json_data()``): state an operator
    keeps in a layout of its own, written as the data it holds."""
    as_data = getattr(value, "json_data", None)
    if as_data is None:
        raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")
    return as_data()


def _exact(value: Any) -> bytes:
    value = _plain(value)
    _check_keys(value)
    return _EXACT + json.dumps(value, ensure_ascii=True, allow_nan=True, separators=(",", ":")).encode()


def _plain(value: Any) -> Any:
    """`value` with every object that stands for JSON data (`_json_data`) replaced by that data."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | float):
        return value
    return _plain(_json_data(value))


def _check_keys(value: Any) -> None:
    """The standard library would write int or None dict keys as strings: refuse, as orjson does."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"dict key {key!r} is not a string")
            _check_keys(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_keys(item)


def _has_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_non_finite(v) for v in value)
    return False


def _finite_or_null(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_or_null(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_or_null(v) for v in value]
    return value
