"""Two tool calls of one agent plan agree, while the customer's events keep arriving.

    python -m streamcore.apps.agent_context.example

Customer events stream into the app. An agent handling "u7 asks for a refund" pins a
snapshot, calls `customer_context`, thinks for a moment while u7 opens another ticket
and a payment fails, then calls `eligibility`. Both calls see the same moment (same
input position); a live read in between shows what changed underneath the plan.
"""

from __future__ import annotations

import asyncio
import random
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from streamcore.apps.agent_context.app import app, events
from streamcore.apps.agent_context.tools import PlanContext

from streamcore import Runner, RunSettings
from streamcore.io.log import EmbeddedLog, TopicConfig


def event(customer: str, kind: str, **fields: object) -> bytes:
    return orjson.dumps({"customer": customer, "type": kind, "ts": time.time_ns() // 1_000_000, **fields})


async def customers(log: EmbeddedLog, stop: asyncio.Event) -> None:
    """Background traffic: orders, tickets and payments of 200 customers."""
    rnd = random.Random(3)
    producer = log.producer(events.name)
    while not stop.is_set():
        batch, keys = [], []
        for _ in range(50):
            who = f"u{rnd.randrange(200)}"
            kind = rnd.choice(["order", "order", "order", "ticket", "payment_failed", "plan"])
            extra: dict[str, Any] = {"amount": round(rnd.uniform(5, 200), 2)} if kind == "order" else {}
            extra |= {"topic": rnd.choice(["refund", "login"])} if kind == "ticket" else {}
            extra |= {"plan": rnd.choice(["free", "pro"])} if kind == "plan" else {}
            batch.append(event(who, kind, **extra))
            keys.append(who.encode())
        producer.send_many(batch, [time.time_ns() // 1_000_000] * len(batch), keys)
        await asyncio.sleep(0.02)


async def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="streamcore-agent-"))
    log = EmbeddedLog(workdir / "log")
    for spec in app.topics:
        log.create_topic(TopicConfig(spec.name, spec.partitions))
    u7 = log.producer(events.name)
    u7_events: list[tuple[str, dict[str, Any]]] = [
        ("plan", {"plan": "pro"}),
        ("order", {"amount": 120.0}),
        ("order", {"amount": 80.0}),
        ("ticket", {"topic": "refund"}),
    ]
    for kind, fields in u7_events:
        u7.send(event("u7", kind, **fields), time.time_ns() // 1_000_000, b"u7")
    runner = Runner(
        app, RunSettings(state_dir=workdir / "state", broker=f"embedded:{workdir / 'log'}"), handle_signals=False
    )
    async with running_with_traffic(runner, log):
        return await _plan(runner, u7)


@asynccontextmanager
async def running_with_traffic(runner: Runner, log: EmbeddedLog) -> AsyncIterator[None]:
    """The app running and caught up, with 200 customers' traffic, until the block ends."""
    running = asyncio.create_task(runner.run())
    stop = asyncio.Event()
    traffic = asyncio.create_task(customers(log, stop))
    try:
        while not runner.ready or (runner.settings.http and runner.server is None):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        yield
    finally:
        stop.set()
        await traffic
        runner.stop()
        await running
        log.close()


async def _plan(runner: Runner, u7: Any) -> int:
    """The agent's plan: two tool calls through one `PlanContext`, while u7's events arrive."""
    with PlanContext(runner.online, app.models["churn_risk"]) as plan:
        print(f"plan pinned snapshot {plan.snapshot.id} at input position {plan.position}")
        first = plan.customer_context("u7")
        print(f"  tool 1, customer_context: {first}")
        for kind, fields in [("ticket", {"topic": "refund"}), ("payment_failed", {}), ("payment_failed", {})]:
            u7.send(event("u7", kind, **fields), time.time_ns() // 1_000_000, b"u7")  # while the agent thinks
        await asyncio.sleep(0.5)
        live = runner.online.read("customer", "u7").values()
        print(f"  meanwhile, live: tickets_7d {live['tickets_7d']}, failed_payments_7d {live['failed_payments_7d']}")
        second = plan.eligibility("u7")
        again = plan.customer_context("u7")
        print(f"  tool 2, eligibility:      {second}")
        print(f"  tool 1 again:             {again}")
        agree = first == again and live["tickets_7d"] != first["tickets_7d"]
        print(f"\nboth tool calls saw the same moment: {agree}")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
