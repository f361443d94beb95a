"""Event time: where timestamps come from, and the watermark of a set of input partitions.

The watermark rules (see ``docs/semantics.md`` and the TCK's SEMANTICS.md):

* each partition p has ``wm[p] = max ts seen on p - max_out_of_orderness`` (-inf at first);
* a partition is idle once ``at - last_arrival[p] >= idle_timeout`` (a partition that has
  had no arrival counts from the first arrival of the job);
* ``W = max(W, min(wm[p] for non-idle p))``; when every partition is idle, W stays;
* W never goes back, and is part of every checkpoint (at the end of input every window
  fires, but W itself is not set to +inf: see `Task.finish`).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from streamcore.base.durations import Duration, optional_ms, to_ms
from streamcore.base.errors import ConfigError

NEG_INF = -math.inf


@dataclass(frozen=True, slots=True)
class EventTime:
    """How a stream reads event time and derives its watermark.

    field: the event field holding the timestamp, an integer of epoch milliseconds >= 0.
    max_out_of_orderness: how far behind the newest timestamp of a partition an event may be
        and still be on time (bounded out-of-orderness).
    idle_timeout: a partition that sends nothing for this long (processing time) no longer
        holds the watermark back. None: partitions never go idle.
    max_future_skew: events whose timestamp is further than this ahead of processing time are
        dead-lettered (``future_timestamp``), so one skewed clock cannot drag the watermark.
        None: no check.
    """

    field: str
    max_out_of_orderness: Duration = 0
    idle_timeout: Duration | None = None
    max_future_skew: Duration | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.field, str) or not self.field:
            raise ConfigError("event_time.field", "the timestamp field is missing")
        # validate eagerly so errors name the setting when the job is built
        self.out_of_orderness_ms  # noqa: B018
        self.idle_timeout_ms  # noqa: B018
        self.max_future_skew_ms  # noqa: B018

    @property
    def out_of_orderness_ms(self) -> int:
        return to_ms(self.max_out_of_orderness, "event_time.max_out_of_orderness")

    @property
    def idle_timeout_ms(self) -> int | None:
        return optional_ms(self.idle_timeout, "event_time.idle_timeout")

    @property
    def max_future_skew_ms(self) -> int | None:
        return optional_ms(self.max_future_skew, "event_time.max_future_skew", allow_zero=True)


def _encode_time(value: float) -> int | None:
    return None if value == NEG_INF else int(value)


def _decode_time(value: int | None) -> float:
    return NEG_INF if value is None else value


class WatermarkTracker:
    """Per-partition watermarks, min-combined, with idleness; W is monotonic.

    Call `on_arrival` once per arrival (or per batch of one partition that arrived at
    one processing time) before its records, and `observe` with each accepted record's
    timestamp after it was processed. Both return True when W advanced.
    """

    __slots__ = ("_idle", "_in_sync", "_ooo", "last_arrival", "live", "partitions", "t0", "watermark", "wm")

    def __init__(self, partitions: Sequence[int], out_of_orderness_ms: int, idle_timeout_ms: int | None) -> None:
        self.partitions = tuple(partitions)
        self._ooo = out_of_orderness_ms
        self._idle = idle_timeout_ms
        self.wm: dict[int, float] = dict.fromkeys(self.partitions, NEG_INF)
        self.last_arrival: dict[int, int | None] = dict.fromkeys(self.partitions)
        self.t0: int | None = None
        self.watermark: float = NEG_INF
        self.live: tuple[int, ...] = self.partitions
        """The partitions not idle: W is the minimum of their watermarks."""
        self._in_sync = False
        """W is the minimum of the live partitions' watermarks (see `on_arrival`)."""

    @property
    def out_of_orderness_ms(self) -> int:
        return self._ooo

    def on_arrival(self, partition: int, at: int) -> bool:
        """Partition `partition` is active as of processing time `at`; recompute W."""
        if self.t0 is None:
            self.t0 = at
        self.last_arrival[partition] = at
        if self._idle is None:
            # No partition goes idle: the live set never changes, and `observe` keeps W at
            # its minimum, so only the first arrival (after a start or restore) can move W.
            if self._in_sync:
                return False
            self._in_sync = True
            return self._recompute()
        t0, idle = self.t0, self._idle
        self.live = tuple(
            p for p in self.partitions if at - (t0 if (last := self.last_arrival[p]) is None else last) < idle
        )
        return self._recompute()

    def moves_above(self, partition: int) -> float:
        """The smallest event time above which an event of `partition` may move its watermark."""
        return self.wm[partition] + self._ooo

    def observe(self, partition: int, ts: int) -> bool:
        """An accepted record of `partition` had event time `ts`; return True if W advanced."""
        candidate = ts - self._ooo
        wm = self.wm
        old = wm[partition]
        if candidate <= old:
            return False
        wm[partition] = candidate
        if partition not in self.live or old > self.watermark:
            # W is never below the live partitions' minimum, so a partition that was above W
            # is not the minimum: raising it cannot move W (saves the minimum over all of them).
            return False
        if len(self.live) == 1:
            if candidate > self.watermark:
                self.watermark = candidate
                return True
            return False
        return self._recompute()

    def _recompute(self) -> bool:
        if not self.live:
            return False  # every partition idle: W stays as it is
        wm = self.wm
        low = min(wm[p] for p in self.live)
        if low > self.watermark:
            self.watermark = low
            return True
        return False

    # -- checkpoint -------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """Plain data for the checkpoint."""
        return {
            "watermark": _encode_time(self.watermark),
            "wm": {str(p): _encode_time(v) for p, v in self.wm.items()},
            "last_arrival": {str(p): v for p, v in self.last_arrival.items()},
            "t0": self.t0,
        }

    def restore(self, snapshot: Mapping[str, Any]) -> None:
        self.watermark = _decode_time(snapshot["watermark"])
        for p in self.partitions:
            self.wm[p] = _decode_time(snapshot["wm"].get(str(p)))
            self.last_arrival[p] = snapshot["last_arrival"].get(str(p))
        self.t0 = snapshot["t0"]
        self.live = self.partitions
        self._in_sync = False


SECONDS_RANGE = (10**9, 10**11)
"""Event times in here are 2001-2286 read as seconds, but January 1970 as milliseconds."""
FAR_PAST_MS = 10 * 365 * 86_400_000


def time_unit_warning(watermark: float, now_ms: int) -> str | None:
    """A word for a watermark that suggests event times are not epoch milliseconds, or None."""
    if watermark in (NEG_INF, math.inf):
        return None
    if SECONDS_RANGE[0] <= watermark < SECONDS_RANGE[1]:
        return (
            f"event times look like seconds (the watermark is {int(watermark)}); streamcore reads them as "
            "milliseconds since the epoch: multiply them by 1000"
        )
    if watermark < now_ms - FAR_PAST_MS:
        moment = dt.datetime.fromtimestamp(max(0.0, watermark) / 1000, dt.UTC).isoformat(timespec="seconds")
        return (
            f"event times are more than ten years old (the watermark is {int(watermark)}, {moment}); "
            "streamcore reads them as milliseconds since the epoch"
        )
    return None
