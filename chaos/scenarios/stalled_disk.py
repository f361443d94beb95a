"""``stalled-disk``: every write to the disk under a worker's state (and log) stops for a while.

The disk is `chaos.stalling_fs`, a FUSE passthrough whose writes, fsyncs, creates and
renames block inside the kernel while the stall lasts, as on a network disk that stops
answering; reads go on. Embedded: log and state are on it, and the stall comes
mid-stream. Kafka: one of two workers keeps its state on it while events arrive, and the
stall lasts three session timeouts. The worker must wait (or lose its partitions to the
other, and be fenced when it wakes), not fail, not buffer without bound, and not lose or
double anything. It passes when the stall met the worker's writes, the worker's peak
RSS stayed under `RSS_BOUND_MIB`, and the final windows (with late records and dead
letters, embedded) equal an uninterrupted run's, or what was produced (Kafka).
"""

from __future__ import annotations

import threading
import time

from chaos.kafka_workload import SESSION_TIMEOUT_MS, KafkaRun, peak_rss_kib, stop_all
from chaos.stalling_disk import StallingDisk
from chaos.suite import Context, Verdict, scenario
from chaos.workload import finish, generate, judge_against, prepare, uninterrupted, wait_for_progress
from chaos.workload import worker as embedded_worker

RSS_BOUND_MIB = 250
EMBEDDED_STALL_S = 4.0


@scenario("stalled-disk", "stall every write to a worker's disk mid-stream, then release it", ("embedded", "kafka"))
def stalled_disk(context: Context, verdict: Verdict) -> None:
    with StallingDisk.mounted(context.workdir / "disk", verdict) as disk:
        if disk is None:
            return
        if context.broker == "embedded":
            _embedded(context, verdict, disk)
        else:
            _kafka(context, verdict, disk)
        verdict.notes["calls_held"] = disk.hits
        if not disk.hits:
            verdict.problems.append("the stall met no write of the worker's: the scenario tested nothing")


def _check_rss(verdict: Verdict, kib: int) -> None:
    verdict.peak_rss_kib = kib
    if kib > RSS_BOUND_MIB * 1024:
        verdict.problems.append(f"peak RSS {kib // 1024} MiB is over the {RSS_BOUND_MIB} MiB bound")


def _embedded(context: Context, verdict: Verdict, disk: StallingDisk) -> None:
    lines = generate(max(40_000, context.events // 2), context.seed)
    reference, stalled = context.workdir / "reference", context.workdir / "run"
    stalled.mkdir()
    for part in ("log", "state"):  # on the stalling disk; the worker's own log is not
        (disk.mount / part).mkdir()
        (stalled / part).symlink_to(disk.mount / part)
    for d in (reference, stalled):
        prepare(d, lines)
    uninterrupted(reference)
    proc = embedded_worker(stalled)
    wait_for_progress(proc, stalled, timeout_s=60)
    time.sleep(context.rnd.uniform(0, 0.3))
    disk.stall()
    time.sleep(EMBEDDED_STALL_S)
    if proc.poll() is not None and disk.hits:
        verdict.problems.append(f"the worker exited ({proc.returncode}) while its disk was stalled")
    _check_rss(verdict, peak_rss_kib(proc) if proc.poll() is None else 0)
    disk.release()
    released = time.monotonic()
    finish(proc, stalled)
    verdict.recovery_s = round(time.monotonic() - released, 2)
    judge_against(verdict, reference, stalled)


def _kafka(context: Context, verdict: Verdict, disk: StallingDisk) -> None:
    run = KafkaRun(context.broker.removeprefix("kafka://"), context.workdir)
    workers = [run.worker("w0"), run.worker("w1", state_root=disk.mount)]
    try:
        time.sleep(3)  # both joined
        producing = threading.Thread(target=run.produce, args=(max(2_000, context.events // 20), 10.0))
        producing.start()
        time.sleep(2 + context.rnd.uniform(0, 1))
        disk.stall()
        time.sleep(3 * SESSION_TIMEOUT_MS / 1000)
        _check_rss(verdict, max(peak_rss_kib(w) for w in workers))
        disk.release()
        released = time.monotonic()
        producing.join(120)
        run.judge(verdict, since=released)
    finally:
        disk.release()
        stop_all(workers, verdict)
