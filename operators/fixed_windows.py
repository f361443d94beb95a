"""Tumbling and sliding windows: fixed bounds, known when the event arrives."""

from __future__ import annotations

from collections.abc import Iterable
from heapq import heappop, heappush
from typing import Any

import orjson

from streamcore.operator import LATE, OperatorContext, StateWriter

from .window_operator import WindowAggregateSpec, WindowBase


class FixedWindows(WindowBase):
    """Windows ``[s, s+size)`` for every multiple ``s`` of `slide` (tumbling: slide == size)."""

    def __init__(self, spec: WindowAggregateSpec, context: OperatorContext) -> None:
        super().__init__(spec, context)
        self.size = spec.size
        self.slide = spec.slide
        # (key, start) -> [accumulators, fired, next revision]
        self.windows: dict[tuple[str, int], list[Any]] = {}
        self.fire_at: list[tuple[int, str, int]] = []  # (end, key, start) of windows not yet fired
        self.purge_at: list[tuple[int, str, int]] = []  # (end + allowed lateness, key, start)

    def process(self, key: str, event: Any, ts: int) -> Any:
        values = self.extract(event)
        self.admit(ts)
        size, slide, lateness = self.size, self.slide, self.lateness
        closed_before = self.watermark - lateness  # a window is closed once end <= this
        start = ts - ts % slide
        lowest = ts - size
        touched: list[tuple[tuple[str, int], list[Any], list[Any]]] = []
        while start > lowest and start >= 0:
            if start + size > closed_before:
                wkey = (key, start)
                state = self.windows.get(wkey)
                accs = self.create() if state is None else state[0]
                touched.append((wkey, state, self.added(accs, values)))
            start -= slide
        if not touched:
            return LATE
        # every aggregation succeeded: now commit the event to all its windows
        windows, dirty = self.windows, self.dirty
        for wkey, state, accs in touched:
            dirty.add(wkey)
            if state is None:
                windows[wkey] = [accs, False, 0]
                end = wkey[1] + size
                heappush(self.fire_at, (end, key, wkey[1]))
                heappush(self.purge_at, (end + lateness, key, wkey[1]))
            else:
                state[0] = accs
                if state[1]:
                    self.emit_result(key, wkey[1], wkey[1] + size, state)
        return None

    def on_watermark(self, watermark: float) -> None:
        self.watermark = watermark
        fire_at, windows, dirty = self.fire_at, self.windows, self.dirty
        while fire_at and fire_at[0][0] <= watermark:
            end, key, start = heappop(fire_at)
            state = windows.get((key, start))
            if state is None or state[1]:
                continue
            state[1] = True
            dirty.add((key, start))
            self.emit_result(key, start, end, state)
        purge_at = self.purge_at
        while purge_at and purge_at[0][0] <= watermark:
            _, key, start = heappop(purge_at)
            if windows.pop((key, start), None) is not None:
                dirty.add((key, start))

    # -- state ------------------------------------------------------------------
    def checkpoint(self, writer: StateWriter) -> None:
        windows = self.windows
        for wkey in self.dirty:
            raw_key = self.encode_key(wkey[0], wkey[1])
            state = windows.get(wkey)
            if state is None:
                writer.delete(raw_key)
            else:
                writer.put(raw_key, self.encode_state(state))
        self.dirty.clear()

    def restore(self, entries: Iterable[tuple[bytes, bytes]]) -> None:
        size, lateness = self.size, self.lateness
        for raw_key, raw_state in entries:
            key, (start,) = self.decode_key(raw_key, 1)
            state = orjson.loads(raw_state)
            self.windows[(key, start)] = state
            if not state[1]:
                self.fire_at.append((start + size, key, start))
            self.purge_at.append((start + size + lateness, key, start))
        self.fire_at.sort()
        self.purge_at.sort()

    def state_entries(self) -> int:
        return len(self.windows)
