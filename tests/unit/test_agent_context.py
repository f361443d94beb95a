"""Agent tools read one pinned snapshot: one plan, one moment, while events keep arriving."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
from helpers import settings
from streamcore.apps.agent_context.app import app
from streamcore.apps.agent_context.tools import PlanContext

from streamcore import Runner
from streamcore.io.log import EmbeddedLog, TopicConfig
from streamcore.online.reads import SnapshotExpired


def test_tool_calls_of_one_plan_agree_while_the_stream_moves(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path / "log")
    log.create_topic(TopicConfig("customer-events", 2))
    producer = log.producer("customer-events")

    def send(kind: str, **fields: object) -> None:
        doc = {"customer": "u1", "type": kind, "ts": time.time_ns() // 1_000_000, **fields}
        producer.send(orjson.dumps(doc), 0, b"u1")

    send("order", amount=50.0)
    send("ticket", topic="refund")

    async def scenario() -> None:
        runner = Runner(app, settings(tmp_path, until_end=False), handle_signals=False)
        running = asyncio.create_task(runner.run())
        try:
            while not runner.ready or runner.status().records_in < 2:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.02)
            with PlanContext(runner.online, app.models["churn_risk"]) as plan:
                before = plan.customer_context("u1")
                risk_before = plan.risk_score("u1")
                send("ticket", topic="login")
                send("payment_failed")
                while runner.status().records_in < 4:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
                await asyncio.sleep(0.02)
                live = runner.online.read("customer", "u1").values()
                assert (live["tickets_7d"], live["failed_payments_7d"]) == (2, 1)
                assert plan.customer_context("u1") == before == {**before, "tickets_7d": 1}
                assert plan.risk_score("u1") == risk_before
                assert plan.eligibility("u1")["churn_risk"] == risk_before["churn_risk"]
                snapshot = plan.snapshot.id
            try:
                runner.online.read("customer", "u1", snapshot)
                raise AssertionError("a released snapshot must not be readable")
            except SnapshotExpired:
                pass
        finally:
            runner.stop()
            await running

    asyncio.run(scenario())
    log.close()


def test_the_mcp_walkthrough_runs_a_plan_of_three_tool_calls_that_agree(tmp_path: Path, capsys: Any) -> None:
    """`python -m streamcore.apps.agent_context.mcp_agent`: the SDK's client against the app's /mcp."""
    from streamcore.apps.agent_context import mcp_agent

    assert asyncio.run(mcp_agent.run_in(tmp_path)) == 0
    out = capsys.readouterr().out
    assert "the three tool calls read one moment: True; the live state moved on meanwhile: True" in out
