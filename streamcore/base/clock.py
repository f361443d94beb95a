"""Processing time, injected: operator code never reads the wall clock itself."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Source of processing time in epoch milliseconds."""

    def now_ms(self) -> int: ...


class SystemClock:
    """The wall clock (``time.time``), in epoch milliseconds."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class ManualClock:
    """A clock that only moves when told to; tests and the TCK drive it."""

    def __init__(self, start_ms: int = 0) -> None:
        self._now = start_ms

    def now_ms(self) -> int:
        return self._now

    def set(self, now_ms: int) -> None:
        """Move to `now_ms`; processing time never goes back."""
        if now_ms < self._now:
            raise ValueError(f"processing time cannot go back from {self._now} to {now_ms}")
        self._now = now_ms

    def advance(self, ms: int) -> None:
        self.set(self._now + ms)
