"""How the reference model reads one arrival's text: decode, then the schema rules.

The rules are the contract's (``SEMANTICS.md``, "Per arrival", steps 2 and 3): text that is
not RFC 8259 JSON is ``decode``; JSON that is not an object, whose key is not a string of
valid Unicode, whose event time is not an integer in ``[0, 2^62]``, or whose aggregated
fields are not finite numbers is ``schema``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

MAX_TS = 2**62


@dataclass(frozen=True)
class Event:
    """A record that passed decode and schema: its key, event time and aggregated fields."""

    key: str
    ts: int
    fields: dict[str, int | float]


class Rejected(Exception):
    """The record is dead-lettered; `reason` is the contract's reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _no_constants(name: str) -> Any:
    raise Rejected("decode")  # NaN, Infinity and -Infinity are JavaScript, not JSON


def _is_json_text(text: str) -> Any:
    """The decoded value of `text`, or `Rejected("decode")`.

    Python's decoder is RFC 8259 but for two extensions, both refused here: the
    constants (``parse_constant``) and a leading byte-order mark, which it reports with a
    message of its own (a `str` input keeps the mark as a character).
    """
    if text.startswith("\ufeff"):
        raise Rejected("decode")
    try:
        return json.loads(text, parse_constant=_no_constants)
    except json.JSONDecodeError:
        raise Rejected("decode") from None


def valid_unicode(text: str) -> bool:
    """False for text with an unpaired surrogate (JSON can carry one escaped; Unicode has none)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # an unpaired surrogate
        return False
    return True


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_finite_number(value: Any) -> bool:
    if _is_integer(value):
        return True
    return isinstance(value, float) and math.isfinite(value)  # 1e400 decodes to inf: JSON, not finite


def read(text: str, key_field: str, ts_field: str, aggregated: tuple[str, ...]) -> Event:
    """The event in `text`, or `Rejected` with the reason it is dead-lettered."""
    value = _is_json_text(text)
    if not isinstance(value, dict):
        raise Rejected("schema")
    key, ts = value.get(key_field), value.get(ts_field)
    if not isinstance(key, str) or not valid_unicode(key):
        raise Rejected("schema")
    if not _is_integer(ts) or not 0 <= ts <= MAX_TS:
        raise Rejected("schema")
    fields = {}
    for name in aggregated:
        number = value.get(name)
        if not _is_finite_number(number):
            raise Rejected("schema")
        fields[name] = number
    return Event(key, ts, fields)
