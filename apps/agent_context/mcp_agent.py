"""An agent's plan over MCP: three tool calls that agree, while the customer's events keep arriving.

    python -m streamcore.apps.agent_context.mcp_agent

The app runs with MCP on (as ``streamcore run apps/agent_context/app.py --http
127.0.0.1:8080 --mcp`` would), and this agent talks to it only through the official MCP
SDK's client, over streamable HTTP, as an agent host would. Handling "u7 asks for a
refund", it lists the tools, begins a plan, reads u7's context, thinks while u7 opens a
ticket and two payments fail, scores u7's churn risk and reads the context again. All
three answers carry the plan's input position and the same features; a live read shows
what changed underneath the plan.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mcp import Client
from streamcore.apps.agent_context.app import app, events
from streamcore.apps.agent_context.example import event, running_with_traffic

from streamcore import Runner, RunSettings
from streamcore.io.log import EmbeddedLog, TopicConfig


async def tool(agent: Client, name: str, **arguments: Any) -> dict[str, Any]:
    result = await agent.call_tool(name, arguments)
    if result.is_error:
        raise RuntimeError(f"{name}: {result.content[0].text}")  # type: ignore[union-attr]
    return dict(result.structured_content)


async def plan_for_a_refund(url: str, u7: Any) -> bool:
    """The agent's side: one plan of three tool calls; True if they all read one moment."""
    async with Client(f"{url}/mcp") as agent:
        tools = [t.name for t in (await agent.list_tools()).tools]
        print(f"the worker offers {len(tools)} tools: {', '.join(tools)}")
        plan = await tool(agent, "begin_plan", ttl_s=30)
        print(f"begin_plan -> {plan['plan']}, input position {plan['positions']}")
        first = await tool(agent, "get_customer", entity="u7", plan=plan["plan"])
        print(f"  1. get_customer:     {_features(first)}")
        for kind, fields in [("ticket", {"topic": "refund"}), ("payment_failed", {}), ("payment_failed", {})]:
            u7.send(event("u7", kind, **fields), time.time_ns() // 1_000_000, b"u7")  # while the agent thinks
        await asyncio.sleep(0.5)
        risk = await tool(agent, "score_churn_risk", entity="u7", plan=plan["plan"])
        print(f"  2. score_churn_risk: {risk['score']} from {risk['features']}")
        again = await tool(agent, "get_customer", entity="u7", plan=plan["plan"])
        print(f"  3. get_customer:     {_features(again)}")
        live = await tool(agent, "get_customer", entity="u7")
        print(f"  meanwhile, live:     {_features(live)}")
        await tool(agent, "end_plan", plan=plan["plan"])
    positions = [answer["position"]["partitions"] for answer in (first, risk, again)]
    same = all(p == plan["positions"]["customer-events"] for p in positions) and _features(first) == _features(again)
    moved = _features(live)["failed_payments_7d"] != _features(first)["failed_payments_7d"]
    print(f"\nthe three tool calls read one moment: {same}; the live state moved on meanwhile: {moved}")
    return same and moved


def _features(answer: dict[str, Any]) -> dict[str, Any]:
    return {name: f["value"] for name, f in answer["features"].items()}


async def main() -> int:
    with tempfile.TemporaryDirectory(prefix="streamcore-mcp-agent-") as workdir:
        return await run_in(Path(workdir))


async def run_in(workdir: Path) -> int:
    """The app with MCP on, over a log in `workdir`, with traffic; then the agent's plan."""
    log = EmbeddedLog(workdir / "log")
    for spec in app.topics:
        log.create_topic(TopicConfig(spec.name, spec.partitions))
    u7 = log.producer(events.name)
    history: list[tuple[str, dict[str, Any]]] = [
        ("plan", {"plan": "pro"}),
        ("order", {"amount": 120.0}),
        ("ticket", {"topic": "refund"}),
    ]
    for kind, fields in history:
        u7.send(event("u7", kind, **fields), time.time_ns() // 1_000_000, b"u7")
    settings = RunSettings(
        state_dir=workdir / "state", broker=f"embedded:{workdir / 'log'}", http="127.0.0.1:0", mcp=True
    )
    runner = Runner(app, settings, handle_signals=False)
    async with running_with_traffic(runner, log):
        assert runner.server is not None
        agree = await plan_for_a_refund(f"http://127.0.0.1:{runner.server.port}", u7)
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
