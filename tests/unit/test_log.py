"""The embedded log: framing, seeks, segments, torn tails, corruption, retention, many writers."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import sys
import time
from itertools import accumulate
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamcore.base.errors import LogCorruption, TopicConflict, TopicNotFound
from streamcore.base.records import Batches, RecordBatch
from streamcore.io.embedded import EmbeddedSink, EmbeddedSource
from streamcore.io.log import EmbeddedLog, TopicConfig
from streamcore.io.log.format import Frame, PackedValues, encode_frame
from streamcore.io.log.partition import MAX_FRAME_RECORDS, PartitionReader, PartitionWriter
from streamcore.io.log.segments import list_segments, segment_path
from streamcore.io.transport import Control


@settings(max_examples=200)
@given(
    records=st.lists(
        st.tuples(
            st.binary(max_size=64),
            st.integers(min_value=-(2**62), max_value=2**62),
            st.none() | st.binary(max_size=16),
            st.lists(st.tuples(st.text(max_size=8), st.binary(max_size=8)), max_size=3).map(tuple),
        ),
        min_size=1,
        max_size=30,
    ),
    base=st.integers(min_value=0, max_value=2**40),
)
def test_frame_roundtrip(records: list, base: int) -> None:
    values, stamps, keys, headers = (list(col) for col in zip(*records, strict=True))
    frame = encode_frame(base, values, stamps, keys, headers)
    decoded = Frame(frame[12:])
    assert decoded.base_offset == base
    assert decoded.values == values
    assert list(decoded.timestamps) == stamps
    assert (decoded.keys or [None] * len(values)) == keys
    assert (decoded.headers or [()] * len(values)) == [tuple(h) for h in headers]


@given(values=st.lists(st.binary(max_size=40), max_size=50), cut=st.integers(0, 50))
def test_packed_values_encode_the_frames_a_list_of_values_does(values: list[bytes], cut: int) -> None:
    """The embedded sink buffers outputs packed (no bytes object per record until the flush)."""
    packed = PackedValues()
    for value in values:
        packed.append(value)
    stamps = list(range(len(values)))
    assert encode_frame(7, packed, stamps) == encode_frame(7, values, stamps)
    assert encode_frame(0, packed[:cut], stamps[:cut]) == encode_frame(0, values[:cut], stamps[:cut])
    assert encode_frame(0, packed[cut:], stamps[cut:]) == encode_frame(0, values[cut:], stamps[cut:])


def test_a_sink_flush_longer_than_a_frame_writes_every_record(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    sink = EmbeddedSink(log, "t")
    values = [b"v%d" % i for i in range(MAX_FRAME_RECORDS * 2 + 5)]
    for i, value in enumerate(values):
        sink.add(None, value, i)
    sink.flush_now()
    assert [r.value for r in log.read_all("t")] == values
    assert sink.pending == 0


def make_log(tmp_path: Path, partitions: int = 1, **config: int) -> EmbeddedLog:
    log = EmbeddedLog(tmp_path / "log")
    log.create_topic(TopicConfig("t", partitions, **config))
    return log


def test_append_read_and_seek_mid_frame(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    writer = log.writer("t", 0)
    assert writer.append([b"a", b"b", b"c"], [1, 2, 3], [b"k", None, b"k"]) == 0
    assert writer.append([b"d"], [4], headers=[(("h", b"v"),)]) == 3
    reader = log.reader("t", 0, 1)
    batch = reader.read(10)
    assert batch is not None and batch.base_offset == 1 and batch.values == [b"b", b"c"]
    assert batch.keys == [None, b"k"]
    nxt = reader.read(10)
    assert nxt is not None and nxt.record(0).header("h") == b"v" and nxt.base_offset == 3
    assert reader.read(10) is None  # nothing more yet: the reader waits, it does not fail
    writer.append([b"e"], [5])
    later = reader.read(10)
    assert later is not None and later.values == [b"e"]


def test_segments_roll_and_reads_cross_them(tmp_path: Path) -> None:
    log = make_log(tmp_path, segment_bytes=4096)
    writer = log.writer("t", 0)
    for i in range(200):
        writer.append([b"x" * 100 + str(i).encode()], [i])
    assert len(list_segments(log.partition_dir("t", 0))) > 3
    records = log.read_all("t", offset=150)
    assert [r.offset for r in records] == list(range(150, 200))
    assert records[0].value.endswith(b"150")
    assert log.end_offsets("t") == {0: 200}


def test_torn_tail_is_invisible_then_truncated_by_the_next_writer(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    log.writer("t", 0).append([b"ok"], [1])
    path = segment_path(log.partition_dir("t", 0), 0)
    torn = encode_frame(1, [b"never acknowledged"], [2])[:-5]
    with open(path, "ab") as f:
        f.write(torn)
    reader = log.reader("t", 0)
    assert reader.read(10).values == [b"ok"]  # type: ignore[union-attr]
    assert reader.read(10) is None  # the torn frame is not returned
    fresh = EmbeddedLog(tmp_path / "log")
    assert fresh.writer("t", 0).append([b"next"], [3]) == 1  # truncated, offset 1 reused
    assert reader.read(10).values == [b"next"]  # type: ignore[union-attr]


def test_corruption_in_the_middle_is_an_error(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    writer = log.writer("t", 0)
    writer.append([b"first"], [1])
    writer.append([b"second"], [2])
    path = segment_path(log.partition_dir("t", 0), 0)
    data = bytearray(path.read_bytes())
    data[20] ^= 0xFF  # inside the first frame's body
    path.write_bytes(bytes(data))
    with pytest.raises(LogCorruption, match="checksum"):
        log.reader("t", 0).read(10)


def _segment_with_frames(log: EmbeddedLog, count: int) -> tuple[Path, list[int]]:
    """`count` one-record frames in partition 0; returns the segment and each frame's first byte."""
    writer = log.writer("t", 0)
    path = segment_path(log.partition_dir("t", 0), 0)
    starts = []
    for i in range(count):
        starts.append(path.stat().st_size)
        writer.append([f"record {i}".encode()], [i])
    return path, starts


def _read_until_stopped(reader: PartitionReader) -> int:
    """Records read until the reader has nothing more (or raises)."""
    seen = 0
    while (batch := reader.read(1000)) is not None:
        seen += len(batch)
    return seen


def _flip(path: Path, position: int) -> None:
    data = bytearray(path.read_bytes())
    data[position] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_flipped_byte_in_the_last_frame_is_corruption_not_a_torn_write(tmp_path: Path) -> None:
    """A complete frame whose checksum fails is damage even at the very end: readers and writers refuse."""
    log = make_log(tmp_path)
    path, starts = _segment_with_frames(log, 500)
    _flip(path, starts[-1] + 30)
    size = path.stat().st_size
    reader = log.reader("t", 0)
    assert len(reader.read(1000)) == 1  # type: ignore[arg-type]
    with pytest.raises(LogCorruption, match="checksum") as damage:
        _read_until_stopped(reader)
    assert reader.position == 499 and damage.value.position == starts[-1] and damage.value.path == str(path)
    with pytest.raises(LogCorruption):
        EmbeddedLog(tmp_path / "log").writer("t", 0).append([b"next"], [9])
    assert path.stat().st_size == size  # nothing truncated


def test_a_damaged_frame_followed_by_valid_ones_is_corruption_and_nothing_is_truncated(tmp_path: Path) -> None:
    """Damage to a frame's length field makes it look incomplete; the valid frames after it say otherwise."""
    log = make_log(tmp_path)
    path, starts = _segment_with_frames(log, 20)
    _flip(path, starts[15] + 6)  # the high byte of the length: it now claims ~16 MB
    size = path.stat().st_size
    reader = log.reader("t", 0)
    with pytest.raises(LogCorruption, match="valid frame follows") as damage:
        _read_until_stopped(reader)
    assert reader.position == 15 and damage.value.position == starts[15]
    with pytest.raises(LogCorruption):
        EmbeddedLog(tmp_path / "log").writer("t", 0).append([b"next"], [9])
    assert path.stat().st_size == size


def test_bytes_that_cannot_begin_a_frame_are_corruption_but_zeros_at_the_tail_are_torn(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    path, _ = _segment_with_frames(log, 3)
    with open(path, "ab") as f:
        f.write(b"\0" * 4096)  # what a crash can leave where data was to go
    assert _read_until_stopped(log.reader("t", 0)) == 3
    assert EmbeddedLog(tmp_path / "log").writer("t", 0).append([b"next"], [9]) == 3  # zeros truncated
    with open(path, "ab") as f:
        f.write(b"garbage that is not a frame")
    with pytest.raises(LogCorruption, match="bad frame magic"):
        EmbeddedLog(tmp_path / "log").writer("t", 0)


def _append_many(root: str, frames: int) -> None:
    writer = EmbeddedLog(Path(root)).writer("t", 0)
    for i in range(frames):
        writer.append([b"x" * (i % 3000 + 1)] * (i % 7 + 1), [i] * (i % 7 + 1))


def test_a_reader_following_a_writer_process_never_takes_a_frame_in_progress_for_damage(tmp_path: Path) -> None:
    """The checks that tell damage from a torn tail look again at bytes a writer is still adding:
    a header that was short a moment ago, or a frame that completed since, is not damage."""
    log = make_log(tmp_path)
    frames = 3000
    writer = multiprocessing.get_context("spawn").Process(target=_append_many, args=(str(log.root), frames))
    writer.start()
    reader = log.reader("t", 0)
    expected = sum(i % 7 + 1 for i in range(frames))
    seen, deadline = 0, time.monotonic() + 60
    while seen < expected and time.monotonic() < deadline:
        batch = reader.read(10_000)
        if batch is None:
            time.sleep(0)
        else:
            seen += len(batch)
    writer.join(30)
    assert seen == expected


def test_retention_drops_old_segments_and_readers_skip_ahead(tmp_path: Path) -> None:
    log = make_log(tmp_path, segment_bytes=4096, retention_bytes=10_000)
    writer = log.writer("t", 0)
    for i in range(300):
        writer.append([b"y" * 200], [i])
    assert log.start_offsets("t")[0] > 0
    reader = log.reader("t", 0, 0)
    first = reader.read(1)
    assert first is not None and first.base_offset == log.start_offsets("t")[0]
    assert reader.skipped_by_retention == first.base_offset


def test_topics_are_checked(tmp_path: Path) -> None:
    log = make_log(tmp_path, partitions=2)
    with pytest.raises(TopicConflict):
        log.create_topic(TopicConfig("t", 3))
    with pytest.raises(TopicNotFound, match="does not exist"):
        log.topic("nope")
    assert [t.name for t in log.topics()] == ["t"]


def test_keyed_records_go_to_a_stable_partition(tmp_path: Path) -> None:
    log = make_log(tmp_path, partitions=4)
    producer = log.producer("t")
    producer.send_many([b"%d" % i for i in range(40)], [0] * 40, [b"same"] * 40)
    ends = log.end_offsets("t")
    assert sorted(ends.values()) == [0, 0, 0, 40]


def _writer_process(root: str, worker: int, batches: int, acked: multiprocessing.Queue) -> None:
    writer = PartitionWriter(Path(root))
    for i in range(batches):
        values = [f"{worker}:{i}:{j}".encode() for j in range(10)]
        first = writer.append(values, [i] * 10)
        acked.put((worker, i, first))


def test_concurrent_writer_processes_never_tear_or_lose(tmp_path: Path) -> None:
    log = make_log(tmp_path, segment_bytes=8192)
    root = str(log.partition_dir("t", 0))
    ctx = multiprocessing.get_context("spawn")
    acked = ctx.Queue()
    procs = [ctx.Process(target=_writer_process, args=(root, w, 50, acked)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    acks = [acked.get(timeout=5) for _ in range(150)]
    records = log.read_all("t")
    assert [r.offset for r in records] == list(range(1500))
    by_value = {r.value: r.offset for r in records}
    for worker, i, first in acks:
        assert by_value[f"{worker}:{i}:0".encode()] == first  # the offset the writer was told
        assert all(f"{worker}:{i}:{j}".encode() in by_value for j in range(10))


def _writer_until_killed(root: str, ready: multiprocessing.Event, acked_path: str) -> None:
    writer = PartitionWriter(Path(root))
    with open(acked_path, "a") as acks:
        i = 0
        while True:
            writer.append([f"r{i}".encode() * 50], [i])
            acks.write(f"{i}\n")
            acks.flush()
            i += 1
            if i == 50:
                ready.set()


def test_kill_9_of_a_writer_loses_no_acknowledged_record(tmp_path: Path) -> None:
    log = make_log(tmp_path, segment_bytes=16384)
    root = str(log.partition_dir("t", 0))
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    acked_path = str(tmp_path / "acked.txt")
    proc = ctx.Process(target=_writer_until_killed, args=(root, ready, acked_path))
    proc.start()
    assert ready.wait(30)
    os.kill(proc.pid, 9)
    proc.join()
    acked = [int(x) for x in Path(acked_path).read_text().split()]
    fresh = EmbeddedLog(tmp_path / "log")
    fresh.writer("t", 0).append([b"after"], [0])  # a new writer repairs any torn tail
    values = [r.value for r in fresh.read_all("t")]
    assert values[-1] == b"after"
    assert values[: len(acked)] == [f"r{i}".encode() * 50 for i in acked]


def _append_one(root: str) -> None:
    EmbeddedLog(Path(root)).producer("t").send_many([b"{}"], [1], partition=1)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify wake-ups are Linux only (elsewhere: polling)")
def test_a_waiting_source_wakes_as_soon_as_another_process_appends(tmp_path: Path) -> None:
    log = make_log(tmp_path, partitions=2)

    async def scenario() -> tuple[float, RecordBatch | Control | None]:
        source = EmbeddedSource(log, "t", until_end=False)
        await source.start({})
        assert await source.fetch(10) is None
        writer = multiprocessing.get_context("spawn").Process(target=_append_one, args=(str(log.root),))
        started = time.perf_counter()
        writer.start()
        # A wake-up says records *may* have been appended: the writer's first event (its
        # segment file created, or a frame half written) can come before the record can
        # be read. So wait and fetch until the record is there, as the runner does; each
        # wait without a wake-up would be a 30 s poll interval.
        batch = None
        while batch is None and time.perf_counter() - started < 30.0:
            await source.wait(30.0)
            batch = await source.fetch(10)
        waited = time.perf_counter() - started
        await source.close()
        writer.join(10)
        return waited, batch

    waited, batch = asyncio.run(scenario())
    assert isinstance(batch, RecordBatch) and batch.partition == 1 and batch.values == [b"{}"]
    assert waited < 10.0  # the writer process's start-up, not the timeout


def _merged_by_scanning(
    log: EmbeddedLog, frames: list[list[int]], tick: int, max_records: int
) -> list[tuple[int, int, int]]:
    """The merge order as the contract of `EmbeddedSource` states it, by scanning every partition.

    `frames[p]` holds the sizes of partition p's frames. A partition's records are taken
    in read-aheads of up to `max_records` within one frame, and a batch never crosses one.
    """
    partitions = log.topic("t").partitions
    stamps = [[r.timestamp for r in log.read_all("t", p)] for p in range(partitions)]
    ends = [list(accumulate(sizes)) for sizes in frames]
    cursors, heads_end = [0] * partitions, [0] * partitions
    out = []
    while True:
        for p in range(partitions):
            if cursors[p] == heads_end[p] and cursors[p] < len(stamps[p]):  # read ahead
                frame_end = next(e for e in ends[p] if e > cursors[p])
                heads_end[p] = min(frame_end, cursors[p] + max_records)
        heads = sorted((stamps[p][cursors[p]] // tick, p) for p in range(partitions) if cursors[p] < heads_end[p])
        if not heads:
            return out
        (_, p), second = heads[0], heads[1] if len(heads) > 1 else None
        start = cursors[p]
        stop = min(heads_end[p], start + max_records)
        if second is not None:
            bound = (second[0] + 1 if p < second[1] else second[0]) * tick
            stop = max(start + 1, next((j for j in range(start, stop) if stamps[p][j] >= bound), stop))
        out.append((p, start, stop - start))
        cursors[p] = stop


@settings(max_examples=60, deadline=None)
@given(
    appends=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 300), st.integers(1, 4)), min_size=1, max_size=80),
    max_records=st.sampled_from([1, 3, 50]),
)
def test_the_source_merges_partitions_in_the_stated_order(
    appends: list[tuple[int, int, int]], max_records: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Looking only at partitions whose next record changed (a heap) gives the order of a full scan."""
    log = make_log(tmp_path_factory.mktemp("merge"), partitions=6)
    frames: list[list[int]] = [[] for _ in range(6)]
    clock = 0
    for p, step, count in appends:
        clock += step
        log.writer("t", p).append([b"{}"] * count, [clock + j * 40 for j in range(count)])
        frames[p].append(count)

    async def records() -> list[tuple[int, int]]:
        source = EmbeddedSource(log, "t", until_end=True)
        await source.start({})
        out = []
        while isinstance(fetched := await source.fetch(max_records), RecordBatch | Batches):
            runs = fetched.runs if isinstance(fetched, Batches) else [fetched]
            assert sum(len(run) for run in runs) <= max_records
            out.extend((run.partition, run.base_offset + j) for run in runs for j in range(len(run)))
        await source.close()
        return out

    expected = _merged_by_scanning(log, frames, 100, max_records)
    assert asyncio.run(records()) == [(p, offset + j) for p, offset, n in expected for j in range(n)]
