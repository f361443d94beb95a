"""Turning record bytes into events: JSON, with the exact error reasons of the contract.

The hot path calls ``orjson.loads`` directly; only a record orjson rejects comes here,
to tell "not JSON" (reason ``decode``) from JSON that orjson cannot represent, such as
a number too large for a double (``1e400``), which is JSON and so is judged by the
schema rules instead (an aggregated field that is not finite is ``schema``).
"""

from __future__ import annotations

import json
from typing import Any


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def decode_strict(raw: bytes) -> Any:
    """Decode RFC 8259 JSON; raise ValueError if `raw` is not JSON.

    JSON is UTF-8 text without a byte-order mark, and has no NaN/Infinity literals. Given
    bytes, Python's `json` would accept all three (it guesses UTF-16 and UTF-32 and strips
    a mark), so the bytes are decoded as UTF-8 here, strictly, and a mark is refused.
    """
    text = raw.decode("utf-8")  # UnicodeDecodeError is a ValueError
    if text.startswith("\ufeff"):
        raise ValueError("a byte-order mark is not JSON")
    return json.loads(text, parse_constant=_reject_constant)


def valid_unicode(text: str) -> bool:
    """False for a string with an unpaired surrogate (``"\\ud800"``): JSON text, but not Unicode."""
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def bad_key(field: str | None, key: Any) -> str:
    """Why `key` (the value of the key field) cannot be an entity key."""
    if key is None:
        return f"key field {field!r} is missing"
    return f"key field {field!r} is {describe_type(key)}, expected a string"


def bad_timestamp(field: str | None, ts: Any) -> str:
    """Why `ts` (the value of the timestamp field) cannot be an event time."""
    if ts is None:
        return f"timestamp field {field!r} is missing"
    if type(ts) is int:
        return f"timestamp field {field!r} is {ts}, outside 0 .. 2**62 epoch ms"
    return f"timestamp field {field!r} is {type(ts).__name__}, expected an integer of epoch ms"


def describe_type(value: Any) -> str:
    return "missing" if value is None else type(value).__name__
