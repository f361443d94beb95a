"""The project's reference model of the event-time contract: slow, sequential, and built to be read.

    expected(case) -> {"results": [...], "late": [...], "dlq": [...]}

It follows ``SEMANTICS.md`` arrival by arrival, but it does not model firing. At the end
of the input the watermark is +inf, so every window that stands fires with its final
aggregate: the results are exactly the final aggregates of the windows that stand, and a
window's revisions do not change them. What the order of arrivals does decide is which
events are late (the watermark at their arrival) and which sessions merge. The shared
oracle (``../shared/tck/oracle.py``) fires and purges step by step; two models built
differently that agree on every case are evidence for both, and a test holds them to it.

A recovery case needs nothing of its own here: the contract says a recovered run's
outputs equal an uninterrupted run's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from chaos.conformance.aggregates import Accumulator, aggregated_fields
from chaos.conformance.records import Event, Rejected, read
from chaos.conformance.settings import check_job

NEG_INF = -math.inf


@dataclass
class Window:
    key: str
    start: int
    end: int
    acc: Accumulator


@dataclass
class Watermarks:
    """Per-partition watermarks, partition activity and the operator's watermark W."""

    partitions: int
    idle_timeout_ms: int | None
    first_at: int | None = None
    per_partition: list[float] = field(default_factory=list)
    last_arrival: list[int | None] = field(default_factory=list)
    current: float = NEG_INF

    def __post_init__(self) -> None:
        self.per_partition = [NEG_INF] * self.partitions
        self.last_arrival = [None] * self.partitions

    def arrive(self, p: int, at: int) -> None:
        """Step 1: partition `p` is active as of `at`, and W is recomputed there."""
        if self.first_at is None:
            self.first_at = at
        self.last_arrival[p] = at
        self.recompute(at)

    def advance(self, p: int, ts: int, max_out_of_orderness_ms: int, at: int) -> None:
        """Step 5: an accepted event moves its partition's watermark, then W."""
        self.per_partition[p] = max(self.per_partition[p], ts - max_out_of_orderness_ms)
        self.recompute(at)

    def recompute(self, at: int) -> None:
        active = [wm for p, wm in enumerate(self.per_partition) if not self._idle(p, at)]
        if active:  # every partition idle: W stays where it is
            self.current = max(self.current, min(active))

    def _idle(self, p: int, at: int) -> bool:
        if self.idle_timeout_ms is None:
            return False
        last = self.last_arrival[p]
        since = self.first_at if last is None else last
        assert since is not None
        return at - since >= self.idle_timeout_ms


class Model:
    """One keyed window operator over the case's partitions."""

    def __init__(self, job: dict[str, Any], partitions: int) -> None:
        self.job = job
        self.window = job["window"]
        self.lateness = job["allowed_lateness_ms"]
        self.aggs = job["aggs"]
        self.aggregated = aggregated_fields(self.aggs)
        self.watermarks = Watermarks(partitions, job.get("idle_timeout_ms"))
        self.windows: dict[tuple[str, int, int], Window] = {}
        """Every window that stands, open or purged (a purged one keeps its final values)."""
        self.late: set[tuple[int, int]] = set()
        self.dlq: set[tuple[int, int, str]] = set()

    def closed(self, end: int) -> bool:
        return self.watermarks.current >= end + self.lateness

    def arrival(self, p: int, offset: int, at: int, text: str) -> None:
        self.watermarks.arrive(p, at)
        try:
            event = read(text, self.job["key"], self.job["ts"], self.aggregated)
            skew = self.job.get("max_future_skew_ms")
            if skew is not None and event.ts > at + skew:
                raise Rejected("future_timestamp")
        except Rejected as rejected:
            self.dlq.add((p, offset, rejected.reason))
            return
        if not self._accept(event):
            self.late.add((p, offset))
        self.watermarks.advance(p, event.ts, self.job["max_out_of_orderness_ms"], at)

    def _accept(self, event: Event) -> bool:
        """Add `event` to its open windows; False when every one of them is closed (late)."""
        if self.window["type"] == "session":
            return self._accept_session(event)
        bounds = [(s, s + self.window["size_ms"]) for s in self._starts(event.ts)]
        open_bounds = [(s, e) for s, e in bounds if not self.closed(e)]
        for start, end in open_bounds:
            window = self.windows.get((event.key, start, end))
            if window is None:
                window = self.windows[(event.key, start, end)] = Window(event.key, start, end, Accumulator(self.aggs))
            window.acc.add(event.fields)
        return bool(open_bounds)

    def _starts(self, ts: int) -> range:
        size = self.window["size_ms"]
        slide = self.window.get("slide_ms", size)  # tumbling: a slide of its size
        last = ts - ts % slide
        first = max(0, last - size + slide)
        return range(first, last + 1, slide)

    def _accept_session(self, event: Event) -> bool:
        start, end = event.ts, event.ts + self.window["gap_ms"]
        if self.closed(end):  # judged on the event's own window, before any merge
            return False
        acc = Accumulator(self.aggs)
        acc.add(event.fields)
        merged = True
        while merged:  # union with every open session of the key it overlaps, repeatedly
            merged = False
            for bounds, other in list(self.windows.items()):
                if other.key != event.key or self.closed(other.end):
                    continue
                if other.start < end and start < other.end:
                    del self.windows[bounds]  # superseded: it leaves the results
                    acc = other.acc.combined(acc)
                    start, end = min(start, other.start), max(end, other.end)
                    merged = True
        self.windows[(event.key, start, end)] = Window(event.key, start, end, acc)
        return True

    def outputs(self) -> dict[str, Any]:
        results = [
            {"key": w.key, "start": w.start, "end": w.end, **w.acc.values()}
            for _, w in sorted(self.windows.items(), key=lambda item: (item[0][2], item[0][0], item[0][1]))
        ]
        return {
            "results": results,
            "late": [{"p": p, "offset": o} for p, o in sorted(self.late)],
            "dlq": [{"p": p, "offset": o, "reason": r} for p, o, r in sorted(self.dlq)],
        }


def expected(case: dict[str, Any]) -> dict[str, Any]:
    """The outputs the contract requires of `case` (its job must be inside the contract's ranges)."""
    check_job(case["job"])
    model = Model(case["job"], case["partitions"])
    offsets = [0] * case["partitions"]
    for arrival in case["arrivals"]:
        p = arrival["p"]
        model.arrival(p, offsets[p], arrival["at"], arrival["data"])
        offsets[p] += 1
    return model.outputs()
