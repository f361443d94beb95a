"""What keeps the HTTP port safe to expose: JSON errors, bounded input, slow-sender deadlines.

The server (`streamcore.serving.http`) installs `json_errors` and answers through
`json_response` / `error_response`; `HeaderDeadline` wraps aiohttp's protocol per
connection; `read_body`, `bad_overrides` and `bad_ttl` bound what a request may carry.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from streamcore.base.codec import encode_output
from streamcore.base.decoding import decode_strict

if TYPE_CHECKING:
    from streamcore.online.reads import Snapshot
    from streamcore.online.views import OnlineState

log = logging.getLogger("streamcore.serving")

HEADER_TIMEOUT_S = 10.0
"""A connection must send each request's headers (and then its body) within this time."""
MAX_BODY_BYTES = 1 << 20
MAX_SNAPSHOT_TTL_MS = 3_600_000
"""A pinned snapshot lives at most an hour (it holds copies of every entity changed since)."""
MAX_PINS_PER_CLIENT = 100
"""Snapshots one client may hold at once, so that no client can evict everyone else's."""
MAX_OVERRIDE_INT = 2**63 - 1
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
"""Hosts only this machine reaches: a port bound there needs no token."""
OPEN_PATHS = frozenset({"/health", "/metrics", "/", "/status"})
"""Answered without the token: probes and scrapers."""


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=encode_output(data), status=status, content_type="application/json", headers=headers)


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return json_response({"error": message, "status": status}, status, headers)


async def read_body(request: web.Request) -> dict[str, Any] | web.Response:
    """The request's JSON object, or the 400 response that says why there is none."""
    try:
        async with asyncio.timeout(HEADER_TIMEOUT_S):  # no task per request, unlike wait_for
            raw = await request.read()
    except TimeoutError:
        return error_response(408, f"the body did not arrive within {HEADER_TIMEOUT_S:g} s")
    if not raw:
        return {}
    try:
        body = decode_strict(raw)  # exact: a number beyond 64 bits stays an int, to be refused
    except (ValueError, RecursionError) as exc:
        return error_response(400, f"the body is not JSON: {exc}")
    if not isinstance(body, dict):
        return error_response(400, "the body must be a JSON object")
    return body


def bad_overrides(overrides: Any) -> str | None:
    """Why `overrides` cannot replace a model's inputs, or None if they can (HTTP and MCP)."""
    if not isinstance(overrides, Mapping):
        return "overrides must be an object of feature name to number (or null)"
    for name, value in overrides.items():
        if (problem := _bad_override(name, value)) is not None:
            return problem
    return None


def _bad_override(name: str, value: Any) -> str | None:
    """Why an override value cannot be a model input, or None if it can."""
    if value is None:
        return None  # the feature is missing, as the model's `missing` value stands for
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"override {name!r} is {value!r}: give a number, or null for a missing feature"
    if isinstance(value, float) and not math.isfinite(value):
        return f"override {name!r} is not a finite number"
    if isinstance(value, int) and not -MAX_OVERRIDE_INT - 1 <= value <= MAX_OVERRIDE_INT:
        return f"override {name!r} is outside the 64-bit integer range"
    return None


def bad_ttl(ttl_ms: Any) -> str | None:
    """Why `ttl_ms` cannot be a snapshot's lifetime, or None if it can (None: the default)."""
    if ttl_ms is None or (type(ttl_ms) is int and 0 < ttl_ms <= MAX_SNAPSHOT_TTL_MS):
        return None
    return f"ttl_ms must be an integer of milliseconds in 1 .. {MAX_SNAPSHOT_TTL_MS}"


class TooManyPins(Exception):
    """A client holds `MAX_PINS_PER_CLIENT` snapshots already (HTTP 429)."""


class PinLedger:
    """Per client, the snapshots it pinned, so that no client can hold more than
    `MAX_PINS_PER_CLIENT` and evict everyone else's (shared by HTTP and MCP)."""

    def __init__(self, online: OnlineState) -> None:
        self.online = online
        self._held: dict[str, set[str]] = {}

    def pin(self, client: str, ttl_ms: int | None) -> Snapshot:
        online = self.online
        now = online.clock_ms()
        held = self._held[client] = {  # released or expired ones no longer count
            i for i in self._held.get(client, ()) if (s := online.snapshots.get(i)) is not None and s.expires_ms > now
        }
        if len(held) >= MAX_PINS_PER_CLIENT:
            raise TooManyPins(f"this client holds {len(held)} snapshots, the most allowed; release some first")
        snapshot = online.pin(ttl_ms)
        held.add(snapshot.id)
        return snapshot


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The server's own errors (unknown path, wrong method, body too large) and bugs, as JSON."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        return error_response(exc.status, exc.reason, headers)
    except Exception:
        log.exception("HTTP %s %s failed", request.method, request.path)
        return error_response(500, "internal error (logged by the worker)")


class HeaderDeadline(asyncio.Protocol):
    """Wraps aiohttp's protocol for one connection: closes it if a request's headers are slow.

    Armed when the connection is made and after each answer; disarmed when a request's
    headers are complete (aiohttp then calls the handler: `Server.deadlines` middleware).
    """

    def __init__(self, inner: Any, deadlines: dict[Any, HeaderDeadline]) -> None:
        self.inner = inner
        self._deadlines = deadlines
        self._timer: asyncio.TimerHandle | None = None
        self._transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._deadlines[transport] = self
        self.arm()
        self.inner.connection_made(transport)

    def arm(self) -> None:
        self.disarm()
        self._timer = asyncio.get_running_loop().call_later(HEADER_TIMEOUT_S, self._expire)

    def disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()  # type: ignore[no-any-return]

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self.disarm()
        self._deadlines.pop(self._transport, None)
        self.inner.connection_lost(exc)
