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
``{"error": ...}`` with a 4xx status that says what was wrong: 400 for a malformed
request, 404 for an unknown view or model, 410 for an expired snapshot, and 421 (on a
Kafka worker) for an entity whose partition another worker owns: routing the request to
that worker is not built yet; the error names the partition.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .online import NotOwned, SnapshotExpired, UnknownView

if TYPE_CHECKING:
    from .runner import Runner


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _error(status: int, message: str) -> web.Response:
    return _json({"error": message, "status": status}, status)


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

    async def start(self) -> None:
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

    # -- handlers -------------------------------------------------------------------------------
    async def features(self, request: web.Request) -> web.Response:
        online = self.runner.online
        entity = request.match_info["entity"]
        names = [v for v in request.query.get("view", "").split(",") if v] or sorted(online.views)
        snapshot = request.query.get("snapshot")
        try:
            reads = [online.read(view, entity, snapshot).as_dict() for view in names]
        except NotOwned as exc:
            return _error(421, str(exc))
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
            return _error(421, str(exc))
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
