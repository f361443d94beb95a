"""The HTTP front on the worker's loop: features, scores, snapshots, health, metrics, and errors."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from helpers import CARD_VIEW as VIEW
from helpers import settings

from streamcore import App, EventTime, Runner
from streamcore.io.log import EmbeddedLog, TopicConfig


def serving_app() -> App:
    app = App("serve")
    app.model("risk", lambda f: f["n"] + f["spend"] / 1000, view="card", features=["n", "spend"], fallback=0.0)
    app.stream(app.topic("tx"), event_time=EventTime("ts")).key_by("card").features(VIEW).score("risk").discard()
    return app


def append(tmp_path: Path, events: list[dict[str, Any]]) -> None:
    log = EmbeddedLog(tmp_path / "log")
    log.create_topic(TopicConfig("tx", 1))
    log.producer("tx").send_many([orjson.dumps(e) for e in events], [0] * len(events))
    log.close()


async def serving(tmp_path: Path, body: Callable[[Runner, aiohttp.ClientSession, str], Awaitable[None]]) -> None:
    runner = Runner(serving_app(), settings(tmp_path, until_end=False, http="127.0.0.1:0"), handle_signals=False)
    running = asyncio.create_task(runner.run())
    try:
        while runner.server is None or not runner.ready:  # noqa: ASYNC110 - polls from outside
            await asyncio.sleep(0.01)
        async with aiohttp.ClientSession() as session:
            await body(runner, session, f"http://127.0.0.1:{runner.server.port}")
    finally:
        runner.stop()
        await running


async def get(session: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with session.get(url) as response:
        text = await response.text()
        return response.status, orjson.loads(text) if response.content_type == "application/json" else text


async def post(
    session: aiohttp.ClientSession, url: str, body: Any = None, raw: bytes | io.BytesIO | None = None
) -> tuple[int, Any]:
    data = raw if raw is not None else (orjson.dumps(body) if body is not None else b"")
    async with session.post(url, data=data) as response:
        return response.status, orjson.loads(await response.read()) if response.status != 204 else None


def test_features_scores_snapshots_health_and_metrics(tmp_path: Path) -> None:
    append(tmp_path, [{"card": "a", "amount": 100, "ts": 1}, {"card": "a", "amount": 50, "ts": 2}])

    async def check(runner: Runner, session: aiohttp.ClientSession, base: str) -> None:
        status, doc = await get(session, f"{base}/features/a")
        assert status == 200
        card = doc["views"][0]
        assert card["found"] and card["features"]["n"]["value"] == 2 and card["features"]["last"]["value"] == 50
        assert card["position"] == {"stream": "tx", "partitions": {"0": 2}}
        assert card["features"]["spend"]["freshness_ms"] is not None

        status, doc = await post(session, f"{base}/score/risk", {"entity": "a"})
        assert (status, doc["score"], doc["fallback"]) == (200, 2.15, None)
        status, doc = await post(session, f"{base}/score/risk", {"entity": "a", "overrides": {"n": 10}})
        assert doc["score"] == 10.15 and doc["features"] == {"n": 10, "spend": 150}

        status, snap = await post(session, f"{base}/snapshots", {"ttl_ms": 60_000})
        assert status == 201 and snap["positions"] == {"tx": {"0": 2}}
        log = EmbeddedLog(tmp_path / "log")
        log.producer("tx").send(orjson.dumps({"card": "a", "amount": 1, "ts": 3}), 0)
        while runner.status().records_in < 3:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.02)
        _, now = await get(session, f"{base}/features/a")
        _, then = await get(session, f"{base}/features/a?snapshot={snap['id']}")
        assert now["views"][0]["features"]["n"]["value"] == 3
        assert then["views"][0]["features"]["n"]["value"] == 2 and then["views"][0]["snapshot"] == snap["id"]
        _, scored = await post(session, f"{base}/score/risk", {"entity": "a", "snapshot": snap["id"]})
        assert scored["score"] == 2.15
        assert (await get(session, f"{base}/snapshots/{snap['id']}"))[0] == 200
        async with session.delete(f"{base}/snapshots/{snap['id']}") as response:
            assert response.status == 204
        status, doc = await get(session, f"{base}/features/a?snapshot={snap['id']}")
        assert status == 410 and "expired" in doc["error"]

        status, doc = await get(session, f"{base}/views")
        assert doc["views"]["card"]["features"] == ["n", "spend", "last"] and doc["models"]["risk"]["view"] == "card"
        status, doc = await get(session, f"{base}/health")
        assert (status, doc) == (200, {"live": True, "ready": True})
        status, text = await get(session, f"{base}/metrics")
        for name in (
            'streamcore_records_in_total{partition="0",stream="tx"} 3.0',
            "streamcore_feature_freshness_seconds_bucket",
            "streamcore_model_score_seconds_count",
            'streamcore_model_scores_total{model="risk"}',
            "streamcore_watermark_lag_seconds",
        ):
            assert name in text, name
        log.close()

    asyncio.run(serving(tmp_path, check))


def test_bad_requests_get_clear_json_errors(tmp_path: Path) -> None:
    append(tmp_path, [{"card": "a", "amount": 1, "ts": 1}])

    async def check(runner: Runner, session: aiohttp.ClientSession, base: str) -> None:
        cases = [
            (post(session, f"{base}/score/nope", {"entity": "a"}), 404, "no model 'nope'"),
            (post(session, f"{base}/score/risk", raw=b"{nope"), 400, "not JSON"),
            (post(session, f"{base}/score/risk", [1, 2]), 400, "must be a JSON object"),
            (post(session, f"{base}/score/risk", {}), 400, "give the entity"),
            (post(session, f"{base}/score/risk", {"entity": "a", "overrides": {"zzz": 1}}), 400, "'zzz'"),
            (post(session, f"{base}/score/risk", {"entity": "a", "overrides": [1]}), 400, "overrides must be"),
            (post(session, f"{base}/score/risk", {"entity": "a", "snapshot": "gone"}), 410, "expired"),
            (get(session, f"{base}/features/a?view=nope"), 404, "no feature view 'nope'"),
            (get(session, f"{base}/features/a?snapshot=gone"), 410, "expired"),
            (post(session, f"{base}/snapshots", {"ttl_ms": -5}), 400, "ttl_ms"),
            (post(session, f"{base}/snapshots", {"ttl_ms": 18446744073709551615}), 400, "ttl_ms"),
            (get(session, f"{base}/snapshots/gone"), 410, "expired"),
            (post(session, f"{base}/score/risk", {"entity": "a", "overrides": {"spend": "abc"}}), 400, "'spend'"),
            (post(session, f"{base}/score/risk", {"entity": "a", "overrides": {"n": True}}), 400, "'n'"),
            (
                post(session, f"{base}/score/risk", raw=b'{"entity": "a", "overrides": {"n": 18446744073709551616}}'),
                400,
                "64-bit",
            ),
            (
                post(session, f"{base}/score/risk", raw=b'{"entity": "a", "overrides": {"n": 1e999}}'),
                400,
                "not a finite",
            ),
            (get(session, f"{base}/no/such/path"), 404, "Not Found"),
            (get(session, f"{base}/score/risk"), 405, "Method Not Allowed"),
            (post(session, f"{base}/snapshots", raw=io.BytesIO(b"x" * (2 << 20))), 413, "Too Large"),
        ]
        for request, status, message in cases:
            got_status, doc = await request
            assert got_status == status, (message, doc)
            assert message in doc["error"] and doc["status"] == status
        status, doc = await get(session, f"{base}/features/nobody")
        assert status == 200 and not doc["views"][0]["found"] and doc["views"][0]["features"]["n"]["value"] == 0
        assert not runner.online.snapshots  # no refused request left a pinned snapshot behind
        status, doc = await post(session, f"{base}/score/risk", {"entity": "a", "overrides": {"spend": None}})
        assert status == 200 and doc["features"]["spend"] is None

    asyncio.run(serving(tmp_path, check))


def test_a_token_guards_every_endpoint_but_health_and_metrics(tmp_path: Path) -> None:
    append(tmp_path, [{"card": "a", "amount": 1, "ts": 1}])

    async def check(runner: Runner, session: aiohttp.ClientSession, base: str) -> None:
        runner.server.token = "s3cret"  # type: ignore[union-attr]
        for path in ("/features/a", "/views", "/snapshots/x"):
            status, doc = await get(session, base + path)
            assert status == 401 and "Bearer" in doc["error"], path
        assert (await post(session, f"{base}/snapshots", {}))[0] == 401 and not runner.online.snapshots
        assert (await get(session, f"{base}/health"))[0] == 200
        assert (await get(session, f"{base}/metrics"))[0] == 200
        wrong = {"Authorization": "Bearer guess"}
        async with session.get(f"{base}/views", headers=wrong) as response:
            assert response.status == 401
        right = {"Authorization": "Bearer s3cret"}
        async with session.get(f"{base}/features/a", headers=right) as response:
            assert response.status == 200

    asyncio.run(serving(tmp_path, check))


def test_one_client_cannot_pin_more_than_its_share_of_snapshots(tmp_path: Path) -> None:
    """10,000 pins from one client used to evict everyone else's."""
    from streamcore.serving.guards import MAX_PINS_PER_CLIENT

    append(tmp_path, [{"card": "a", "amount": 1, "ts": 1}])

    async def check(runner: Runner, session: aiohttp.ClientSession, base: str) -> None:
        ids = []
        for _ in range(MAX_PINS_PER_CLIENT):
            status, doc = await post(session, f"{base}/snapshots", {})
            assert status == 201
            ids.append(doc["id"])
        status, doc = await post(session, f"{base}/snapshots", {})
        assert status == 429 and "release some" in doc["error"]
        assert len(runner.online.snapshots) == MAX_PINS_PER_CLIENT
        async with session.delete(f"{base}/snapshots/{ids[0]}") as response:
            assert response.status == 204
        assert (await post(session, f"{base}/snapshots", {}))[0] == 201  # a released one frees a place

    asyncio.run(serving(tmp_path, check))


def test_a_connection_that_sends_its_headers_too_slowly_is_closed(tmp_path: Path, monkeypatch: Any) -> None:
    from streamcore.serving import guards, http

    monkeypatch.setattr(guards, "HEADER_TIMEOUT_S", 0.3)
    monkeypatch.setattr(http, "HEADER_TIMEOUT_S", 0.3)
    append(tmp_path, [{"card": "a", "amount": 1, "ts": 1}])

    async def check(runner: Runner, session: aiohttp.ClientSession, base: str) -> None:
        port = runner.server.port  # type: ignore[union-attr]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # and then nothing more
        await writer.drain()
        started = time.perf_counter()
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server
        assert 0.2 < time.perf_counter() - started < 2
        writer.close()
        # a connection that answers in time, and then idles, is also let go after the timeout
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"200 OK" in await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        await asyncio.sleep(0.6)
        assert (await get(session, f"{base}/health"))[0] == 200  # the server itself is fine
        writer.close()

    asyncio.run(serving(tmp_path, check))


def test_requests_are_answered_while_ingest_runs(tmp_path: Path) -> None:
    append(tmp_path, [{"card": "warm", "amount": 1, "ts": 0}])

    async def check(runner: Runner, session: aiohttp.ClientSession, base: str) -> None:
        log = EmbeddedLog(tmp_path / "log")
        events = [orjson.dumps({"card": f"c{i % 500}", "amount": 1, "ts": i}) for i in range(150_000)]
        log.producer("tx").send_many(events, [0] * len(events))
        before = runner.status().records_in
        latencies = []
        for i in range(100):
            started = time.perf_counter()
            status, _ = await post(session, f"{base}/score/risk", {"entity": f"c{i}"})
            latencies.append(time.perf_counter() - started)
            assert status == 200
        during = runner.status().records_in
        assert during > before  # ingest went on between the requests: they did not wait for it to end
        assert during < before + len(events) or max(latencies) < 0.25
        assert sorted(latencies)[98] < 0.25
        log.close()

    asyncio.run(serving(tmp_path, check))


def test_the_deploy_files_that_bind_every_address_set_a_token() -> None:
    root = Path(__file__).resolve().parents[2]
    for name in ("deploy/docker-compose.yml", "deploy/k8s/streamcore-worker.yaml"):
        text = (root / name).read_text()
        assert "0.0.0.0:8080" in text and "STREAMCORE_HTTP_TOKEN" in text, name
