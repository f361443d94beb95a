"""``log-damage``: flip a byte in, or cut into, the tail of the log: the run stops with a clear error, never skips.

A frame whose bytes changed (a disk or a copy gone wrong) fails its checksum; a run
that meets it must stop with an error naming the file and byte, having processed
exactly the records before it, and `streamcore log check` must name the damage. A cut
inside the last frame is what a writer killed mid-append leaves (a torn tail): that is
not damage but a frame never completed, so the run must process every whole record
before it and end normally. Both are checked, on a copy of the same input each.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from chaos.suite import Context, Verdict, scenario
from chaos.workload import accounted, generate, prepare, worker, worker_log
from streamcore.io.log import EmbeddedLog
from streamcore.testing import cli_command


@scenario("log-damage", "corrupt or truncate the log's tail: a clear stop, never a skipped record", ("embedded",))
def log_damage(context: Context, verdict: Verdict) -> None:
    lines = generate(max(3_000, context.events // 20), context.seed)
    flipped, torn = context.workdir / "flipped", context.workdir / "torn"
    for d in (flipped, torn):
        prepare(d, lines)
    partition = context.rnd.randrange(3)

    segment = _last_segment(flipped, partition)
    data = bytearray(segment.read_bytes())
    data[-3] ^= 0x01  # inside the last frame's records: its checksum no longer matches
    segment.write_bytes(bytes(data))
    proc = worker(flipped)
    code = proc.wait(timeout=300)
    log = worker_log(flipped)
    if code == 0:
        verdict.problems.append("the run over a damaged frame ended normally (it must stop)")
    if f"{segment}" not in log or "checksum mismatch" not in log:
        verdict.problems.append(f"the run's error does not name the damaged file and the checksum: {log[-300:]!r}")
    checked = subprocess.run(
        cli_command("log", "check", "--log-dir", str(flipped / "log")), capture_output=True, text=True, check=False
    )
    if checked.returncode != 1 or f"DAMAGED events/{partition}" not in checked.stdout:
        verdict.problems.append(f"log check did not name events/{partition}: {checked.stdout[-300:]!r}")

    segment = _last_segment(torn, partition)
    whole = _records(torn, partition)
    data = segment.read_bytes()
    segment.write_bytes(data[: len(data) - 5])  # a cut inside the last frame
    after = _records(torn, partition)
    proc = worker(torn)
    if proc.wait(timeout=300) != 0:
        verdict.problems.append(f"the run over a torn tail failed: {worker_log(torn)[-300:]!r}")
    per_stream, verdict.records_out, every = accounted(torn)
    verdict.records_in = sum(per_stream)
    expected = len(lines) - (whole - after)
    if any(n != expected for n in per_stream):
        verdict.problems.append(f"after a torn tail the streams read {per_stream} records, not {expected} each")
    if not every:
        verdict.problems.append("the run's summary does not account for every record")
    verdict.notes["torn_frame_records"] = whole - after


def _last_segment(workdir: Path, partition: int) -> Path:
    return sorted((workdir / "log" / "events" / str(partition)).glob("*.log"))[-1]


def _records(workdir: Path, partition: int) -> int:
    """Whole records the log's reader finds in `partition` (a torn last frame is not one)."""
    log = EmbeddedLog(workdir / "log")
    try:
        return log.end_offsets("events")[partition]
    finally:
        log.close()
