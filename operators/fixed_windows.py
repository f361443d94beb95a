"""Tumbling and sliding windows: fixed bounds, known when the event arrives.

Windows are kept in buckets by start (``start -> key -> state``), as a hand-written
loop would: the bucket of the current window is small and hot, timers are per bucket
(one heap entry per window start, not per window), and a bucket fires its windows in
key order. A window created after its bucket fired (an accepted late event of a new
key) is a straggler: it fires at the next watermark advance, like every window whose
end the watermark has passed.

A window's state is ``[accumulators, fired, next revision, epoch, persisted]``: the
epoch is the checkpoint interval in which it last changed, so a window joins the dirty
set once per interval rather than once per event; `persisted` says whether RocksDB
holds it, so a window created and purged between two checkpoints costs no tombstone.
Only the first three are checkpointed.
"""

from __future__ import annotations

from collections.abc import Iterable
from heapq import heappop, heappush
from typing import Any

from streamcore.base.codec import decode_state
from streamcore.dataflow.operator import LATE, OperatorContext, admit_any
from streamcore.state.writer import StateWriter

from .window_base import WindowBase, WindowShape

_NO_BUCKET: dict[str, list[Any]] = {}

# The tumbling hot path with built-in aggregations written in (see `fused`): the same
# steps as `FixedWindows._tumbling_process`, without a call per step.
_FUSED_TUMBLING = """
def process_tumbling(key, event, ts):
{extract}
    if check_future:
        admit(ts)
    start = ts - ts % size
    if start + size + lateness <= operator.watermark:
        return LATE
    bucket = buckets.get(start)
    state = None if bucket is None else bucket.get(key)
    if state is None:
        accs = {create}
{add_new}
        if bucket is not None and start + size > operator.watermark:  # the common case of `new_window`
            bucket[key] = [accs, False, 0, operator.epoch, False]
            dirty.add((key, start))
        else:
            new_window(key, start, accs)
        return None
    accs = state[0]
{add}
    epoch = operator.epoch
    if state[3] != epoch:
        state[3] = epoch
        dirty.add((key, start))
    if state[1]:
        emit_result(key, start, start + size, state)
    return None
"""


# The sliding hot path with built-in aggregations written in: the same steps as
# `FixedWindows.process`, in one pass (the fused add cannot fail once extract passed,
# so there is nothing to compute before committing), emitting in the same order.
_FUSED_SLIDING = """
def process_sliding(key, event, ts):
{extract}
    if check_future:
        admit(ts)
    watermark = operator.watermark
    closed_before = watermark - lateness
    epoch = operator.epoch
    start = ts - ts % slide
    lowest = ts - size
    accepted = False
    while start > lowest and start >= 0:
        end = start + size
        if end > closed_before:
            accepted = True
            bucket = buckets.get(start)
            state = None if bucket is None else bucket.get(key)
            if state is None:
                accs = {create}
{add_new}
                if bucket is not None and end > watermark:  # the common case of `new_window`
                    bucket[key] = [accs, False, 0, epoch, False]
                    dirty.add((key, start))
                else:
                    new_window(key, start, accs)
            else:
                accs = state[0]
{add}
                if state[3] != epoch:
                    state[3] = epoch
                    dirty.add((key, start))
                if state[1]:
                    emit_result(key, start, end, state)
        start -= slide
    return None if accepted else LATE
"""


class FixedWindows(WindowBase):
    """Windows ``[s, s+size)`` for every multiple ``s`` of `slide` (tumbling: slide == size)."""

    def __init__(self, spec: WindowShape, context: OperatorContext) -> None:
        super().__init__(spec, context)
        self.size = spec.size
        self.slide = spec.slide
        self.buckets: dict[int, dict[str, list[Any]]] = {}
        self.unfired: list[int] = []  # heap of bucket starts the watermark has not passed yet
        self.stragglers: list[tuple[int, str, int]] = []  # (end, key, start) created after their bucket fired
        self.purge_at: list[int] = []  # heap of bucket starts; purged at start + size + allowed lateness
        self.epoch = 0
        if self.slide == self.size:
            self.process = self._tumbling_process()  # type: ignore[method-assign]
        elif self.fused is not None:
            self.process = self._fused_process(_FUSED_SLIDING, "process_sliding", 4, 4)  # type: ignore[method-assign]

    def process(self, key: str, event: Any, ts: int) -> Any:
        """Sliding windows: the event belongs to ``size / slide`` windows."""
        values = self.extract(event)
        self.admit(ts)
        size, slide = self.size, self.slide
        closed_before = self.watermark - self.lateness  # a window is closed once its end <= this
        start = ts - ts % slide
        lowest = ts - size
        touched: list[tuple[int, list[Any] | None, list[Any]]] = []
        while start > lowest and start >= 0:
            if start + size > closed_before:
                state = self.buckets.get(start, _NO_BUCKET).get(key)
                touched.append((start, state, self.apply(self.create() if state is None else state[0], values)))
            start -= slide
        if not touched:
            return LATE
        # every aggregation succeeded: now commit the event to all its windows
        for start, state, accs in touched:
            if state is None:
                self._new_window(key, start, accs)
            else:
                state[0] = accs
                if state[3] != self.epoch:
                    state[3] = self.epoch
                    self.dirty.add((key, start))
                if state[1]:
                    self.emit_result(key, start, start + size, state)
        return None

    def _tumbling_process(self) -> Any:
        """`process` for tumbling windows (one window per event), the hot path.

        A closure, so the per-event code reads locals rather than attributes; it does
        what `process` does when ``slide == size``. With built-in aggregations the
        same steps are generated as one function (`_FUSED_TUMBLING`).
        """
        if self.fused is not None:
            return self._fused_tumbling_process()
        extract, apply, create, admit = self.extract, self.apply, self.create, self.admit
        buckets, dirty, new_window = self.buckets, self.dirty, self._new_window
        size, lateness, emit_result = self.size, self.lateness, self.emit_result
        check_future = admit is not admit_any
        operator = self

        def process_tumbling(key: str, event: Any, ts: int) -> Any:
            values = extract(event)
            if check_future:
                admit(ts)
            start = ts - ts % size
            if start + size + lateness <= operator.watermark:
                return LATE
            bucket = buckets.get(start)
            state = None if bucket is None else bucket.get(key)
            if state is None:
                new_window(key, start, apply(create(), values))
                return None
            state[0] = apply(state[0], values)
            epoch = operator.epoch
            if state[3] != epoch:
                state[3] = epoch
                dirty.add((key, start))
            if state[1]:
                emit_result(key, start, start + size, state)
            return None

        return process_tumbling

    def _fused_tumbling_process(self) -> Any:
        return self._fused_process(_FUSED_TUMBLING, "process_tumbling", 2, 1)

    def _fused_process(self, template: str, name: str, new_indent: int, indent: int) -> Any:
        """`template` with the fused aggregations' lines written in, compiled once per task."""
        fused = self.fused
        assert fused is not None
        source = template.format(
            extract=fused.inline("extract", 1),
            create=fused.create_expr,
            add_new=fused.inline("add", new_indent),
            add=fused.inline("add", indent),
        )
        namespace: dict[str, Any] = {
            **fused.namespace,
            "LATE": LATE,
            "check_future": self.admit is not admit_any,
            "admit": self.admit,
            "size": self.size,
            "slide": self.slide,
            "lateness": self.lateness,
            "operator": self,
            "buckets": self.buckets,
            "new_window": self._new_window,
            "dirty": self.dirty,
            "emit_result": self.emit_result,
        }
        exec(compile(source, f"<{name} {self.spec.name!r}>", "exec"), namespace)
        return namespace[name]

    def _new_window(self, key: str, start: int, accs: list[Any]) -> None:
        bucket = self.buckets.get(start)
        if bucket is None:
            bucket = self.buckets[start] = {}
            heappush(self.purge_at, start)
            if start + self.size > self.watermark:
                heappush(self.unfired, start)
        bucket[key] = [accs, False, 0, self.epoch, False]
        self.dirty.add((key, start))
        if start + self.size <= self.watermark:
            heappush(self.stragglers, (start + self.size, key, start))

    def on_watermark(self, watermark: float) -> None:
        self.watermark = watermark
        size, buckets = self.size, self.buckets
        # Stragglers end below the previous watermark, so they come first in (end, key, start) order.
        stragglers = self.stragglers
        while stragglers and stragglers[0][0] <= watermark:
            _, key, start = heappop(stragglers)
            state = buckets.get(start, _NO_BUCKET).get(key)
            if state is not None and not state[1]:
                self._fire(key, start, state)
        unfired, epoch, dirty, emit_result = self.unfired, self.epoch, self.dirty, self.emit_result
        while unfired and unfired[0] + size <= watermark:
            start = heappop(unfired)
            end = start + size
            bucket = buckets.get(start, _NO_BUCKET)
            for key in sorted(bucket):
                state = bucket[key]
                if not state[1]:  # as `_fire`, inline: a bucket fires thousands of windows at once
                    state[1] = True
                    if state[3] != epoch:
                        state[3] = epoch
                        dirty.add((key, start))
                    emit_result(key, start, end, state)
        purge_at, lateness = self.purge_at, self.lateness
        while purge_at and purge_at[0] + size + lateness <= watermark:
            start = heappop(purge_at)
            for key, state in buckets.pop(start, _NO_BUCKET).items():
                if state[4]:
                    dirty.add((key, start))  # delete it at the next checkpoint
                else:
                    dirty.discard((key, start))

    def on_end_of_input(self) -> None:
        due = sorted(
            (start + self.size, key, start)
            for start, bucket in self.buckets.items()
            for key, state in bucket.items()
            if not state[1]
        )
        for _, key, start in due:
            self._fire(key, start, self.buckets[start][key])

    def _fire(self, key: str, start: int, state: list[Any]) -> None:
        state[1] = True
        if state[3] != self.epoch:
            state[3] = self.epoch
            self.dirty.add((key, start))
        self.emit_result(key, start, start + self.size, state)

    # -- state ------------------------------------------------------------------
    def checkpoint(self, writer: StateWriter) -> None:
        buckets = self.buckets
        for key, start in self.dirty:
            raw_key = self.encode_key(key, start)
            state = buckets.get(start, _NO_BUCKET).get(key)
            if state is None:
                writer.delete(raw_key)
            else:
                writer.put(raw_key, self.encode_state(state[:3]))
                state[4] = True
        self.dirty.clear()
        self.epoch += 1

    def restore(self, entries: Iterable[tuple[bytes, bytes]]) -> None:
        for raw_key, raw_state in entries:
            key, (start,) = self.decode_key(raw_key, 1)
            accs, fired, revision = decode_state(raw_state)
            self.buckets.setdefault(start, {})[key] = [accs, fired, revision, -1, True]
        # Every bucket gets its timer back, even one whose windows all fired (at the end of
        # an earlier input): a new key may still open a window in it. Firing skips fired ones.
        self.unfired = sorted(self.buckets)  # a sorted list is a heap
        self.purge_at = sorted(self.buckets)

    def state_entries(self) -> int:
        return sum(len(bucket) for bucket in self.buckets.values())
