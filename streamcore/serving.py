"""HTTP on the worker's event loop (aiohttp): features, scores, snapshots, health, metrics.

    GET    /features/{entity}[?view=a,b][&snapshot=ID]   an entity's features, position, freshness
    POST   /score/{model}     {"entity": "c42", "overrides": {...}, "snapshot": "ID"}
    POST   /snapshots         {"ttl_ms": 30000}  ->  201 {"id", "expires_ms", "positions"}
    GET    /snapshots/{id}    DELETE /snapshots/{id}
    GET    /views             the feature views, their features, and the models
    GET    /health            200 when ready (every stream caught up once), 503 while catching up
    GET    /metrics           Prometheus text format

Handlers run between the engine's batches, which are bounded in time, so a request
waits at most one batch stretch (a few ms) even under full ingest. Every error is JSON
``{"error": ..., "status": ...}``, also the server's own (a middleware): 400 for a
malformed request, 401 without the token, 404 for an unknown path, view or model, 405
for a wrong method, 410 for an expired snapshot, 413 for a body over `MAX_BODY_BYTES`,
429 for a client over `MAX_PINS_PER_CLIENT` snapshots, 500 for a bug (logged).

Hardening, for a port that others can reach:

* with a token (``--http-token`` / ``STREAMCORE_HTTP_TOKEN``) every endpoint but
  ``/health`` and ``/metrics`` needs ``Authorization: Bearer <token>`` (workers forward
  with it, so every worker of a group must have the same token);
* a connection that has not sent a request's headers within `HEADER_TIMEOUT_S`
  (after connecting, or after its previous answer) is closed, and a body must arrive
  within the same time: slow senders cannot hold connections open;
* every number in a request is bounded (``ttl_ms`` in 1 .. `MAX_SNAPSHOT_TTL_MS`;
  overrides finite numbers within 64 bits, or null); a client (a peer address) holds
  at most `MAX_PINS_PER_CLIENT` pinned snapshots.

Kafka workers: a feature or score request for an entity whose partition another worker
owns is sent on to that worker (found in `streamcore.owners`) and its answer returned,
with ``X-Streamcore-Served-By`` naming it. While the partition moves (no owner known, or
the one named has let it go) the answer is 503 with ``Retry-After: 1``; 504 if the owner
does not answer in `FORWARD_TIMEOUT_S`. A forwarded request is never forwarded again:
a worker that does not own it answers 421. Snapshots live on the worker that pinned
them, so reads with a snapshot id are not forwarded (421 names the partition).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .codec import encode_output
from .decoding import decode_strict
from .online import NotOwned, SnapshotExpired, UnknownView

if TYPE_CHECKING:
    from .runner import Runner


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=encode_output(data), status=status, content_type="application/json", headers=headers)


log = logging.getLogger("streamcore.serving")

HEADER_TIMEOUT_S = 10.0
"""A connection must send each request's headers (and then its body) within this time."""
MAX_BODY_BYTES = 1 << 20
MAX_SNAPSHOT_TTL_MS = 3_600_000
"""A pinned snapshot lives at most an hour (it holds copies of every entity changed since)."""
MAX_PINS_PER_CLIENT = 100
"""Snapshots one client may hold at once, so that no client can evict everyone else's."""
MAX_OVERRIDE_INT = 2**63 - 1
OPEN_PATHS = frozenset({"/health", "/metrics"})
"""Answered without the token: probes and scrapers."""

FORWARDED_BY = "X-Streamcore-Forwarded-By"
"""Set on a request one worker forwards to another (which then never forwards it again)."""
SERVED_BY = "X-Streamcore-Served-By"
FORWARD_TIMEOUT_S = 2.0


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return _json({"error": message, "status": status}, status, headers)


def _moving(message: str) -> web.Response:
    return _error(503, f"{message}; the partition is moving between workers, retry shortly", {"Retry-After": "1"})


async def _body(request: web.Request) -> dict[str, Any] | web.Response:
    """The request's JSON object, or the 400 response that says why there is none."""
    try:
        raw = await asyncio.wait_for(request.read(), HEADER_TIMEOUT_S)
    except TimeoutError:
        return _error(408, f"the body did not arrive within {HEADER_TIMEOUT_S:g} s")
    if not raw:
        return {}
    try:
        body = decode_strict(raw)  # exact: a number beyond 64 bits stays an int, to be refused
    except (ValueError, RecursionError) as exc:
        return _error(400, f"the body is not JSON: {exc}")
    if not isinstance(body, dict):
        return _error(400, "the body must be a JSON object")
    return body


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
        return _error(exc.status, exc.reason, headers)
    except Exception:
        log.exception("HTTP %s %s failed", request.method, request.path)
        return _error(500, "internal error (logged by the worker)")


class _HeaderDeadline(asyncio.Protocol):
    """Wraps aiohttp's protocol for one connection: closes it if a request's headers are slow.

    Armed when the connection is made and after each answer; disarmed when a request's
    headers are complete (aiohttp then calls the handler: `Server.deadlines` middleware).
    """

    def __init__(self, inner: Any, deadlines: dict[Any, _HeaderDeadline]) -> None:
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


class Server:
    """The HTTP front of one runner."""

    def __init__(self, runner: Runner, host: str = "127.0.0.1", port: int = 8080, token: str = "") -> None:
        self.runner = runner
        self.host = host
        self.port = port
        self.token = token
        self.deadlines: dict[Any, _HeaderDeadline] = {}
        self.pins: dict[str, set[str]] = {}
        """Per client, the ids of the snapshots it pinned (released or expired ones are pruned)."""
        self.app = web.Application(
            middlewares=[json_errors, self.header_deadline, self.authorize], client_max_size=MAX_BODY_BYTES
        )
        self.app.add_routes(
            [
                web.get("/features/{entity}", self.features),
                web.post("/score/{model}", self.score),
                web.post("/snapshots", self.pin),
                web.get("/snapshots/{id}", self.snapshot),
                web.delete("/snapshots/{id}", self.release),
                web.get("/views", self.views),
                web.get("/health", self.health),
                web.get("/metrics", self.metrics),
            ]
        )
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None
        self._client: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._client = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S))
        self._runner = web.AppRunner(self.app, access_log=None, keepalive_timeout=HEADER_TIMEOUT_S)
        await self._runner.setup()
        protocols = self._runner.server
        assert protocols is not None
        self._listener = await asyncio.get_running_loop().create_server(
            lambda: _HeaderDeadline(protocols(), self.deadlines), self.host, self.port, reuse_address=True
        )
        if self.port == 0:  # an ephemeral port: report the one the OS chose
            self.port = int(self._listener.sockets[0].getsockname()[1])
        if not self.token and self.host not in ("127.0.0.1", "localhost", "::1"):
            log.warning(
                "HTTP on %s:%d without a token: anyone who reaches the port can read features and pin "
                "snapshots (set --http-token / STREAMCORE_HTTP_TOKEN)",
                self.host,
                self.port,
            )

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def _forward(self, request: web.Request, not_owned: NotOwned, snapshot: str | None) -> web.Response:
        """Answer with the owner's answer to the same request (see the module docstring)."""
        if request.headers.get(FORWARDED_BY) or snapshot is not None:
            return _error(421, str(not_owned))
        url = self.runner.owner_url(not_owned.view, not_owned.partition)
        if url is None or url == self.runner.advertised_url or self._client is None:
            return _moving(f"no worker has announced partition {not_owned.partition} of view {not_owned.view!r}")
        try:
            async with self._client.request(
                request.method,
                url + request.path_qs,
                data=await request.read(),
                headers={
                    FORWARDED_BY: self.runner.advertised_url,
                    "Content-Type": "application/json",
                    **({"Authorization": f"Bearer {self.token}"} if self.token else {}),
                },
            ) as answer:
                body = await answer.read()
        except TimeoutError:
            partition = not_owned.partition
            return _error(504, f"{url} (owner of partition {partition}) gave no answer in {FORWARD_TIMEOUT_S} s")
        except aiohttp.ClientError as exc:
            return _moving(f"{url}, the last known owner of partition {not_owned.partition}, is unreachable ({exc})")
        if answer.status == 421:
            return _moving(f"{url} no longer owns partition {not_owned.partition}")
        return web.Response(body=body, status=answer.status, content_type=answer.content_type, headers={SERVED_BY: url})

    # -- middlewares ----------------------------------------------------------------------------
    @web.middleware
    async def header_deadline(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """The headers are in: stop the connection's header clock, and restart it after the answer."""
        deadline = self.deadlines.get(request.transport)
        if deadline is not None:
            deadline.disarm()
        try:
            return await handler(request)
        finally:
            if deadline is not None:
                deadline.arm()

    @web.middleware
    async def authorize(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.token and request.path not in OPEN_PATHS:
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
                return _error(401, "this worker needs 'Authorization: Bearer <token>' (its --http-token)")
        return await handler(request)

    @staticmethod
    def _client_of(request: web.Request) -> str:
        """Who pins a snapshot, for `MAX_PINS_PER_CLIENT`: the peer's address."""
        return request.remote or "unknown"

    # -- handlers -------------------------------------------------------------------------------
    async def features(self, request: web.Request) -> web.Response:
        online = self.runner.online
        entity = request.match_info["entity"]
        names = [v for v in request.query.get("view", "").split(",") if v] or self.runner.view_names()
        snapshot = request.query.get("snapshot")
        try:
            reads = [online.read(view, entity, snapshot).as_dict() for view in names]
        except NotOwned as exc:
            return await self._forward(request, exc, snapshot)
        except UnknownView as exc:
            return _error(404, str(exc))
        except SnapshotExpired as exc:
            return _error(410, str(exc))
        return _json({"entity": entity, "views": reads})

    async def score(self, request: web.Request) -> web.Response:
        name = request.match_info["model"]
        model = self.runner.app.models.get(name)
        if model is None:
            return _error(404, f"no model {name!r}; known: {sorted(self.runner.app.models)}")
        body = await _body(request)
        if isinstance(body, web.Response):
            return body
        entity = body.get("entity")
        if not isinstance(entity, str) or not entity:
            return _error(400, 'give the entity to score: {"entity": "<key>"}')
        overrides = body.get("overrides") or {}
        if not isinstance(overrides, dict):
            return _error(400, "overrides must be an object of feature name to value")
        for feature, value in overrides.items():
            if (problem := _bad_override(feature, value)) is not None:
                return _error(400, problem)
        snapshot = body.get("snapshot")
        if snapshot is not None and not isinstance(snapshot, str):
            return _error(400, "snapshot must be a snapshot id string")
        try:
            read = self.runner.online.read(model.view, entity, snapshot)
            inputs = model.inputs(read.values(), overrides)
        except SnapshotExpired as exc:
            return _error(410, str(exc))
        except NotOwned as exc:
            return await self._forward(request, exc, snapshot)
        except KeyError as exc:
            return _error(400, str(exc.args[0]))
        result = await model.score_request(inputs)
        return _json(
            {
                "model": name,
                "entity": entity,
                "score": result.value,
                "fallback": result.reason,
                "latency_ms": round(result.latency_ms, 3),
                "features": inputs,
                "position": read.as_dict()["position"],
                "snapshot": snapshot,
            }
        )

    async def pin(self, request: web.Request) -> web.Response:
        body = await _body(request)
        if isinstance(body, web.Response):
            return body
        ttl = body.get("ttl_ms")
        if ttl is not None and (
            isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 < ttl <= MAX_SNAPSHOT_TTL_MS
        ):
            return _error(400, f"ttl_ms must be an integer of milliseconds in 1 .. {MAX_SNAPSHOT_TTL_MS}")
        online = self.runner.online
        client = self._client_of(request)
        now = online.clock_ms()
        held = self.pins[client] = {  # released or expired ones no longer count
            i for i in self.pins.get(client, ()) if (s := online.snapshots.get(i)) is not None and s.expires_ms > now
        }
        if len(held) >= MAX_PINS_PER_CLIENT:
            return _error(429, f"this client holds {len(held)} snapshots, the most allowed; release some first")
        snapshot = online.pin(ttl)
        held.add(snapshot.id)
        return _json(self._describe(snapshot), 201)

    async def snapshot(self, request: web.Request) -> web.Response:
        try:
            return _json(self._describe(self.runner.online.snapshot(request.match_info["id"])))
        except SnapshotExpired as exc:
            return _error(410, str(exc))

    async def release(self, request: web.Request) -> web.Response:
        try:
            self.runner.online.release(request.match_info["id"])
        except SnapshotExpired as exc:
            return _error(410, str(exc))
        return web.Response(status=204)

    async def views(self, request: web.Request) -> web.Response:
        online = self.runner.online
        return _json(
            {
                "views": {
                    name: {"stream": store.stream.name, "features": list(store.reader.feature_names)}
                    for name, store in sorted(online.views.items())
                },
                "models": {
                    name: {"view": m.view, "features": list(m.features), "timeout_ms": m.timeout_ms}
                    for name, m in sorted(self.runner.app.models.items())
                },
            }
        )

    async def health(self, request: web.Request) -> web.Response:
        ready = self.runner.ready
        return _json({"live": True, "ready": ready}, 200 if ready else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self.runner.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    @staticmethod
    def _describe(snapshot: Any) -> dict[str, Any]:
        return {
            "id": snapshot.id,
            "epoch": snapshot.epoch,
            "created_ms": snapshot.created_ms,
            "expires_ms": snapshot.expires_ms,
            "positions": {
                stream: {str(p): o for p, o in parts.items()} for stream, parts in snapshot.positions.items()
            },
        }
