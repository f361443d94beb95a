"""Appending to and reading from one partition of the embedded log.

A partition is a directory of segment files named by their first offset
(``00000000000000000042.log``), each with a sparse index (``.idx``) of
``(offset, byte position, max timestamp so far)`` entries that speeds up seeks.
The index is advisory: frames are the truth, and a missing or short index only
makes a seek scan further.

Writers in any number of processes serialise through ``flock`` on the
partition's ``.lock`` file, held for one append. An append is acknowledged
once its single ``write()`` has returned: the bytes are in the OS page cache
and survive ``kill -9`` of the writer (``fsync="always"`` also survives power
loss). A writer killed mid-write leaves a torn frame at the tail; the next
writer to take the lock truncates it, so readers never see it. Only a torn
frame is ever truncated: a damaged frame (see `streamcore.io.log.segments.FrameScanner.next_body`) makes
readers and writers refuse with `LogCorruption`, and `streamcore log check`
finds every damaged frame.
"""

from __future__ import annotations

import bisect
import fcntl
import os
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from streamcore.base.records import Headers, RecordBatch
from streamcore.io.log.format import Frame, PackedValues, encode_frame, frame_count
from streamcore.io.log.segments import (
    INDEX_ENTRY,
    FrameScanner,
    list_segments,
    read_index,
    scan_valid_end,
    segment_path,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

INDEX_INTERVAL_BYTES = 256 * 1024
MAX_FRAME_RECORDS = 8192
FsyncPolicy = Literal["never", "always"]


class PartitionWriter:
    """Appends batches of records to one partition; safe across processes."""

    def __init__(
        self,
        directory: Path,
        *,
        segment_bytes: int = 64 << 20,
        fsync: FsyncPolicy = "never",
        retention_ms: int | None = None,
        retention_bytes: int | None = None,
    ) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.segment_bytes = segment_bytes
        self.fsync = fsync
        self.retention_ms = retention_ms
        self.retention_bytes = retention_bytes
        self._lock_fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        self._fd = -1
        self._base = 0
        self._end = 0
        self._next_offset = 0
        self._max_ts = -1
        self._last_index_pos = 0
        with self._locked():
            self._resync()

    # -- public ---------------------------------------------------------
    @property
    def next_offset(self) -> int:
        return self._next_offset

    def append(
        self,
        values: Sequence[bytes] | PackedValues,
        timestamps: Sequence[int],
        keys: Sequence[bytes | None] | None = None,
        headers: Sequence[Headers] | None = None,
    ) -> int:
        """Append records; return the offset of the first. Acknowledged when this returns."""
        if len(timestamps) != len(values):
            raise ValueError("values and timestamps differ in length")
        if not values:
            return self._next_offset
        with self._locked():
            self._sync_if_changed()
            first = self._next_offset
            for i in range(0, len(values), MAX_FRAME_RECORDS):
                j = i + MAX_FRAME_RECORDS
                self._write_frame(
                    values[i:j],
                    timestamps[i:j],
                    None if keys is None else keys[i:j],
                    None if headers is None else headers[i:j],
                )
            if self.fsync == "always":
                os.fsync(self._fd)
            return first

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    # -- internals ------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[None]:
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _write_frame(
        self,
        values: Sequence[bytes] | PackedValues,
        timestamps: Sequence[int],
        keys: Sequence[bytes | None] | None,
        headers: Sequence[Headers] | None,
    ) -> None:
        if self._end >= self.segment_bytes:
            self._roll()
        frame = encode_frame(self._next_offset, values, timestamps, keys, headers)
        view = memoryview(frame)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self._end += len(frame)
        self._next_offset += len(values)
        self._max_ts = max(self._max_ts, max(timestamps))
        if self._end - self._last_index_pos >= INDEX_INTERVAL_BYTES:
            self._write_index_entry()

    def _write_index_entry(self) -> None:
        with open(segment_path(self.directory, self._base, ".idx"), "ab") as idx:
            idx.write(INDEX_ENTRY.pack(self._next_offset, self._end, self._max_ts))
        self._last_index_pos = self._end

    def _open_segment(self, base: int) -> None:
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = os.open(segment_path(self.directory, base), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._base = base

    def _roll(self) -> None:
        self._write_index_entry()  # the closing entry: last offset, size and max timestamp
        if self.fsync == "always":
            os.fsync(self._fd)
        self._open_segment(self._next_offset)
        self._end = 0
        self._last_index_pos = 0
        self._max_ts = -1
        self._apply_retention()

    def _sync_if_changed(self) -> None:
        """Another writer may have appended or rolled, or died leaving a torn tail."""
        if os.fstat(self._fd).st_size != self._end or segment_path(self.directory, self._next_offset).exists():
            self._resync()

    def _resync(self) -> None:
        bases = list_segments(self.directory)
        base = bases[-1] if bases else 0
        # an empty newest segment is fine; its base is the next offset
        self._open_segment(base)
        end, next_offset, max_ts = scan_valid_end(self.directory, base)
        if os.fstat(self._fd).st_size > end:
            os.ftruncate(self._fd, end)  # a torn frame of a writer that died: never acknowledged
        self._end, self._next_offset, self._max_ts = end, next_offset, max_ts
        entries = read_index(self.directory, base)
        self._last_index_pos = entries[-1][1] if entries and entries[-1][1] <= end else 0

    def _apply_retention(self, now_ms: int | None = None) -> None:
        if self.retention_ms is None and self.retention_bytes is None:
            return
        import time

        now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        bases = list_segments(self.directory)
        closed = [b for b in bases if b != self._base]
        sizes = {b: segment_path(self.directory, b).stat().st_size for b in bases}
        total = sum(sizes.values())
        for base in closed:
            entries = read_index(self.directory, base)
            newest = entries[-1][2] if entries else -1
            too_old = self.retention_ms is not None and newest >= 0 and newest < now - self.retention_ms
            too_big = self.retention_bytes is not None and total > self.retention_bytes
            if not (too_old or too_big):
                break
            total -= sizes[base]
            segment_path(self.directory, base).unlink(missing_ok=True)
            segment_path(self.directory, base, ".idx").unlink(missing_ok=True)


class PartitionReader:
    """Reads one partition from a given offset; follows new appends and new segments."""

    def __init__(self, directory: Path, topic: str, partition: int, offset: int | None = None) -> None:
        self.directory = directory
        self.topic = topic
        self.partition = partition
        self.skipped_by_retention = 0
        self._scanner: FrameScanner | None = None
        self._base = 0
        self._pending: Frame | None = None
        self._next_offset = 0
        self.seek(offset)

    @property
    def position(self) -> int:
        """The offset of the next record this reader returns."""
        return self._next_offset

    def seek(self, offset: int | None) -> None:
        """Position at `offset` (None: the earliest record still retained)."""
        if self._scanner is not None:
            self._scanner.close()
            self._scanner = None
        self._pending = None
        bases = list_segments(self.directory)
        if not bases:
            self._base, self._next_offset = 0, offset or 0
            return
        earliest = bases[0]
        if offset is None or offset < earliest:
            if offset is not None:
                self.skipped_by_retention += earliest - offset
            offset = earliest
        base = bases[bisect.bisect_right(bases, offset) - 1]
        position = 0
        for entry_offset, pos, _ in read_index(self.directory, base):
            if entry_offset > offset:
                break
            position = pos
        self._base = base
        self._next_offset = offset
        self._scanner = FrameScanner(segment_path(self.directory, base), position)

    def read(self, max_records: int) -> RecordBatch | None:
        """Up to `max_records` consecutive records, or None if none are available yet."""
        frame = self._pending
        if frame is None:
            frame = self._next_frame()
            if frame is None:
                return None
        start = self._next_offset - frame.base_offset
        stop = min(len(frame), start + max_records)
        batch = RecordBatch(
            self.topic,
            self.partition,
            self._next_offset,
            frame.values[start:stop] if (start or stop < len(frame)) else frame.values,
            frame.timestamps[start:stop],
            None if frame.keys is None else frame.keys[start:stop],
            None if frame.headers is None else frame.headers[start:stop],
        )
        self._next_offset = frame.base_offset + stop
        self._pending = frame if stop < len(frame) else None
        return batch

    def close(self) -> None:
        if self._scanner is not None:
            self._scanner.close()
            self._scanner = None

    def _next_frame(self) -> Frame | None:
        while True:
            if self._scanner is None:
                path = segment_path(self.directory, self._base)
                if not path.exists():
                    if list_segments(self.directory):
                        self.seek(self._next_offset)  # first segment appeared, or ours was retained away
                        if self._scanner is None:
                            return None
                        continue
                    return None
                self._scanner = FrameScanner(path, 0)
            body = self._scanner.next_body()
            if body is None:
                last = self._finish_segment()
                if last is None:
                    return None
                if last is True:
                    continue  # moved on to the next segment
                body = last
            first, count = frame_count(body)
            if first + count <= self._next_offset:
                continue  # before the seek target
            if first > self._next_offset:
                self._next_offset = first  # records before `first` are gone
            return Frame(body)

    def _finish_segment(self) -> bytes | Literal[True] | None:
        """At the end of the current segment: its last frame, True once moved to the next one, or None.

        A newer segment exists only once a writer has finished this one (truncating any
        torn tail), so a frame completed since the last look is read first, and only then
        does the reader move on.
        """
        assert self._scanner is not None
        nxt = segment_path(self.directory, self._next_offset)
        if self._next_offset == self._base or not nxt.exists():
            return None
        body = self._scanner.next_body()
        if body is not None:
            return body
        self._scanner.close()
        self._base = self._next_offset
        self._scanner = FrameScanner(nxt, 0)
        return True
