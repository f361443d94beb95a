"""Agents' tools over MCP, with the official SDK's client against a real worker process.

`streamcore run apps/fraud/app.py --http ... --mcp --mcp-token ...` keeps reading while a
thread appends transactions for one card; a plan of three tool calls (features, score,
decisions) must read one snapshot: the same position, the same features, although the
card changed underneath it. The same through `streamcore mcp` (stdio), and the errors an
agent must be told about: an expired plan, an unknown entity, bad overrides, no token.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import orjson
import pytest
from live import fraud_log, live_worker, stop_worker
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from streamcore.apps.fraud.model import FEATURES

from streamcore.io.log import EmbeddedLog
from streamcore.serving.guards import MAX_PINS_PER_CLIENT
from streamcore.testing import free_port
from tests.integration.conftest import Worker, create_topic, produce, run, window_events

pytestmark = pytest.mark.integration

TOKEN = "s3cret-token"
CARD = "c7"


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fraud worker with MCP on, and a thread appending a transaction of `CARD` every 5 ms."""
    root = tmp_path_factory.mktemp("mcp")
    start = fraud_log(root, seed=3, cards=50, ticks=20, per_tick=20, tick_ms=100)
    proc, url = live_worker("apps/fraud/app.py", root, "--mcp", "--mcp-token", TOKEN)
    stop = threading.Event()
    feeder = threading.Thread(target=_feed, args=(root / "log", start + 2_000, stop), daemon=True)
    feeder.start()
    try:
        yield url
    finally:
        stop.set()
        feeder.join(10)
        stop_worker(proc)


def _feed(log_dir: Path, ts: int, stop: threading.Event) -> None:
    log = EmbeddedLog(log_dir)
    producer = log.producer("transactions")
    n = 0
    while not stop.is_set():
        n += 1
        tx = {"tx": f"live{n}", "card": CARD, "merchant": f"m{n % 9}", "amount": 20.0, "ts": ts + 10 * n}
        producer.send_many([orjson.dumps(tx)], [ts + 10 * n], partition=n % 4)
        time.sleep(0.005)
    log.close()


@asynccontextmanager
async def connected(url: str, token: str | None = TOKEN) -> AsyncIterator[Client]:
    """The SDK's client on the worker's /mcp (streamable HTTP), with the bearer token."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers) as http,
        Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client,
    ):
        yield client


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    return dict(result.structured_content)


async def error(client: Client, tool: str, **arguments: Any) -> str:
    result = await client.call_tool(tool, arguments)
    assert result.is_error, result.structured_content
    return str(result.content[0].text)  # type: ignore[union-attr]


async def three_calls_of_one_plan(client: Client) -> None:
    """Begin a plan; features, score and decisions of `CARD` a moment apart; all of one moment."""
    plan = await call(client, "begin_plan", ttl_s=30)
    features = await call(client, "get_card", entity=CARD, plan=plan["plan"])
    await asyncio.sleep(0.3)  # the agent thinks; CARD's transactions keep arriving
    score = await call(client, "score_fraud", entity=CARD, plan=plan["plan"])
    decisions = await call(client, "get_card_decisions", entity=CARD, plan=plan["plan"])
    live = await call(client, "get_card", entity=CARD)
    await call(client, "end_plan", plan=plan["plan"])

    pinned = plan["positions"]["transactions"]
    for answer in (features, score, decisions):
        assert answer["read"] == "plan"
        assert answer["position"]["partitions"] == pinned
    assert score["features"] == {name: features["features"][name]["value"] for name in FEATURES}
    assert live["read"] == "live"
    assert sum(live["position"]["partitions"].values()) > sum(pinned.values())  # the stream moved on
    assert live["features"]["txn_60m"]["value"] > features["features"]["txn_60m"]["value"]  # and CARD changed


def test_the_sdk_client_lists_tools_built_from_the_apps_views_and_models(worker: str) -> None:
    async def check() -> None:
        async with connected(worker) as client:
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
            resources = {r.uri for r in (await client.list_resources()).resources}
            topology = orjson.loads((await client.read_resource("streamcore://topology")).contents[0].text)  # type: ignore[union-attr]
        assert set(tools) == {"begin_plan", "get_card", "get_card_decisions", "score_fraud", "end_plan"}
        overrides = tools["score_fraud"].input_schema["properties"]["overrides"]
        assert list(overrides["properties"]) == list(FEATURES)
        assert overrides["additionalProperties"] is False
        card = tools["get_card"].input_schema["properties"]
        assert card["features"]["items"]["enum"][:3] == ["txn_1m", "txn_5m", "txn_60m"]
        assert "spending velocity" in (tools["get_card"].description or "")  # the view's own description
        assert "probability" in (tools["score_fraud"].description or "")  # the model's
        assert resources == {"streamcore://topology", "streamcore://views/card", "streamcore://views/card_decisions"}
        assert topology["streams"][0]["steps"][:3] == ["key_by('card')", "features card", "score(fraud → score)"]
        assert topology["views"]["card"]["features"]["merchants_5m"]["type"] == "integer"

    asyncio.run(check())


def test_three_tool_calls_of_one_plan_read_one_snapshot_while_events_arrive(worker: str) -> None:
    async def check() -> None:
        async with connected(worker) as client:
            await three_calls_of_one_plan(client)

    asyncio.run(check())


def test_the_stdio_bridge_relays_a_plan_to_the_worker(worker: str) -> None:
    bridge = StdioServerParameters(
        command=sys.executable, args=["-m", "streamcore.cli.main", "mcp", "--url", worker, "--token", TOKEN]
    )

    async def check() -> None:
        async with Client(bridge) as client:
            assert "begin_plan" in {tool.name for tool in (await client.list_tools()).tools}
            await three_calls_of_one_plan(client)
            assert "expired" in await error(client, "get_card", entity=CARD, plan="s0-gone")

    asyncio.run(check())


def test_an_agent_is_told_what_to_change_never_given_stale_or_made_up_data(worker: str) -> None:
    async def check() -> None:
        async with connected(worker) as client:
            short = await call(client, "begin_plan", ttl_s=0.2)
            await asyncio.sleep(0.5)
            expired = await error(client, "score_fraud", entity=CARD, plan=short["plan"])
            unknown = await error(client, "get_card", entity="no-such-card")
            not_a_number = await error(client, "score_fraud", entity=CARD, overrides={"txn_1m": "lots"})
            not_an_input = await error(client, "score_fraud", entity=CARD, overrides={"txn_60m": 3})
            bad_ttl = await error(client, "begin_plan", ttl_s=7200)
            bad_feature = await error(client, "get_card", entity=CARD, features=["nope"])
            what_if = await call(client, "score_fraud", entity=CARD, overrides={"txn_1m": 40, "merchants_1m": 9})
        assert "expired" in expired and "begin a new plan" in expired
        assert "no events of 'no-such-card'" in unknown
        assert "give a number" in not_a_number
        assert "does not read a feature 'txn_60m'" in not_an_input
        assert "ttl_s must be" in bad_ttl
        assert "feature names of view 'card'" in bad_feature
        assert what_if["features"]["txn_1m"] == 40 and what_if["score"] > 0.9 and what_if["fallback"] is None

    asyncio.run(check())


def test_plans_count_towards_the_same_per_client_limit_as_http_snapshots(worker: str) -> None:
    async def check() -> None:
        async with connected(worker) as client:
            plans = []
            while len(plans) <= MAX_PINS_PER_CLIENT:
                result = await client.call_tool("begin_plan", {"ttl_s": 60})
                if result.is_error:
                    refused = str(result.content[0].text)  # type: ignore[union-attr]
                    break
                plans.append(result.structured_content["plan"])
            for plan in plans:
                await call(client, "end_plan", plan=plan)
        assert len(plans) <= MAX_PINS_PER_CLIENT and "release some first" in refused

    asyncio.run(check())


def test_mcp_needs_the_token_and_the_rest_of_http_stays_as_it_was(worker: str) -> None:
    async def without(token: str | None) -> None:
        async with connected(worker, token):
            pass

    for token in (None, "wrong"):
        with pytest.raises(Exception, match="unhandled errors"):  # the SDK's client cannot even connect
            asyncio.run(without(token))
    listing = b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}'
    request = urllib.request.Request(f"{worker}/mcp", data=listing, headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:  # what the worker answered it
        urllib.request.urlopen(request, timeout=5)
    with refused.value as answer:
        assert answer.code == 401
        assert "--mcp-token" in orjson.loads(answer.read())["error"]
    with urllib.request.urlopen(f"{worker}/features/{CARD}?view=card", timeout=5) as response:
        assert response.status == 200  # no --http-token: the HTTP API is open on loopback, as before


def test_mcp_is_off_unless_asked(tmp_path: Path) -> None:
    fraud_log(tmp_path, seed=1, cards=5, ticks=1, per_tick=5, tick_ms=100)
    proc, url = live_worker("apps/fraud/app.py", tmp_path)
    try:
        with pytest.raises(urllib.error.HTTPError) as raised:
            urllib.request.urlopen(urllib.request.Request(f"{url}/mcp", data=b"{}", method="POST"), timeout=5)
        with raised.value as answer:
            assert answer.code == 404
    finally:
        stop_worker(proc)


def test_a_kafka_worker_asks_the_owner_for_a_live_read_a_plan_stays_on_its_worker(kafka: str, tmp_path: Path) -> None:
    """Two workers share the partitions; tools on one answer live reads of every key (the owner's
    answer, as HTTP forwards), and say where to begin a plan for a key the other keeps."""
    name = f"m{uuid.uuid4().hex[:8]}"
    run(create_topic(kafka, f"{name}-events", 4))
    run(create_topic(kafka, f"{name}-totals", 1))
    ports = [free_port(), free_port()]
    workers = [
        Worker(kafka, name, tmp_path / f"w{i}", http_port=port, STREAMCORE_MCP="1") for i, port in enumerate(ports)
    ]
    keys = [f"k{k}" for k in range(16)]
    other = f"http://127.0.0.1:{ports[1]}"

    async def check() -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
        async with connected(f"http://127.0.0.1:{ports[0]}", token=None) as client:
            deadline = time.monotonic() + 60
            while True:
                reads = {key: await client.call_tool("get_per_key", {"entity": key}) for key in keys}
                done = all(
                    not r.is_error and r.structured_content["features"]["events_1h"]["value"] == 5
                    for r in reads.values()
                )
                if done or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
            answers = {key: dict(r.structured_content or {"error": r.content[0].text}) for key, r in reads.items()}
            scores = {key: await call(client, "score_busy", entity=key) for key in keys}
            plan = await call(client, "begin_plan")
            refused = {}
            for key in keys:
                result = await client.call_tool("get_per_key", {"entity": key, "plan": plan["plan"]})
                if result.is_error:
                    refused[key] = str(result.content[0].text)  # type: ignore[union-attr]
            return answers, scores, refused

    try:
        time.sleep(3)  # both in the group, partitions split
        run(produce(kafka, f"{name}-events", window_events(keys=len(keys), per_key=5)))
        answers, scores, refused = asyncio.run(check())
    finally:
        for w in workers:
            w.stop()
    assert all(a.get("features", {}).get("events_1h", {}).get("value") == 5 for a in answers.values()), answers
    elsewhere = {key for key, a in answers.items() if a["served_by"] == other}
    assert elsewhere and all(answers[k]["served_by"] is None for k in set(keys) - elsewhere)
    assert all(s["score"] == 0.5 and s["read"] == "live" for s in scores.values())
    assert {k for k, s in scores.items() if s["served_by"] == other} == elsewhere
    assert set(refused) == elsewhere
    assert all(f"the worker at {other} keeps it: begin the plan on that worker's /mcp" in r for r in refused.values())
