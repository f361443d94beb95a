"""Benchmark: what a model score costs over MCP, against the same score over HTTP, in one run.

    python bench/mcp_tools.py [--calls 2000] [--cards 200]

The fraud app runs with MCP on, over a log of `--cards` cards' transactions, and a client
on the worker's own event loop asks for `--calls` scores one after another, the three ways
in turn (interleaved, so a slower moment of the machine hits them alike):

* ``http``: ``POST /score/fraud`` with aiohttp;
* ``mcp``: ``tools/call score_fraud`` with aiohttp, as the requests the MCP SDK's client
  sends (one POST each, 2026-07-28 protocol): the server's MCP path against its HTTP path;
* ``sdk``: the same tool call through the SDK's own `Client`, which adds its client-side
  work (an agent pays it in its own process).

Every answer is checked (same score over both paths). The last line is JSON with each
path's median and p99 round trip in ms and the MCP path's extra time per call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from freshness import MCP_CALL_HEADERS, mcp_score, percentile
from mcp import Client
from streamcore.apps.fraud.app import app
from streamcore.apps.fraud.generate import TransactionGenerator

from streamcore import Runner, RunSettings
from streamcore.io.log import EmbeddedLog, TopicConfig


def write_log(root: Path, cards: int) -> None:
    log = EmbeddedLog(root / "log")
    for spec in app.topics:
        log.create_topic(TopicConfig(spec.name, spec.partitions))
    generator = TransactionGenerator(seed=1, cards=cards)
    now = time.time_ns() // 1_000_000
    producer = log.producer("transactions")
    for p in range(4):
        batch = generator.batch(now, 50 * cards // 4, p)
        producer.send_many(batch, [now] * len(batch), partition=p)
    log.close()


async def measure(port: int, calls: int, cards: int) -> dict[str, list[float]]:
    base = f"http://127.0.0.1:{port}"
    times: dict[str, list[float]] = {"http": [], "mcp": [], "sdk": []}
    async with aiohttp.ClientSession() as http, Client(f"{base}/mcp") as sdk:
        await sdk.list_tools()
        for i in range(calls):
            card = f"c{i % cards}"
            started = time.perf_counter()
            async with http.post(f"{base}/score/fraud", data=orjson.dumps({"entity": card})) as response:
                by_http = orjson.loads(await response.read())
            times["http"].append((time.perf_counter() - started) * 1000)

            body = mcp_score(i, card)
            started = time.perf_counter()
            async with http.post(f"{base}/mcp", data=body, headers=MCP_CALL_HEADERS) as response:
                by_mcp = orjson.loads(await response.read())["result"]
            times["mcp"].append((time.perf_counter() - started) * 1000)

            started = time.perf_counter()
            by_sdk = await sdk.call_tool("score_fraud", {"entity": card})
            times["sdk"].append((time.perf_counter() - started) * 1000)
            if not by_http["features"]:
                continue  # a card without events: HTTP scores its empty features, MCP says it has none
            scores = {by_http["score"], by_mcp["structuredContent"]["score"], by_sdk.structured_content["score"]}
            assert len(scores) == 1, (card, scores)
    return times


async def main_async(calls: int, cards: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="streamcore-mcp-bench-") as tmp:
        root = Path(tmp)
        write_log(root, cards)
        settings = RunSettings(
            state_dir=root / "state", broker=f"embedded:{root / 'log'}", http="127.0.0.1:0", mcp=True
        )
        runner = Runner(app, settings, handle_signals=False)
        running = asyncio.create_task(runner.run())
        while not runner.ready or runner.server is None:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        try:
            times = await measure(runner.server.port, calls, cards)
        finally:
            runner.stop()
            await running
    summary: dict[str, Any] = {"calls": calls}
    for path, values in times.items():
        summary[f"{path}_p50_ms"] = round(percentile(values, 0.5), 3)
        summary[f"{path}_p99_ms"] = round(percentile(values, 0.99), 3)
    summary["mcp_extra_p50_ms"] = round(summary["mcp_p50_ms"] - summary["http_p50_ms"], 3)
    return summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--cards", type=int, default=200)
    args = ap.parse_args()
    summary = asyncio.run(main_async(args.calls, args.cards))
    for path in ("http", "mcp", "sdk"):
        print(f"{path:>4}: p50 {summary[f'{path}_p50_ms']:.3f} ms, p99 {summary[f'{path}_p99_ms']:.3f} ms")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
