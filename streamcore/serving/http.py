"""HTTP on the worker's event loop (aiohttp): features, scores, snapshots, health, metrics.

    GET    /features/{entity}[?view=a,b][&snapshot=ID]   an entity's features, position, freshness
    POST   /score/{model}     {"entity": "c42", "overrides": {...}, "snapshot": "ID"}
    POST   /snapshots         {"ttl_ms": 30000}  ->  201 {"id", "expires_ms", "positions"}
    GET    /snapshots/{id}    DELETE /snapshots/{id}
    GET    /views             the feature views, their features, and the models
    GET    /health            200 when ready (every stream caught up once), 503 while catching up
    GET    /metrics           Prometheus text format
    GET    /  and  /status    the live status page, and the JSON it polls (`streamcore.serving.status_page`)

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
with ``X-Streamcore-Served-By`` naming it. While the partition moves, the worker that let
it go answers from its last checkpoint, with ``stale_ms`` set (`streamcore.runtime.handover`);
when no worker can (no owner known, or the one named has let go of it entirely) the answer
is 503 with ``Retry-After: 1``; 504 if the owner
does not answer in `FORWARD_TIMEOUT_S`. A forwarded request is never forwarded again:
a worker that does not own it answers 421. Snapshots live on the worker that pinned
them, so reads with a snapshot id are not forwarded (421 names the partition).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streamcore.online.reads import NotOwned, SnapshotExpired, UnknownView
from streamcore.serving.guards import (
    HEADER_TIMEOUT_S,
    LOOPBACK_HOSTS,
    MAX_BODY_BYTES,
    OPEN_PATHS,
    Handler,
    HeaderDeadline,
    PinLedger,
    TooManyPins,
    bad_overrides,
    bad_ttl,
    error_response,
    json_errors,
    json_response,
    read_body,
)
from streamcore.serving.served import FORWARDED_BY, SERVED_BY, ServedWorker
from streamcore.serving.status_page import StatusPage

log = logging.getLogger("streamcore.serving")

FORWARD_TIMEOUT_S = 2.0
MCP_PATH = "/mcp"


def _moving(message: str) -> web.Response:
    return error_response(
        503, f"{message}; the partition is moving between workers, retry shortly", {"Retry-After": "1"}
    )


class Server:
    """The HTTP front of one runner."""

    def __init__(
        self,
        runner: ServedWorker,
        host: str = "127.0.0.1",
        port: int = 8080,
        token: str = "",
        *,
        mcp: bool = False,
        mcp_token: str = "",
    ) -> None:
        """`mcp`: also serve the app's tools over MCP at ``/mcp``, which needs `mcp_token` if set,
        else `token` (`streamcore.serving.mcp_server`)."""
        self.runner = runner
        self.host = host
        self.port = port
        self.token = token
        self.mcp_token = mcp_token or token
        self.deadlines: dict[Any, HeaderDeadline] = {}
        self.pins = PinLedger(runner.online)
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
                *StatusPage(runner.metrics).routes(),
            ]
        )
        self.mcp = self._mcp_endpoint() if mcp else None
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None
        self._client: aiohttp.ClientSession | None = None

    def _mcp_endpoint(self) -> Any:
        from streamcore.serving.agent_tools import AgentTools
        from streamcore.serving.mcp_server import McpEndpoint  # here: the SDK is an optional extra

        endpoint = McpEndpoint(AgentTools(self.runner, self.pins, self.ask_owner), self.host)
        self.app.router.add_route("*", MCP_PATH, endpoint.handle)
        return endpoint

    async def start(self) -> None:
        if self.mcp is not None:
            await self.mcp.start()
        self._client = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S))
        self._runner = web.AppRunner(self.app, access_log=None, keepalive_timeout=HEADER_TIMEOUT_S)
        await self._runner.setup()
        protocols = self._runner.server
        assert protocols is not None
        self._listener = await asyncio.get_running_loop().create_server(
            lambda: HeaderDeadline(protocols(), self.deadlines), self.host, self.port, reuse_address=True
        )
        if self.port == 0:  # an ephemeral port: report the one the OS chose
            self.port = int(self._listener.sockets[0].getsockname()[1])
        if not self.token and self.host not in LOOPBACK_HOSTS:
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
        if self.mcp is not None:
            await self.mcp.stop()

    async def _forward(self, request: web.Request, not_owned: NotOwned, snapshot: str | None) -> web.Response:
        """Answer with the owner's answer to the same request (see the module docstring)."""
        if request.headers.get(FORWARDED_BY) or snapshot is not None:
            return error_response(421, str(not_owned))
        return await self.ask_owner(not_owned, request.method, request.path_qs, await request.read())

    async def ask_owner(self, not_owned: NotOwned, method: str, path_qs: str, body: bytes) -> web.Response:
        """The answer of the worker that keeps the partition to this request (with `SERVED_BY`
        naming it), or the 503 or 504 that says why there is none (also for MCP tool calls)."""
        url = self.runner.owner_url(not_owned.view, not_owned.partition)
        if url is None or url == self.runner.advertised_url or self._client is None:
            return _moving(f"no worker has announced partition {not_owned.partition} of view {not_owned.view!r}")
        try:
            async with self._client.request(
                method,
                url + path_qs,
                data=body,
                headers={
                    FORWARDED_BY: self.runner.advertised_url,
                    "Content-Type": "application/json",
                    **({"Authorization": f"Bearer {self.token}"} if self.token else {}),
                },
            ) as answer:
                data = await answer.read()
        except TimeoutError:
            partition = not_owned.partition
            return error_response(
                504, f"{url} (owner of partition {partition}) gave no answer in {FORWARD_TIMEOUT_S} s"
            )
        except aiohttp.ClientError as exc:
            return _moving(f"{url}, the last known owner of partition {not_owned.partition}, is unreachable ({exc})")
        if answer.status == 421:
            return _moving(f"{url} no longer owns partition {not_owned.partition}")
        return web.Response(body=data, status=answer.status, content_type=answer.content_type, headers={SERVED_BY: url})

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
        token, flag = (self.mcp_token, "--mcp-token") if request.path == MCP_PATH else (self.token, "--http-token")
        if token and request.path not in OPEN_PATHS:
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return error_response(401, f"this worker needs 'Authorization: Bearer <token>' (its {flag})")
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
            return error_response(404, str(exc))
        except SnapshotExpired as exc:
            return error_response(410, str(exc))
        return json_response({"entity": entity, "views": reads})

    async def score(self, request: web.Request) -> web.Response:
        name = request.match_info["model"]
        model = self.runner.app.models.get(name)
        if model is None:
            return error_response(404, f"no model {name!r}; known: {sorted(self.runner.app.models)}")
        body = await read_body(request)
        if isinstance(body, web.Response):
            return body
        entity = body.get("entity")
        if not isinstance(entity, str) or not entity:
            return error_response(400, 'give the entity to score: {"entity": "<key>"}')
        overrides = body.get("overrides") or {}
        if (problem := bad_overrides(overrides)) is not None:
            return error_response(400, problem)
        snapshot = body.get("snapshot")
        if snapshot is not None and not isinstance(snapshot, str):
            return error_response(400, "snapshot must be a snapshot id string")
        try:
            read = self.runner.online.read(model.view, entity, snapshot)
            inputs = model.inputs(read.values(), overrides)
        except SnapshotExpired as exc:
            return error_response(410, str(exc))
        except NotOwned as exc:
            return await self._forward(request, exc, snapshot)
        except KeyError as exc:
            return error_response(400, str(exc.args[0]))
        result = await model.score_request(inputs)
        return json_response(
            {
                "model": name,
                "entity": entity,
                "found": read.found,
                **result.as_dict(),
                "features": inputs,
                "position": read.as_dict()["position"],
                "snapshot": snapshot,
                "stale_ms": read.stale_ms,
            }
        )

    async def pin(self, request: web.Request) -> web.Response:
        body = await read_body(request)
        if isinstance(body, web.Response):
            return body
        ttl = body.get("ttl_ms")
        if (problem := bad_ttl(ttl)) is not None:
            return error_response(400, problem)
        try:
            snapshot = self.pins.pin(self._client_of(request), ttl)
        except TooManyPins as exc:
            return error_response(429, str(exc))
        return json_response(snapshot.as_dict(), 201)

    async def snapshot(self, request: web.Request) -> web.Response:
        try:
            return json_response(self.runner.online.snapshot(request.match_info["id"]).as_dict())
        except SnapshotExpired as exc:
            return error_response(410, str(exc))

    async def release(self, request: web.Request) -> web.Response:
        try:
            self.runner.online.release(request.match_info["id"])
        except SnapshotExpired as exc:
            return error_response(410, str(exc))
        return web.Response(status=204)

    async def views(self, request: web.Request) -> web.Response:
        online = self.runner.online
        return json_response(
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
        return json_response({"live": True, "ready": ready}, 200 if ready else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self.runner.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )
