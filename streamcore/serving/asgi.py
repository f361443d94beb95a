"""An ASGI application answering one aiohttp request: how the MCP SDK's HTTP transport
(an ASGI app) runs inside the worker's own aiohttp server, on the same port and loop.

The request's body is read whole first (aiohttp bounds it by the server's
``client_max_size``); the response is streamed as the application sends it, so a
server-sent-events answer reaches the client event by event. Once the application has
answered, a further ``receive()`` says the client disconnected, as ASGI servers do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

Message = MutableMapping[str, Any]
AsgiApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]


def _scope(request: web.Request) -> dict[str, Any]:
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    local = transport.get_extra_info("sockname") if transport is not None else None
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": f"{request.version.major}.{request.version.minor}",
        "method": request.method,
        "scheme": request.scheme,
        "path": request.path,
        "raw_path": request.raw_path.split("?", 1)[0].encode("latin-1"),
        "query_string": request.query_string.encode("latin-1"),
        "root_path": "",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in request.headers.items()],
        "client": tuple(peer[:2]) if peer else None,
        "server": tuple(local[:2]) if local else None,
    }


async def answer_with(app: AsgiApp, request: web.Request) -> web.StreamResponse:
    """Run `app` on `request` and return its answer: whole, or streamed if it came in parts."""
    body = await request.read()
    answered = asyncio.Event()
    delivered = False
    start: Message | None = None
    streamed: web.StreamResponse | None = None
    whole: web.Response | None = None

    async def receive() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await answered.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal start, streamed, whole
        if message["type"] == "http.response.start":
            start = message
            return
        if message["type"] != "http.response.body" or start is None:
            return
        chunk, more = message.get("body", b""), message.get("more_body", False)
        if streamed is None and not more:  # the whole answer in one message (JSON): one plain response
            whole = web.Response(body=chunk, status=start["status"], headers=_headers(start))
            return
        if streamed is None:
            streamed = web.StreamResponse(status=start["status"], headers=_headers(start))
            await streamed.prepare(request)
        await streamed.write(chunk)
        if not more:
            await streamed.write_eof()

    try:
        await app(_scope(request), receive, send)
    finally:
        answered.set()
    answer = whole or streamed
    if answer is None:
        raise RuntimeError(f"the ASGI application sent no answer to {request.method} {request.path}")
    return answer


def _headers(start: Message) -> CIMultiDict[str]:
    headers: CIMultiDict[str] = CIMultiDict()
    for name, value in start.get("headers", ()):
        if name.lower() != b"content-length":  # aiohttp sets it from the body it sends
            headers.add(name.decode("latin-1"), value.decode("latin-1"))
    return headers
