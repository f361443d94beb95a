"""Parse durations given as milliseconds, strings like ``"250ms"``/``"5s"``/``"1m"``, or timedeltas."""

from __future__ import annotations

import re
from datetime import timedelta

from streamcore.base.errors import ConfigError

Duration = int | str | timedelta
"""A duration setting: an int of milliseconds, a string such as ``"5s"``, or a ``timedelta``."""

MAX_DURATION_MS = 2**40
"""The largest duration setting (about 34.8 years): the event-time contract's range for sizes,
slides, gaps, lateness, skew and timeouts, so window bounds of any accepted event fit 63 bits."""

_UNITS_MS = {"ms": 1, "s": 1_000, "m": 60_000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|min|m|h|d)\s*$")


def to_ms(value: Duration, setting: str, *, allow_zero: bool = True) -> int:
    """Return `value` in whole milliseconds, or raise ConfigError naming `setting`.

    The result is in ``[0, MAX_DURATION_MS]`` (``[1, MAX_DURATION_MS]`` without `allow_zero`).
    """
    if isinstance(value, bool):
        raise ConfigError(setting, f"expected a duration, got {value!r}")
    if isinstance(value, timedelta):
        ms = round(value.total_seconds() * 1000)
    elif isinstance(value, int):
        ms = value
    elif isinstance(value, str):
        match = _PATTERN.match(value)
        if not match:
            raise ConfigError(setting, f"cannot read {value!r} as a duration (use e.g. 250ms, 5s, 1m, 2h)")
        ms = round(float(match.group(1)) * _UNITS_MS[match.group(2)])
    else:
        raise ConfigError(setting, f"expected a duration, got {type(value).__name__}")
    if ms < 0 or (ms == 0 and not allow_zero) or ms > MAX_DURATION_MS:
        low = 0 if allow_zero else 1
        raise ConfigError(setting, f"must be in {low} .. 2**40 ms, got {value!r}")
    return ms


def optional_ms(value: Duration | None, setting: str, *, allow_zero: bool = False) -> int | None:
    """Like `to_ms` for settings where ``None`` switches the rule off; zero is rejected unless `allow_zero`."""
    return None if value is None else to_ms(value, setting, allow_zero=allow_zero)
