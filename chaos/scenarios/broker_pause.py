"""``broker-pause``: SIGSTOP the broker for a few seconds under input, then SIGCONT it.

Two workers share the input's partitions while a producer sends; the broker process is
frozen for `PAUSE_S` (no answer, no error: every connection just hangs), then thawed.
Producer, workers and group must ride it out: it passes when the final windows equal
what was produced (nothing lost, nothing counted twice) and both workers stop cleanly.
The recovery time is from the thaw until every window is right.
"""

from __future__ import annotations

import os
import signal
import threading
import time

from chaos.kafka_workload import KafkaRun, stop_all
from chaos.suite import Context, Verdict, scenario

PAUSE_S = 5.0


@scenario("broker-pause", "SIGSTOP the Kafka broker under input for 5 s, then SIGCONT it", ("kafka",))
def broker_pause(context: Context, verdict: Verdict) -> None:
    if context.broker_pid is None:
        raise RuntimeError("broker-pause needs the broker's process (the suite starts one)")
    run = KafkaRun(context.broker.removeprefix("kafka://"), context.workdir)
    workers = [run.worker("w0"), run.worker("w1")]
    try:
        time.sleep(3)  # both joined
        count = max(2_000, context.events // 20)
        producing = threading.Thread(target=run.produce, args=(count, 6.0))
        producing.start()
        time.sleep(2 + context.rnd.uniform(0, 1))
        os.kill(context.broker_pid, signal.SIGSTOP)
        time.sleep(PAUSE_S)
        os.kill(context.broker_pid, signal.SIGCONT)
        thawed = time.monotonic()
        producing.join(120)
        run.judge(verdict, since=thawed)
    finally:
        os.kill(context.broker_pid, signal.SIGCONT)  # never leave the suite's broker frozen
        stop_all(workers, verdict)
