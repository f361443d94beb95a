"""``disk-full``: the disk under the log and the state fills up mid-stream, then space comes back.

Log and state live on a small tmpfs of the scenario's own. Before the worker starts, a
file fills the disk but for a random part (20-80%) of what an uninterrupted run writes,
so the disk runs out mid-stream, at a different moment each run. The worker must stop with an error that says
the disk is full (or wait), never lose or half-write what it had acknowledged; then the
file is removed and the worker restarted. It passes when the final windows, late
records and dead letters equal an uninterrupted run's on the same input, and every
record is accounted for. Mounting a tmpfs needs root: elsewhere the run is skipped, and
says so.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from chaos.suite import Context, Verdict, scenario
from chaos.workload import (
    finish,
    generate,
    judge_against,
    prepare,
    uninterrupted,
    worker,
    worker_log,
)

SIZE_MIB = 48


@scenario("disk-full", "fill the disk under the log and state mid-stream, then free it and restart", ("embedded",))
def disk_full(context: Context, verdict: Verdict) -> None:
    disk = context.workdir / "disk"
    disk.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        verdict.skipped = "mounting a tmpfs needs root and mount(8)"
        return
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE_MIB}m", "tmpfs", str(disk)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        verdict.skipped = f"could not mount a tmpfs: {mounted.stderr.strip()}"
        return
    try:
        _run(context, verdict, disk)
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True, check=False)


def _bytes_under(directory: Path) -> int:
    return sum(f.stat().st_size for f in directory.rglob("*") if f.is_file())


def _fill(filler: Path, leave: int) -> None:
    """Write `filler` until the disk has only `leave` bytes free (or none)."""
    with contextlib.suppress(OSError), open(filler, "wb") as f:
        while True:
            stat = os.statvfs(filler.parent)
            free = stat.f_bavail * stat.f_frsize
            if free <= leave:
                return
            f.write(b"\0" * min(1 << 20, max(stat.f_frsize, free - leave)))
            f.flush()


def _run(context: Context, verdict: Verdict, disk: Path) -> None:
    lines = generate(max(20_000, context.events // 5), context.seed)
    reference, full = context.workdir / "reference", context.workdir / "run"
    full.mkdir()
    for part in ("log", "state"):  # on the small disk; the worker's own log is not, so it can say why it stopped
        (disk / part).mkdir()
        (full / part).symlink_to(disk / part)
    for d in (reference, full):
        prepare(d, lines)
    before = _bytes_under(reference)
    uninterrupted(reference)
    writes = _bytes_under(reference) - before
    filler = disk / "filler"
    _fill(filler, leave=int(writes * context.rnd.uniform(0.2, 0.8)))
    verdict.notes["space_left"] = f"{os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize} of {writes} bytes"
    proc = worker(full)
    try:
        code = proc.wait(timeout=20)
    except subprocess.TimeoutExpired:  # it waits for space: that is allowed too
        proc.send_signal(signal.SIGKILL)
        code = proc.wait()
        verdict.notes["while_full"] = "waited (killed after 20 s)"
    else:
        verdict.notes["while_full"] = f"exited {code}"
        if code == 0:
            verdict.problems.append("the run finished before the disk filled: the scenario tested nothing")
        elif "streamcore: error: the disk is full" not in worker_log(full):
            verdict.problems.append(f"the worker stopped on a full disk without saying so: {worker_log(full)[-300:]!r}")
    filler.unlink()
    started = time.monotonic()
    finish(worker(full), full)
    verdict.recovery_s = round(time.monotonic() - started, 2)
    judge_against(verdict, reference, full)
