"""`streamcore.serving.asgi.answer_with`: an ASGI app answering inside the worker's aiohttp server."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from aiohttp import web

from streamcore.serving.asgi import answer_with
from streamcore.testing import free_port


async def _served(app: Any, run: Any) -> Any:
    async def handle(request: web.Request) -> web.StreamResponse:
        return await answer_with(app, request)

    server = web.Application()
    server.router.add_route("*", "/x", handle)
    runner = web.AppRunner(server)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession() as session:
            return await run(session, f"http://127.0.0.1:{port}/x")
    finally:
        await runner.cleanup()


def test_the_request_reaches_the_app_and_a_one_part_answer_comes_back_whole() -> None:
    seen: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.update(scope)
        seen["body"] = (await receive())["body"]
        await send({"type": "http.response.start", "status": 201, "headers": [(b"x-kind", b"whole")]})
        await send({"type": "http.response.body", "body": b'{"ok": true}'})

    async def post(session: aiohttp.ClientSession, url: str) -> Any:
        async with session.post(f"{url}?a=1", data=b"hello", headers={"X-Test": "yes"}) as response:
            return response.status, response.headers["x-kind"], await response.read()

    assert asyncio.run(_served(app, post)) == (201, "whole", b'{"ok": true}')
    assert (seen["method"], seen["path"], seen["query_string"], seen["body"]) == ("POST", "/x", b"a=1", b"hello")
    assert (b"x-test", b"yes") in seen["headers"] and seen["client"][0] == "127.0.0.1"


def test_an_answer_in_parts_is_streamed_part_by_part_then_the_app_hears_the_disconnect() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        for part in (b"data: 1\n\n", b"data: 2\n\n"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        waiting = asyncio.create_task(receive())
        await asyncio.sleep(0)
        assert not waiting.done()  # still answering: no disconnect yet
        waiting.cancel()

    async def get(session: aiohttp.ClientSession, url: str) -> Any:
        async with session.get(url) as response:
            return [line async for line in response.content]

    assert asyncio.run(_served(app, get)) == [b"data: 1\n", b"\n", b"data: 2\n", b"\n"]


def test_an_app_that_never_answers_is_a_server_error_not_a_hang() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()

    async def get(session: aiohttp.ClientSession, url: str) -> int:
        async with session.get(url) as response:
            return response.status

    assert asyncio.run(_served(app, get)) == 500
