"""The app as a document: its streams and their steps, feature views and models.

What an agent (the MCP resource ``streamcore://topology``) or an operator reads to learn
where each feature comes from and which model reads it. Streams are named as the status
page names them (`streamcore.dataflow.graph`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streamcore.dataflow.graph import describe
from streamcore.serving.agent_tools import DeclaredView
from streamcore.serving.served import ServedWorker


def topology(worker: ServedWorker, views: Mapping[str, DeclaredView]) -> dict[str, Any]:
    """The app's streams, its feature `views` (`agent_tools.declared_views`) and its models."""
    app = worker.app
    return {
        "app": app.name,
        "version": app.version,
        "streams": [describe(pipeline) for pipeline in app.pipelines],
        "views": {name: view_document(view) for name, view in views.items()},
        "models": {
            name: {
                "view": m.view,
                "features": list(m.features),
                "fallback": m.fallback,
                "timeout_ms": m.timeout_ms,
                "description": m.description,
            }
            for name, m in sorted(app.models.items())
        },
    }


def view_document(view: DeclaredView) -> dict[str, Any]:
    """One view: its entity key, the stream that keeps it, and each feature's schema."""
    return {
        "entity": view.declaration.entity,
        "stream": view.stream,
        "description": view.declaration.description,
        "features": view.features,
    }
