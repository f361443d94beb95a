"""Session windows: an event opens ``[ts, ts+gap)`` and merges with every overlapping window of its key."""

from __future__ import annotations

from collections.abc import Iterable
from heapq import heapify, heappop, heappush
from typing import Any

from streamcore.base.codec import decode_state
from streamcore.dataflow.operator import LATE, OperatorContext
from streamcore.state.writer import StateWriter

from .window_base import WindowBase, WindowShape


class SessionWindows(WindowBase):
    """Per key, non-overlapping sessions that grow and merge as events arrive.

    Lateness is judged on the event's own ``[ts, ts+gap)`` before merging. Merged
    accumulators combine with `merge`, the event's first and then the overlapping
    sessions by ascending start, so a recovered run adds floats in the order an
    uninterrupted one does (bit for bit); a merged-away session that had fired is
    retracted; a fired session that grows past the watermark fires again when the
    watermark reaches its new end.
    """

    def __init__(self, spec: WindowShape, context: OperatorContext) -> None:
        super().__init__(spec, context)
        self.gap = spec.gap
        # key -> {(start, end): [accumulators, fired, next revision]}
        self.sessions: dict[str, dict[tuple[int, int], list[Any]]] = {}
        self.fire_at: list[tuple[int, str, int]] = []  # (end, key, start); stale entries are skipped
        self.purge_at: list[tuple[int, str, int, int]] = []  # (end + lateness, key, start, end)

    def process(self, key: str, event: Any, ts: int) -> Any:
        values = self.extract(event)
        self.admit(ts)
        start, end = ts, ts + self.gap
        if self.watermark >= end + self.lateness:
            return LATE
        accs = self.apply(self.create(), values)
        wins = self.sessions.get(key)
        # By start, not by the dict's order: a restored key's sessions come back in another
        # order than a live run made them, and float sums must combine in one order.
        overlapping = [] if wins is None else sorted(w for w in wins if w[0] < end and start < w[1])
        fired, revision = False, 0
        for bounds in overlapping:
            accs = self.merged(accs, wins[bounds][0])  # type: ignore[index]
        # every aggregation succeeded: now commit
        if wins is None:
            wins = self.sessions[key] = {}
        merged_away = []
        for bounds in overlapping:
            state = wins.pop(bounds)
            self.dirty.add((key, *bounds))
            fired = fired or state[1]
            revision = max(revision, state[2])
            if state[1]:
                merged_away.append((bounds, state[2]))
            start, end = min(start, bounds[0]), max(end, bounds[1])
        state = [accs, fired, revision]
        wins[(start, end)] = state
        self.dirty.add((key, start, end))
        emit_now = fired and self.watermark >= end
        for bounds, rev in merged_away:
            if not (emit_now and bounds == (start, end)):
                self.emit_retraction(key, bounds[0], bounds[1], rev)
                revision = max(revision, rev + 1)
        state[2] = revision
        if emit_now:
            self.emit_result(key, start, end, state)
        else:
            state[1] = False  # not fired yet, or grew past the watermark: fires when W reaches its end
            heappush(self.fire_at, (end, key, start))
        heappush(self.purge_at, (end + self.lateness, key, start, end))
        return None

    def on_watermark(self, watermark: float) -> None:
        self.watermark = watermark
        sessions, fire_at = self.sessions, self.fire_at
        while fire_at and fire_at[0][0] <= watermark:
            end, key, start = heappop(fire_at)
            state = sessions.get(key, {}).get((start, end))
            if state is None or state[1]:
                continue  # merged into a larger session, or already fired
            state[1] = True
            self.dirty.add((key, start, end))
            self.emit_result(key, start, end, state)
        purge_at = self.purge_at
        while purge_at and purge_at[0][0] <= watermark:
            _, key, start, end = heappop(purge_at)
            wins = sessions.get(key)
            if wins is not None and wins.pop((start, end), None) is not None:
                self.dirty.add((key, start, end))
                if not wins:
                    del sessions[key]

    def on_end_of_input(self) -> None:
        due = sorted(
            (end, key, start)
            for key, wins in self.sessions.items()
            for (start, end), state in wins.items()
            if not state[1]
        )
        for end, key, start in due:
            state = self.sessions[key][(start, end)]
            state[1] = True
            self.dirty.add((key, start, end))
            self.emit_result(key, start, end, state)

    # -- state ------------------------------------------------------------------
    def checkpoint(self, writer: StateWriter) -> None:
        sessions = self.sessions
        for key, start, end in self.dirty:
            raw_key = self.encode_key(key, start, end)
            state = sessions.get(key, {}).get((start, end))
            if state is None:
                writer.delete(raw_key)
            else:
                writer.put(raw_key, self.encode_state(state))
        self.dirty.clear()

    def restore(self, entries: Iterable[tuple[bytes, bytes]]) -> None:
        for raw_key, raw_state in entries:
            key, (start, end) = self.decode_key(raw_key, 2)
            state = decode_state(raw_state)
            self.sessions.setdefault(key, {})[(start, end)] = state
            if not state[1]:
                self.fire_at.append((end, key, start))
            self.purge_at.append((end + self.lateness, key, start, end))
        heapify(self.fire_at)
        heapify(self.purge_at)

    def state_entries(self) -> int:
        return sum(len(w) for w in self.sessions.values())
