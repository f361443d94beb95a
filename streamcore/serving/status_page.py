"""The worker's live status page: ``GET /`` (one HTML file, no build step) and ``GET /status`` (JSON).

The page (`status.html`, next to this module) polls ``/status`` every second and draws
the app's pipelines as a graph (source, steps, sink), and per task its partitions,
input positions and consumer lag, watermark and watermark lag, records in, out, late
and dead-lettered per second (the difference of two polls), backpressure, the last
checkpoint and state size; per view the freshness histogram; per model the score
latency and fallbacks; pinned snapshots; and on Kafka which worker owns which
partition, with links to the others' pages. Everything is served by the worker; the
page loads nothing from elsewhere. The document is `streamcore.runtime.status_document`.

Like ``/metrics``, both paths are open without the token: they carry counts and
positions, never an entity's features.
"""

from __future__ import annotations

from importlib import resources
from typing import Any, Protocol

from aiohttp import web

from streamcore.serving.guards import json_response

PAGE = resources.files("streamcore.serving").joinpath("status.html")


class _Documented(Protocol):
    def document(self) -> dict[str, Any]: ...


class StatusPage:
    """The handlers of ``/`` and ``/status``."""

    def __init__(self, metrics: _Documented) -> None:
        self.metrics = metrics
        self._html = PAGE.read_bytes()

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/", self.page), web.get("/status", self.status)]

    async def page(self, request: web.Request) -> web.Response:
        return web.Response(body=self._html, content_type="text/html", charset="utf-8")

    async def status(self, request: web.Request) -> web.Response:
        return json_response(self.metrics.document())
