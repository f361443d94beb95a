"""The contract's aggregations and its number rules, for the reference model.

``count``, ``sum``, ``min``, ``max`` and ``mean`` of a field. A sum of integers is a
Python integer, exact at any magnitude (emitted as a JSON integer); a sum that meets a
float is a float. A float aggregate that overflows, and a mean too large for a float,
are ``None`` (JSON ``null``).
"""

from __future__ import annotations

import math
from typing import Any

Number = int | float


def aggregated_fields(aggs: dict[str, list[str]]) -> tuple[str, ...]:
    """The input fields the aggregations read (``count`` reads none), each once."""
    return tuple(dict.fromkeys(spec[1] for spec in aggs.values() if spec[0] != "count"))


def _finite_or_none(value: Number) -> Number | None:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _mean(total: Number, count: int) -> float | None:
    try:
        return _finite_or_none(total / count)
    except OverflowError:  # an integer sum too large for a float
        return None


class Accumulator:
    """The running aggregates of one window: a count, and per field its sum, min and max."""

    def __init__(self, aggs: dict[str, list[str]]) -> None:
        self.aggs = aggs
        self.count = 0
        self.sums: dict[str, Number] = {}
        self.mins: dict[str, Number] = {}
        self.maxs: dict[str, Number] = {}

    def add(self, fields: dict[str, Number]) -> None:
        self.count += 1
        for name, value in fields.items():
            if name in self.sums:
                self.sums[name] += value
                self.mins[name] = min(self.mins[name], value)
                self.maxs[name] = max(self.maxs[name], value)
            else:
                self.sums[name] = self.mins[name] = self.maxs[name] = value

    def combined(self, other: Accumulator) -> Accumulator:
        """This window's aggregates followed by `other`'s (two sessions merging)."""
        both = Accumulator(self.aggs)
        both.count = self.count + other.count
        for name in self.sums:  # every accepted event has every aggregated field
            both.sums[name] = self.sums[name] + other.sums[name]
            both.mins[name] = min(self.mins[name], other.mins[name])
            both.maxs[name] = max(self.maxs[name], other.maxs[name])
        return both

    def values(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for output, spec in self.aggs.items():
            op = spec[0]
            if op == "count":
                out[output] = self.count
            elif op == "sum":
                out[output] = _finite_or_none(self.sums[spec[1]])
            elif op == "min":
                out[output] = self.mins[spec[1]]
            elif op == "max":
                out[output] = self.maxs[spec[1]]
            else:
                out[output] = _mean(self.sums[spec[1]], self.count)
        return out
