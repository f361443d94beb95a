"""``zombie``: SIGSTOP a worker past its session timeout, let the group move its partitions, SIGCONT it.

The frozen worker still believes it owns its partitions. While it is away the group
gives them to the other worker, which restores their state from the changelog and goes
on. Thawed, the zombie may try to finish what it was doing: commit offsets, write its
changelog, emit results. Those must be fenced (its generation is gone) or harmless:
it passes when the final windows equal what was produced and both workers stop cleanly.
"""

from __future__ import annotations

import os
import signal
import threading
import time

from chaos.kafka_workload import SESSION_TIMEOUT_MS, KafkaRun, stop_all
from chaos.suite import Context, Verdict, scenario


@scenario("zombie", "SIGSTOP a worker past its session timeout, let the group rebalance, SIGCONT it", ("kafka",))
def zombie(context: Context, verdict: Verdict) -> None:
    run = KafkaRun(context.broker.removeprefix("kafka://"), context.workdir)
    workers = [run.worker("w0"), run.worker("w1")]
    try:
        time.sleep(3)  # both joined
        count = max(2_000, context.events // 20)
        producing = threading.Thread(target=run.produce, args=(count, 8.0))
        producing.start()
        time.sleep(2 + context.rnd.uniform(0, 1))
        frozen = workers[1]
        os.kill(frozen.pid, signal.SIGSTOP)
        time.sleep(3 * SESSION_TIMEOUT_MS / 1000)  # the group evicts it; the other takes over
        os.kill(frozen.pid, signal.SIGCONT)
        thawed = time.monotonic()
        producing.join(120)
        run.judge(verdict, since=thawed)
    finally:
        for w in workers:
            if w.poll() is None:
                os.kill(w.pid, signal.SIGCONT)
        stop_all(workers, verdict)
