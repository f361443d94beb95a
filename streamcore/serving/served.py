"""What the worker's HTTP and MCP servers read of the worker they serve (the `Runner`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from prometheus_client import CollectorRegistry

from streamcore.dataflow.stream import Pipeline
from streamcore.online.models import Model
from streamcore.online.views import OnlineState

FORWARDED_BY = "X-Streamcore-Forwarded-By"
"""Set on a request one worker forwards to another (which then never forwards it again)."""
SERVED_BY = "X-Streamcore-Served-By"
"""Names the worker that answered a forwarded request."""


class _Metrics(Protocol):
    registry: CollectorRegistry

    def document(self) -> dict[str, Any]: ...


class _Models(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def models(self) -> Mapping[str, Model]: ...

    @property
    def pipelines(self) -> tuple[Pipeline, ...]: ...


class ServedWorker(Protocol):
    """What the server reads of the worker it serves (the `Runner`)."""

    @property
    def app(self) -> _Models: ...

    @property
    def online(self) -> OnlineState: ...

    @property
    def metrics(self) -> _Metrics: ...

    @property
    def ready(self) -> bool: ...

    @property
    def advertised_url(self) -> str: ...

    def view_names(self) -> list[str]: ...

    def owner_url(self, view: str, partition: int) -> str | None: ...
