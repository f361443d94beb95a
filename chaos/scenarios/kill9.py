"""``kill9``: SIGKILL the worker at random moments mid-stream, restart it, compare with an uninterrupted run.

Both runs read the same generated input from their own embedded log. The chaotic one
is killed `KILLS` times, each once it is processing and after a random further part of
the time an uninterrupted run took, and restarted from its last checkpoint. It passes
when its final windows, late records and dead letters equal the uninterrupted run's,
every record was accounted for, and at least one kill landed mid-stream.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

from chaos.suite import Context, Verdict, scenario
from chaos.workload import (
    accounted,
    differences,
    finish,
    generate,
    outcome,
    prepare,
    uninterrupted,
    wait_for_progress,
    worker,
)

KILLS = 3


@scenario("kill9", "kill -9 the worker at random moments mid-stream and restart it", ("embedded",))
def kill9(context: Context, verdict: Verdict) -> None:
    lines = generate(context.events, context.seed)
    reference, chaotic = context.workdir / "reference", context.workdir / "chaotic"
    for d in (reference, chaotic):
        prepare(d, lines)
    run_s = uninterrupted(reference)
    started = time.monotonic()
    landed = run_with_kills(chaotic, KILLS, context.rnd, run_s)
    verdict.recovery_s = round(time.monotonic() - started - run_s, 2)  # what the kills cost in all
    verdict.notes["kills_landed"] = landed
    _, _, every = accounted(chaotic)  # the last run's summary: it resumed after the last kill
    per_stream, verdict.records_out, _ = accounted(reference)  # the input, read once per stream
    verdict.records_in = sum(per_stream)
    if landed == 0:
        verdict.problems.append("no kill landed mid-stream: the input is too small for this machine")
    if not every:
        verdict.problems.append("the last run's summary does not account for every record")
    verdict.problems += differences(outcome(reference), outcome(chaotic))


def run_with_kills(workdir: Path, kills: int, rnd: random.Random, run_s: float) -> int:
    """Run to completion, killing the worker `kills` times; return how many kills landed mid-stream.

    A restarted worker has less left to do, so a later kill may find it finished.
    """
    landed = 0
    for _ in range(kills):
        proc = worker(workdir)
        wait_for_progress(proc, workdir, timeout_s=60)
        time.sleep(rnd.uniform(0, 0.25) * run_s)
        if proc.poll() is not None:
            break  # it finished before we could kill it
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        landed += 1
    finish(worker(workdir), workdir)
    return landed
