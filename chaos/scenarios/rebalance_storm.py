"""``rebalance-storm``: workers join and leave over and over while input flows.

Two workers run throughout; a third and a fourth are started and stopped (SIGTERM, or
SIGKILL now and then) every `PERIOD_S` while the producer sends, so partitions move
again and again, each time with a checkpoint, a changelog restore, or both. It passes
when the final windows equal what was produced and the two steady workers stop cleanly.
"""

from __future__ import annotations

import signal
import threading
import time

from chaos.kafka_workload import KafkaRun, stop_all
from chaos.suite import Context, Verdict, scenario

PERIOD_S = 2.5
STORM_S = 12.0


@scenario("rebalance-storm", "workers join and leave (SIGTERM, sometimes SIGKILL) every 2.5 s under input", ("kafka",))
def rebalance_storm(context: Context, verdict: Verdict) -> None:
    rnd = context.rnd
    run = KafkaRun(context.broker.removeprefix("kafka://"), context.workdir)
    steady = [run.worker("w0"), run.worker("w1")]
    moves = 0
    try:
        time.sleep(3)
        producing = threading.Thread(target=run.produce, args=(max(3_000, context.events // 15), STORM_S))
        producing.start()
        deadline = time.monotonic() + STORM_S
        while time.monotonic() < deadline:
            guest = run.worker(f"guest{moves}")
            time.sleep(PERIOD_S * rnd.uniform(0.5, 1.5))
            guest.send_signal(signal.SIGKILL if rnd.random() < 0.3 else signal.SIGTERM)
            guest.wait(60)
            moves += 1
        producing.join(120)
        stormed = time.monotonic()
        verdict.notes["guests"] = moves
        run.judge(verdict, since=stormed, timeout_s=120)
    finally:
        stop_all(steady, verdict, "the steady workers")
