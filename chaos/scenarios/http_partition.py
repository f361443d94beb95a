"""``http-partition``: cut the link two workers forward feature reads over, then heal it.

Both workers serve the app's feature view over HTTP, and a read sent to a worker that
does not own the card is forwarded to the owner. Worker w1 advertises a proxy
(`chaos.proxy`) in front of its HTTP port, so every read w0 forwards to it crosses the
proxy, while Kafka traffic does not. A reader polls w0 for every card while events
arrive; the proxy blackholes (bytes stop) or resets (RST, new connections refused) the
link for `CUT_S`, alternating by run. It passes when, during the cut, each read of one of
w1's cards was answered, within the forward timeout and a margin, with 504 (blackhole)
or 503 and ``Retry-After`` (reset), never with a value and never by hanging, while w0's
own cards kept answering 200; after the heal, forwarded reads answer 200 again; once the
input is processed every card read through w0 equals w1's own answer; and the final
windows equal what was produced. The recovery time is from the heal to the first
forwarded 200.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

import orjson

from chaos.kafka_workload import KafkaRun, stop_all
from chaos.proxy import Proxy
from chaos.suite import Context, Verdict, scenario
from streamcore.serving.http import FORWARD_TIMEOUT_S, SERVED_BY
from streamcore.testing import free_port

CUT_S = 6.0
CARDS = [f"c{i}" for i in range(40)]  # the cards `KafkaRun.produce` sends
ANSWER_MARGIN_S = 1.5
"""How much longer than the forward timeout a read may take to be answered (a loaded machine)."""


@dataclass
class Read:
    card: str
    started: float
    seconds: float
    status: int
    forwarded: bool
    """Answered by the owner through w0 (the answer names the worker that served it)."""
    retry_after: bool
    values: dict[str, Any] | None


def read(port: int, card: str) -> Read:
    """GET /features/CARD on the worker at `port`: its status, how long it took, who served it."""
    started = time.monotonic()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/features/{card}?view=card")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            status, headers, body = answer.status, answer.headers, answer.read()
    except urllib.error.HTTPError as error:
        status, headers, body = error.code, error.headers, error.read()
    values = None
    if status == 200:
        features = orjson.loads(body)["views"][0]["features"]
        values = {name: f["value"] for name, f in features.items()}
    seconds = time.monotonic() - started
    return Read(card, started, seconds, status, bool(headers.get(SERVED_BY)), "Retry-After" in headers, values)


class Reader:
    """Reads every card through one worker, each card in a thread of its own, until stopped
    (a read that waits for a timeout holds up no other card)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reads: list[Read] = []
        self._stopping = threading.Event()
        self._threads = [threading.Thread(target=self._poll, args=(card,), daemon=True) for card in CARDS]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def _poll(self, card: str) -> None:
        while not self._stopping.is_set():
            self.reads.append(read(self.port, card))
            self._stopping.wait(0.1)

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(60)


@scenario("http-partition", "cut the HTTP link one worker forwards feature reads over, then heal it", ("kafka",))
def http_partition(context: Context, verdict: Verdict) -> None:
    mode = ("blackhole", "reset")[context.seed % 2]
    verdict.notes["mode"] = mode
    ports = [free_port(), free_port()]
    proxy_port = free_port()
    proxy = Proxy(proxy_port, ports[1])
    run = KafkaRun(context.broker.removeprefix("kafka://"), context.workdir)
    workers = [
        run.worker("w0", http_port=ports[0]),
        run.worker("w1", http_port=ports[1], advertise=f"http://127.0.0.1:{proxy_port}"),
    ]
    reader = Reader(ports[0])
    try:
        time.sleep(3)  # both joined
        producing = threading.Thread(target=run.produce, args=(max(2_000, context.events // 20), 14.0))
        producing.start()
        time.sleep(2)
        reader.start()
        time.sleep(2 + context.rnd.uniform(0, 1))
        cut = time.monotonic()
        proxy.blackhole() if mode == "blackhole" else proxy.reset()
        time.sleep(CUT_S)
        proxy.heal()
        healed = time.monotonic()
        time.sleep(2 * FORWARD_TIMEOUT_S + 1)
        reader.stop()
        producing.join(120)
        run.judge(verdict, since=healed)
        verdict.problems += _judge_reads(reader.reads, cut, healed, mode, verdict)  # its recovery time, not judge's
        verdict.problems += _same_through_both(ports)
    finally:
        reader.stop()
        proxy.heal()
        stop_all(workers, verdict)
        proxy.close()


def _judge_reads(reads: list[Read], cut: float, healed: float, mode: str, verdict: Verdict) -> list[str]:
    """What the reads through w0 did wrong before, during and after the cut."""
    problems = []
    owned_by_w1 = {r.card for r in reads if r.status == 200 and r.forwarded and r.started < cut}
    if not owned_by_w1:
        return ["no read was forwarded to w1 before the cut: the scenario tested nothing"]
    during = [r for r in reads if r.started >= cut + 0.1 and r.started + r.seconds < healed]
    bound = FORWARD_TIMEOUT_S + ANSWER_MARGIN_S
    slow = [r.seconds for r in reads if r.seconds > bound]
    if slow:
        problems.append(f"{len(slow)} reads took longer than {bound} s (up to {max(slow):.1f} s)")
    expected = {504} if mode == "blackhole" else {503}
    cut_off = [r for r in during if r.card in owned_by_w1]
    wrong = sorted({r.status for r in cut_off if r.status not in expected or (r.status == 503 and not r.retry_after)})
    if wrong:
        problems.append(f"reads of w1's cards during the cut answered {wrong}, expected {sorted(expected)}")
    local = [r for r in during if r.card not in owned_by_w1]
    if any(r.status != 200 for r in local):
        problems.append(f"w0's own cards failed during the cut: {sorted({r.status for r in local if r.status != 200})}")
    back = [r.started + r.seconds for r in reads if r.started >= healed and r.status == 200 and r.forwarded]
    if not back:
        problems.append("no forwarded read answered 200 after the heal")
    else:
        verdict.recovery_s = round(min(back) - healed, 2)
    verdict.notes["reads"] = {
        "in all": len(reads),
        "during the cut, of w1's cards": len(cut_off),
        "local during": len(local),
    }
    return problems


def _same_through_both(ports: list[int]) -> list[str]:
    """Once the input is processed, each card read through w0 (forwarded or not) equals w1's answer
    (forwarded by w1 when w0 owns it): the two paths serve one state."""
    differing = []
    for card in CARDS:
        through_w0, through_w1 = read(ports[0], card), read(ports[1], card)
        if (through_w0.status, through_w0.values) != (through_w1.status, through_w1.values):
            differing.append((card, through_w0.status, through_w0.values, through_w1.status, through_w1.values))
    return [f"reads through w0 and w1 differ: {differing[:3]}"] if differing else []
