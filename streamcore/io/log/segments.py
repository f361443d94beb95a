"""Segment files of a partition: their names, sparse indexes, and reading frames back.

A partition is a directory of segment files named by their first offset
(``00000000000000000042.log``), each with a sparse index (``.idx``) of
``(offset, byte position, max timestamp so far)`` entries that speeds up seeks.
The index is advisory: frames are the truth. `FrameScanner` reads frames and tells a
torn write at the tail (never acknowledged) from damage (`LogCorruption`).
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

from streamcore.base.errors import LogCorruption
from streamcore.io.log.format import HEADER, HEADER_SIZE, MAGIC, frame_count, max_timestamp

INDEX_ENTRY = struct.Struct("<QQq")
READ_CHUNK = 1 << 20


def segment_path(directory: Path, base_offset: int, suffix: str = ".log") -> Path:
    return directory / f"{base_offset:020d}{suffix}"


def list_segments(directory: Path) -> list[int]:
    """Base offsets of the partition's segments, oldest first."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    return sorted(int(n[:-4]) for n in names if n.endswith(".log") and n[:-4].isdigit())


def end_offset(directory: Path) -> int:
    """The next offset the partition would assign: its newest segment scanned from its last index entry."""
    bases = list_segments(directory)
    return scan_valid_end(directory, bases[-1])[1] if bases else 0


def check_partition(directory: Path) -> tuple[int, list[LogCorruption]]:
    """Read every frame of every segment: (records found, the first damage of each damaged segment)."""
    records, damage = 0, []
    for base in list_segments(directory):
        scanner = FrameScanner(segment_path(directory, base), 0)
        try:
            while (body := scanner.next_body()) is not None:
                records += frame_count(body)[1]
        except LogCorruption as exc:
            damage.append(exc)
        finally:
            scanner.close()
    return records, damage


def read_index(directory: Path, base_offset: int) -> list[tuple[int, int, int]]:
    """Complete index entries of a segment; a torn trailing entry is ignored."""
    try:
        data = segment_path(directory, base_offset, ".idx").read_bytes()
    except FileNotFoundError:
        return []
    usable = len(data) - len(data) % INDEX_ENTRY.size
    return [INDEX_ENTRY.unpack_from(data, i) for i in range(0, usable, INDEX_ENTRY.size)]


class FrameScanner:
    """Reads consecutive frames of one segment file through a read-ahead buffer."""

    def __init__(self, path: Path, position: int) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDONLY)
        self.position = position
        self._buf = b""
        self._buf_start = position

    def close(self) -> None:
        os.close(self.fd)

    def _ensure(self, start: int, size: int) -> bytes | None:
        end = start + size
        buf_end = self._buf_start + len(self._buf)
        if start >= self._buf_start and end <= buf_end:
            return self._buf
        want = max(size, READ_CHUNK)
        data = os.pread(self.fd, want, start)
        self._buf, self._buf_start = data, start
        return data if len(data) >= size else None

    def next_body(self) -> bytes | None:
        """The body of the frame at `position`, or None if it is not completely on disk yet.

        None means the bytes from `position` on are the beginning of a frame still being
        written, or torn by a writer that died (or zeros a crash left past the data):
        nothing acknowledged is there. Damage raises `LogCorruption` naming the file and
        byte, and nothing is skipped: a complete frame whose checksum fails (even the
        last one), bytes that cannot begin a frame, or an incomplete frame that a valid
        frame follows (its length field was damaged). After None the read-ahead is
        dropped: a torn tail may be replaced by a new frame.
        """
        body = self._read_frame()
        if body is None:
            self._buf, self._buf_start = b"", self.position
        return body

    def _read_frame(self) -> bytes | None:
        pos = self.position
        buf = self._ensure(pos, HEADER_SIZE)
        if buf is None:
            if self._buf:  # some bytes, not a whole header (at the end of the file: nothing to check)
                self._check_torn(pos)
            return None
        rel = pos - self._buf_start
        magic, length, crc = HEADER.unpack_from(buf, rel)
        if magic != MAGIC:
            self._check_torn(pos)
            return None
        buf = self._ensure(pos, HEADER_SIZE + length)
        if buf is None:
            self._check_incomplete(pos, length)
            return None
        rel = pos - self._buf_start
        body = buf[rel + HEADER_SIZE : rel + HEADER_SIZE + length]
        if zlib.crc32(body) != crc:
            raise LogCorruption(
                str(self.path), pos, f"frame checksum mismatch (a complete frame of {HEADER_SIZE + length} bytes)"
            )
        self.position = pos + HEADER_SIZE + length
        return body

    def _rest(self, start: int) -> bytes:
        """The bytes of the file from `start` to its end."""
        size = os.fstat(self.fd).st_size
        parts, pos = [], start
        while pos < size:
            data = os.pread(self.fd, min(size - pos, READ_CHUNK), pos)
            if not data:
                break
            parts.append(data)
            pos += len(data)
        return b"".join(parts)

    def _check_torn(self, pos: int) -> None:
        """Raise unless the bytes from `pos` could be the start of a frame being written, or zeros.

        They are read again here, and a writer may have added to them since the caller
        looked: a frame that begins with its magic is in progress (or complete by now, and
        the next read checks its checksum), never damage.
        """
        rest = self._rest(pos)
        if not rest or not rest.strip(b"\0"):
            return  # the end of the file, or zeros a crash left where data was to go
        if rest[: len(MAGIC)] == MAGIC[: len(rest)]:
            return  # the beginning of a frame
        raise LogCorruption(str(self.path), pos, f"bad frame magic {rest[:4]!r} ({len(rest)} bytes to the end)")

    def _check_incomplete(self, pos: int, length: int) -> None:
        """An incomplete frame is a write in progress, or torn, only if no valid frame follows it.

        The bytes are read again from one look at the file's size: if the frame is complete
        by now, a writer finished it (the next read checks it). If it is still incomplete,
        nothing a writer appended after it can be in what was read, so a valid frame there
        means the header's length is damaged.
        """
        rest = self._rest(pos + HEADER_SIZE)
        if len(rest) >= length:
            return
        at = rest.find(MAGIC)
        while at >= 0:
            if _valid_frame_at(rest, at):
                raise LogCorruption(
                    str(self.path),
                    pos,
                    f"the frame's header claims {length} bytes but a valid frame follows at byte "
                    f"{pos + HEADER_SIZE + at}: the header is damaged",
                )
            at = rest.find(MAGIC, at + 1)


def _valid_frame_at(data: bytes, at: int) -> bool:
    if len(data) - at < HEADER_SIZE:
        return False
    length: int
    crc: int
    _, length, crc = HEADER.unpack_from(data, at)
    end = at + HEADER_SIZE + length
    return end <= len(data) and zlib.crc32(data[at + HEADER_SIZE : end]) == crc


def scan_valid_end(directory: Path, base_offset: int) -> tuple[int, int, int]:
    """(valid byte length, next offset, max timestamp) of a segment, scanning past its last index entry.

    Past the valid length there is at most a torn frame; damage raises `LogCorruption`.
    """
    entries = read_index(directory, base_offset)
    path = segment_path(directory, base_offset)
    position, next_offset, max_ts = 0, base_offset, -1
    size = path.stat().st_size
    for offset, pos, ts in reversed(entries):
        if pos <= size:
            position, next_offset, max_ts = pos, offset, ts
            break
    scanner = FrameScanner(path, position)
    try:
        while True:
            body = scanner.next_body()  # damage raises LogCorruption: nothing past it is cut
            if body is None:
                break
            first, count = frame_count(body)
            next_offset = first + count
            max_ts = max(max_ts, max_timestamp(body))
        return scanner.position, next_offset, max_ts
    finally:
        scanner.close()
