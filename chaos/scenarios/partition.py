"""``partition``: cut the network between the workers (and producer) and the broker, then heal it.

The scenario starts a broker of its own that advertises a proxy's port (`chaos.proxy`),
so every connection of every client goes through the proxy. While two workers share
the input and a producer sends, the proxy either blackholes every connection (bytes
stop, nothing is refused: clients find out by their timeouts) or resets them all
(RST, and new connections refused), for `CUT_S`, three session timeouts: the group
loses every member. Then it heals. It passes when the final windows equal what was
produced and both workers stop cleanly; the recovery time is from the heal until every
window is right.
"""

from __future__ import annotations

import threading
import time

from chaos.kafka_workload import SESSION_TIMEOUT_MS, KafkaRun, stop_all
from chaos.proxy import Proxy
from chaos.suite import Context, Verdict, scenario
from streamcore.testing import free_port, start_tansu

CUT_S = 3 * SESSION_TIMEOUT_MS / 1000


@scenario("partition", "blackhole or reset every connection to the broker for 3 session timeouts", ("kafka",))
def partition(context: Context, verdict: Verdict) -> None:
    rnd = context.rnd
    mode = ("blackhole", "reset")[context.seed % 2]  # runs alternate between the two
    verdict.notes["mode"] = mode
    proxy_port = free_port()
    broker, address = start_tansu(advertised_port=proxy_port)
    proxy = Proxy(proxy_port, int(address.rsplit(":", 1)[1]))
    workers = []
    try:
        run = KafkaRun(f"127.0.0.1:{proxy_port}", context.workdir)
        workers = [run.worker("w0"), run.worker("w1")]
        time.sleep(3)  # both joined
        producing = threading.Thread(target=run.produce, args=(max(2_000, context.events // 20), 8.0))
        producing.start()
        time.sleep(2 + rnd.uniform(0, 1))
        proxy.blackhole() if mode == "blackhole" else proxy.reset()
        time.sleep(CUT_S)
        proxy.heal()
        healed = time.monotonic()
        producing.join(180)
        run.judge(verdict, since=healed, timeout_s=120)
    finally:
        proxy.heal()
        stop_all(workers, verdict)
        proxy.close()
        broker.terminate()
        broker.wait(10)
