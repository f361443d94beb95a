"""Benchmark: feature freshness and HTTP score latency of the fraud app on the embedded log.

    python bench/freshness.py [--seconds 10] [--rps 500] [--plot docs/freshness.svg]

1. Maximum ingest rate: the fraud app (`apps/fraud`) over a pre-written log, to the end.
2. At 50% and 90% of that rate: a producer *process* appends transactions to the log in
   real time, each stamped with its send time in µs; the app runs live with its HTTP API.
   Freshness of an event = from its send time to the moment the runner published the
   state that includes it (readable by any request). Every 8th event is measured.
3. During both runs, a load *process* sends ``POST /score/fraud`` at a fixed rate over
   loopback, on a schedule (latency counted from the scheduled send time, so a stall
   is not hidden by sending later), for a bounded time.
4. A third process that only sleeps 1 ms at a time reports the machine's own pauses
   (oversleeps over 5 ms), so that a tail the machine caused can be told from one the
   engine caused.
5. A third live run at 50%, with MCP on: one load process asks for scores at
   ``--mcp-rps`` (200) a second over each path, in turn on one schedule: ``POST
   /score/fraud`` and the ``score_fraud`` tool over MCP (the requests the SDK's client
   sends): the two paths' latencies side by side, under the same ingest and load.
6. With ``--status-hz H``, each live run is done twice in turn, the second time with a
   process polling the status page's ``GET /status`` H times a second (an open page
   polls once a second), and both results are printed: what watching the job costs.

The last line is JSON: {"max_eps", "freshness_p99_ms_at_50", "freshness_p99_ms_at_90",
"score_p99_ms", "mcp_p99_ms", "http_p99_ms_beside_mcp", ...}. Everything stops by itself; only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
from streamcore.apps.fraud.app import app
from streamcore.apps.fraud.generate import TransactionGenerator

from streamcore import Runner, RunSettings
from streamcore.base.records import RecordBatch
from streamcore.io.log import EmbeddedLog, TopicConfig

PARTITIONS = 4
TICK_S = 0.002


def prepare(root: Path) -> None:
    log = EmbeddedLog(root / "log")
    for spec in app.topics:
        log.create_topic(TopicConfig(spec.name, spec.partitions))
    log.close()


def stamped(generator: TransactionGenerator, now_ms: int, n: int, partition: int) -> list[bytes]:
    out = []
    for raw in generator.batch(now_ms, n, partition):
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            out.append(raw)  # the generator's deliberately broken records stay broken
            continue
        doc["sent_us"] = time.time_ns() // 1_000
        out.append(orjson.dumps(doc))
    return out


def max_rate(root: Path, events: int, cards: int = 20_000) -> float:
    """Transactions per second of the fraud app over `events` pre-written ones of `cards` cards."""
    prepare(root)
    log = EmbeddedLog(root / "log")
    producer = log.producer("transactions")
    generator = TransactionGenerator(seed=1, cards=cards)
    now = time.time_ns() // 1_000_000
    written = 0
    while written < events:
        for p in range(PARTITIONS):
            batch = generator.batch(now + written // 10, 50, p)
            producer.send_many(batch, [now + written // 10] * len(batch), partition=p)
            written += len(batch)
    log.close()
    settings = RunSettings(state_dir=root / "state", broker=f"embedded:{root / 'log'}", until_end=True)
    started = time.perf_counter()
    status = asyncio.run(Runner(app, settings, handle_signals=False).run())
    return status.records_in / (time.perf_counter() - started)


def produce(root: str, rate: float, seconds: float, ready: Any) -> None:
    """A separate process: append `rate` transactions per second for `seconds`."""
    log = EmbeddedLog(root)
    producer = log.producer("transactions")
    generator = TransactionGenerator(seed=2)
    per_tick = rate * TICK_S
    owed = 0.0
    ready.wait()
    started = time.perf_counter()
    tick = 0
    while time.perf_counter() - started < seconds:
        owed += per_tick
        n = int(owed)
        owed -= n
        if n:
            partition = tick % PARTITIONS
            now_ms = time.time_ns() // 1_000_000
            batch = stamped(generator, now_ms, n, partition)
            producer.send_many(batch, [now_ms] * len(batch), partition=partition)
        tick += 1
        time.sleep(max(0.0, started + tick * TICK_S - time.perf_counter()))
    log.close()


def pauses(seconds: float, go: Any, out: Any) -> None:
    """A separate process that sleeps 1 ms at a time and reports each oversleep over 5 ms.

    It does no work, so its pauses are the machine's (the scheduler, the hypervisor, the
    kernel), not the engine's: a freshness tail that coincides with them is the machine's.
    """
    go.wait()
    found: list[float] = []
    end = time.perf_counter() + seconds
    last = time.perf_counter()
    while last < end:
        time.sleep(0.001)
        now = time.perf_counter()
        if now - last > 0.005:
            found.append((now - last) * 1000)
        last = now
    out.put(found)


def status_poller(port: int, hz: float, seconds: float, go: Any, out: Any) -> None:
    """A separate process: once `go` is set, GET / once and /status `hz` times a second; report how many."""
    import urllib.request

    go.wait()
    base = f"http://127.0.0.1:{port}"
    with urllib.request.urlopen(f"{base}/") as page:
        page.read()
    started, polls = time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        with urllib.request.urlopen(f"{base}/status") as answer:
            answer.read()
        polls += 1
        time.sleep(max(0.0, started + polls / hz - time.perf_counter()))
    out.put(polls)


async def on_schedule(call: Callable[[int, float], Awaitable[None]], rps: int, seconds: float) -> None:
    """``call(i, scheduled)`` at `rps` a second for `seconds`, each at its scheduled time, never
    waiting for the ones before (open loop: latency counts from `scheduled`)."""
    started = time.perf_counter()
    tasks = []
    for i in range(int(rps * seconds)):
        scheduled = started + i / rps
        await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
        tasks.append(asyncio.create_task(call(i, scheduled)))
    await asyncio.gather(*tasks)


def load(port: int, rps: int, seconds: float, go: Any, out: Any) -> None:
    """A separate process: POST /score/fraud at `rps` on a schedule once `go` is set; report latencies (ms)."""
    import aiohttp

    go.wait()  # started early: its interpreter's start-up is not part of the measured window

    async def run() -> list[float]:
        latencies: list[float] = []
        url = f"http://127.0.0.1:{port}/score/fraud"
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:

            async def one(i: int, scheduled: float) -> None:
                async with session.post(url, data=orjson.dumps({"entity": f"c{i % 20_000}"})) as response:
                    await response.read()
                    if response.status == 200:
                        latencies.append((time.perf_counter() - scheduled) * 1000)

            await on_schedule(one, rps, seconds)
        return latencies

    out.put(asyncio.run(run()))


MCP_CALL_HEADERS = {
    "Content-Type": "application/json",
    "Accept": "application/json, text/event-stream",
    "MCP-Protocol-Version": "2026-07-28",
    "Mcp-Method": "tools/call",
    "Mcp-Name": "score_fraud",
}
"""What the MCP SDK's client sends with a ``tools/call`` (2026-07-28 protocol, one POST per call)."""
MCP_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {},
}
"""The ``_meta`` of such a request's params."""


def mcp_score(request_id: int, card: str) -> bytes:
    """The body of a ``tools/call score_fraud`` for `card`, as the SDK's client sends it."""
    params = {"name": "score_fraud", "arguments": {"entity": card}, "_meta": MCP_META}
    return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params})


def paired_load(port: int, rps: int, seconds: float, go: Any, out: Any) -> None:
    """A separate process: scores over HTTP and over MCP in turn, each at `rps` on one schedule;
    report both paths' latencies (ms).

    Call 2i is ``POST /score/fraud`` and call 2i+1 the ``tools/call score_fraud`` the SDK's
    client sends (same headers, same body), for the same card, from one aiohttp session:
    the same client, process and moments for both, so the two compare the servers' paths
    (the SDK's own client would add about 1 ms of its CPU per call; `bench/mcp_tools.py`).
    """
    import aiohttp

    go.wait()

    async def run() -> tuple[list[float], list[float]]:
        by_http: list[float] = []
        by_mcp: list[float] = []
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:

            async def one(i: int, scheduled: float) -> None:
                card = f"c{(i // 2) % 20_000}"
                if i % 2 == 0:
                    async with session.post(f"{base}/score/fraud", data=orjson.dumps({"entity": card})) as response:
                        await response.read()
                        if response.status == 200:
                            by_http.append((time.perf_counter() - scheduled) * 1000)
                    return
                async with session.post(f"{base}/mcp", data=mcp_score(i, card), headers=MCP_CALL_HEADERS) as response:
                    answer = orjson.loads(await response.read())
                    if response.status == 200 and "result" in answer:  # a score, or "no events of" that card
                        by_mcp.append((time.perf_counter() - scheduled) * 1000)

            await on_schedule(one, 2 * rps, seconds)
        return by_http, by_mcp

    out.put(asyncio.run(run()))


class FreshnessProbe:
    """A publish listener: freshness of every 8th applied event, from its µs send stamp."""

    def __init__(self) -> None:
        self.ms: list[float] = []

    def __call__(self, published_ms: float, views: list[str], batches: list[RecordBatch]) -> None:
        for batch in batches:
            for raw in batch.values[::8]:
                try:
                    sent = orjson.loads(raw).get("sent_us")
                except (orjson.JSONDecodeError, AttributeError):
                    continue  # a broken record (the app dead-letters it)
                if sent is not None:
                    self.ms.append(published_ms - sent / 1000)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def live_run(
    root: Path, rate: float, seconds: float, rps: int, status_hz: float = 0.0, mcp_rps: int = 0
) -> dict[str, Any]:
    """Ingest at `rate` from a producer process; with `rps`, score requests from a load process too;
    with `status_hz`, a process polling the status page; with `mcp_rps`, HTTP and MCP scores from one
    process (`paired_load`) instead."""
    prepare(root)
    settings = RunSettings(
        state_dir=root / "state", broker=f"embedded:{root / 'log'}", http="127.0.0.1:0", mcp=bool(mcp_rps)
    )
    runner = Runner(app, settings, handle_signals=False)
    probe = FreshnessProbe()
    runner.on_publish(probe)
    running = asyncio.create_task(runner.run())
    while runner.server is None:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    ctx = multiprocessing.get_context("spawn")
    ready, go, results, paused = ctx.Event(), ctx.Event(), ctx.Queue(), ctx.Queue()
    producer = ctx.Process(target=produce, args=(str(root / "log"), rate, seconds, ready))
    loader = ctx.Process(target=load, args=(runner.server.port, rps, seconds - 1.0, go, results)) if rps else None
    meter = ctx.Process(target=pauses, args=(seconds - 1.0, go, paused))
    mcp_results = ctx.Queue()
    mcp_loader = (
        ctx.Process(target=paired_load, args=(runner.server.port, mcp_rps, seconds - 1.0, go, mcp_results))
        if mcp_rps
        else None
    )
    polled = ctx.Queue()
    poller = (
        ctx.Process(target=status_poller, args=(runner.server.port, status_hz, seconds - 1.0, go, polled))
        if status_hz
        else None
    )
    producer.start()
    meter.start()
    if poller is not None:
        poller.start()
    for process in (loader, mcp_loader):
        if process is not None:
            process.start()
    await asyncio.sleep(1.5)  # let the producer and load processes start before the clock runs
    ready.set()
    await asyncio.sleep(1.0)  # warm up: the first second is not measured
    probe.ms.clear()
    go.set()
    while producer.is_alive():  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    latencies: list[float] = []
    if loader is not None:
        latencies = await asyncio.to_thread(results.get, True, 60)
        loader.join(10)
    mcp_latencies: list[float] = []
    if mcp_loader is not None:
        latencies, mcp_latencies = await asyncio.to_thread(mcp_results.get, True, 60)
        mcp_loader.join(10)
    producer.join(10)
    machine_pauses = await asyncio.to_thread(paused.get, True, 60)
    meter.join(10)
    status_polls = 0
    if poller is not None:
        status_polls = await asyncio.to_thread(polled.get, True, 60)
        poller.join(10)
    await asyncio.sleep(0.2)
    runner.stop()
    status = await running
    applied = status.tasks[0].counters.records_in
    return {
        "rate": rate,
        "applied": applied,
        "freshness_ms": probe.ms,
        "score_ms": latencies,
        "mcp_ms": mcp_latencies,
        "achieved_rps": len(latencies) / max(1e-9, seconds - 1.0),
        "machine_pauses_ms": machine_pauses,
        "status_polls": status_polls,
    }


def svg_plot(results: dict[str, dict[str, Any]], path: Path) -> None:
    """A small bar chart of the percentiles (no plotting library needed)."""
    rows = []
    for label, r in results.items():
        for name, values in (("freshness", r["freshness_ms"]), ("score", r["score_ms"])):
            if values:
                rows.append((f"{name} at {label} load", [percentile(values, q) for q in (0.5, 0.99, 0.999)]))
    top = math.log10(1 + max(1.0, max(v for _, vs in rows for v in vs)))
    height = 40 + 60 * len(rows)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="760" height="{height}" font-family="sans-serif" '
        f'font-size="12"><rect width="100%" height="100%" fill="white"/>',
        '<text x="10" y="20" font-size="14">Fraud app on the embedded log: milliseconds '
        "(p50, p99, p99.9; log scale)</text>",
    ]
    colors = ("#4c78a8", "#f58518", "#e45756")
    for i, (label, values) in enumerate(rows):
        y = 40 + 60 * i
        parts.append(f'<text x="10" y="{y + 28}">{label}</text>')
        for j, (value, color) in enumerate(zip(values, colors, strict=True)):
            width = max(1.0, 420 * math.log10(1 + value) / top)  # log scale
            parts.append(f'<rect x="180" y="{y + 4 + 16 * j}" width="{width:.1f}" height="14" fill="{color}"/>')
            parts.append(f'<text x="{186 + width:.1f}" y="{y + 15 + 16 * j}">{value:.2f}</text>')
    parts.append(f'<text x="620" y="{height - 10}" fill="#666">p50 / p99 / p99.9</text></svg>')
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0, help="length of each live run")
    ap.add_argument("--rps", type=int, default=500, help="score requests per second")
    ap.add_argument("--mcp-rps", type=int, default=200, help="MCP tool calls (and HTTP scores) per second, run 3")
    ap.add_argument("--max-events", type=int, default=60_000)
    ap.add_argument("--cards", type=int, default=20_000, help="cards in the maximum-rate run's transactions")
    ap.add_argument("--plot", type=Path, help="write an SVG chart here")
    ap.add_argument(
        "--status-hz", type=float, default=0.0, help="also run each live run with /status polled this often"
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="streamcore-fresh-") as tmp:
        work = Path(tmp)
        peak = max_rate(work / "max", args.max_events, args.cards)
        print(f"max ingest: {peak:,.0f} transactions/s (fraud app: features, model, rules, decisions)")
        results = {}
        watched = dict.fromkeys((0.0, args.status_hz))
        runs = [(share, rps, hz) for share, rps in ((0.5, args.rps), (0.9, 0)) for hz in watched]
        for share, rps, hz in runs:  # score requests during the 50% run
            r = asyncio.run(live_run(work / f"at{int(share * 100)}-{hz:g}", share * peak, args.seconds, rps, hz))
            results[f"{int(share * 100)}%" + (f" with /status at {hz:g}/s" if hz else "")] = r
            f, s = r["freshness_ms"], r["score_ms"]
            watched = f", /status polled {r['status_polls']} times" if hz else ""
            line = (
                f"at {share:.0%} ({r['rate']:,.0f}/s{watched}): freshness p50 {percentile(f, 0.5):.2f} ms, "
                f"p99 {percentile(f, 0.99):.2f} ms, p99.9 {percentile(f, 0.999):.2f} ms ({len(f):,} events)"
            )
            p = r["machine_pauses_ms"]
            line += f"  |  machine pauses over 5 ms: {len(p)}" + (f", longest {max(p):.0f} ms" if p else "")
            if s:
                line += (
                    f"  |  score at {r['achieved_rps']:.0f}/s: p50 {percentile(s, 0.5):.2f} ms, "
                    f"p99 {percentile(s, 0.99):.2f} ms"
                )
            print(line)
        beside = asyncio.run(live_run(work / "mcp", 0.5 * peak, args.seconds, 0, mcp_rps=args.mcp_rps))
        m, h = beside["mcp_ms"], beside["score_ms"]
        print(
            f"at 50% with MCP: score_fraud tool p50 {percentile(m, 0.5):.2f} ms, p99 {percentile(m, 0.99):.2f} ms "
            f"({len(m):,} calls)  |  HTTP score beside it p50 {percentile(h, 0.5):.2f} ms, "
            f"p99 {percentile(h, 0.99):.2f} ms ({len(h):,})  |  machine pauses over 5 ms: "
            f"{len(beside['machine_pauses_ms'])}"
        )
    if args.plot:
        svg_plot(results, args.plot)
    at50, at90 = results["50%"], results["90%"]
    print(
        json.dumps(
            {
                "max_eps": round(peak),
                "freshness_p50_ms_at_50": round(percentile(at50["freshness_ms"], 0.5), 3),
                "freshness_p99_ms_at_50": round(percentile(at50["freshness_ms"], 0.99), 3),
                "freshness_p999_ms_at_50": round(percentile(at50["freshness_ms"], 0.999), 3),
                "freshness_p50_ms_at_90": round(percentile(at90["freshness_ms"], 0.5), 3),
                "freshness_p99_ms_at_90": round(percentile(at90["freshness_ms"], 0.99), 3),
                "freshness_p999_ms_at_90": round(percentile(at90["freshness_ms"], 0.999), 3),
                "score_p50_ms": round(percentile(at50["score_ms"], 0.5), 3),
                "score_p99_ms": round(percentile(at50["score_ms"], 0.99), 3),
                "score_rps": round(at50["achieved_rps"]),
                "machine_pauses_over_5ms_at_50": len(at50["machine_pauses_ms"]),
                "longest_machine_pause_ms_at_50": round(max(at50["machine_pauses_ms"], default=0.0), 1),
                "mcp_p50_ms": round(percentile(beside["mcp_ms"], 0.5), 3),
                "mcp_p99_ms": round(percentile(beside["mcp_ms"], 0.99), 3),
                "mcp_calls": len(beside["mcp_ms"]),
                "http_p50_ms_beside_mcp": round(percentile(beside["score_ms"], 0.5), 3),
                "http_p99_ms_beside_mcp": round(percentile(beside["score_ms"], 0.99), 3),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
