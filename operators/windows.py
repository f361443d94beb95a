"""Window definitions: which windows an event belongs to.

* `Tumbling(size)`: ``[k*size, (k+1)*size)``.
* `Sliding(size, slide)`: every ``[s, s+size)`` with ``s`` a multiple of `slide`, ``s >= 0``,
  containing the event; `size` must be a multiple of `slide`.
* `Session(gap)`: an event opens ``[ts, ts+gap)`` and merges with every overlapping
  window of its key.

All windows are half-open and aligned to the epoch. Use them with
``stream.key_by(...).window(Tumbling("1m")).aggregate(n=Count())``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from streamcore.base.durations import Duration, to_ms
from streamcore.base.errors import ConfigError

from .aggregations import resolve_all
from .window_operator import WindowAggregateSpec


@dataclass(frozen=True, slots=True)
class Tumbling:
    """Fixed, non-overlapping windows of `size`."""

    size: Duration

    def __post_init__(self) -> None:
        to_ms(self.size, "window.size", allow_zero=False)

    def aggregate_operator(
        self, aggregations: Mapping[str, Any], *, allowed_lateness_ms: int, name: str
    ) -> WindowAggregateSpec:
        size = to_ms(self.size, "window.size", allow_zero=False)
        return WindowAggregateSpec(
            name, "tumbling", resolve_all(aggregations), allowed_lateness_ms, size=size, slide=size
        )


@dataclass(frozen=True, slots=True)
class Sliding:
    """Overlapping windows of `size`, one starting every `slide`."""

    size: Duration
    slide: Duration

    def __post_init__(self) -> None:
        size = to_ms(self.size, "window.size", allow_zero=False)
        slide = to_ms(self.slide, "window.slide", allow_zero=False)
        if slide > size:
            raise ConfigError("window.slide", f"must not exceed window.size ({slide} ms > {size} ms)")
        if size % slide:
            raise ConfigError(
                "window.slide", f"must divide window.size evenly ({size} ms is not a multiple of {slide} ms)"
            )

    def aggregate_operator(
        self, aggregations: Mapping[str, Any], *, allowed_lateness_ms: int, name: str
    ) -> WindowAggregateSpec:
        return WindowAggregateSpec(
            name,
            "sliding",
            resolve_all(aggregations),
            allowed_lateness_ms,
            size=to_ms(self.size, "window.size"),
            slide=to_ms(self.slide, "window.slide"),
        )


@dataclass(frozen=True, slots=True)
class Session:
    """Windows of activity per key, closed after `gap` without events."""

    gap: Duration

    def __post_init__(self) -> None:
        to_ms(self.gap, "window.gap", allow_zero=False)

    def aggregate_operator(
        self, aggregations: Mapping[str, Any], *, allowed_lateness_ms: int, name: str
    ) -> WindowAggregateSpec:
        return WindowAggregateSpec(
            name,
            "session",
            resolve_all(aggregations),
            allowed_lateness_ms,
            gap=to_ms(self.gap, "window.gap", allow_zero=False),
        )


def window_from_dict(spec: Mapping[str, Any]) -> Tumbling | Sliding | Session:
    """A window from its JSON description, e.g. ``{"type": "sliding", "size_ms": 3000, "slide_ms": 1000}``."""
    kind = spec.get("type")
    if kind == "tumbling":
        return Tumbling(spec.get("size_ms", 0))
    if kind == "sliding":
        return Sliding(spec.get("size_ms", 0), spec.get("slide_ms", 0))
    if kind == "session":
        return Session(spec.get("gap_ms", 0))
    raise ConfigError("window.type", f"unknown window type {kind!r}; known: tumbling, sliding, session")
