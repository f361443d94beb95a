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
``{"error": ...}`` with a status that says what was wrong: 400 for a malformed
request, 404 for an unknown view or model, 410 for an expired snapshot.

Kafka workers: a feature or score request for an entity whose partition another worker
owns is sent on to that worker (found in `streamcore.owners`) and its answer returned,
with ``X-Streamcore-Served-By`` naming it. While the partition moves (no owner known, or
the one named has let it go) the answer is 503 with ``Retry-After: 1``; 504 if the owner
does not answer in `FORWARD_TIMEOUT_S`. A forwarded request is never forwarded again:
a worker that does not own it answers 421. Snapshots live on the worker that pinned
them, so reads with a snapshot id are not forwarded (421 names the partition).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aiohttp
import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .codec import encode_output
from .online import NotOwned, SnapshotExpired, UnknownView

if TYPE_CHECKING:
    from .runner import Runner


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=encode_output(data), status=status, content_type="application/json", headers=headers)


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
    raw = await request.read()
    if not raw:
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return _error(400, f"the body is not JSON: {exc}")
    if not isinstance(body, dict):
        return _error(400, "the body must be a JSON object")
    return body


class Server:
    """The HTTP front of one runner."""

    def __init__(self, runner: Runner, host: str = "127.0.0.1", port: int = 8080) -> None:
        self.runner = runner
        self.host = host
        self.port = port
        self.app = web.Application()
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
        self._client: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._client = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S))
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:  # an ephemeral port: report the one the OS chose
            self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
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
                headers={FORWARDED_BY: self.runner.advertised_url, "Content-Type": "application/json"},
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
        if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0):
            return _error(400, "ttl_ms must be a positive integer of milliseconds")
        return _json(self._describe(self.runner.online.pin(ttl)), 201)

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
