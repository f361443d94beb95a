"""The app as a document: its streams and their steps, feature views and models.

What an agent (the MCP resource ``streamcore://topology``) or an operator reads to learn
where each feature comes from and which model reads it.
"""

from __future__ import annotations

from typing import Any

from streamcore.dataflow.stream import (
    FilterStep,
    FunctionSink,
    KeyByStep,
    MapStep,
    Pipeline,
    ScoreStep,
    ShuffleSink,
    Step,
    TopicSink,
)
from streamcore.serving.agent_tools import declared_views
from streamcore.serving.served import ServedWorker


def step_label(step: Step) -> str:
    """``map(decide)``, ``key_by('card')``, ``FeatureView(card)``, ``score(fraud)``."""
    if isinstance(step, MapStep | FilterStep):
        kind = "map" if isinstance(step, MapStep) else "filter"
        return f"{kind}({getattr(step.fn, '__qualname__', type(step.fn).__name__)})"
    if isinstance(step, KeyByStep):
        return step.label
    if isinstance(step, ScoreStep):
        return f"score({step.model})"
    return f"{type(step.spec).__name__}({step.spec.name})"


def _sink_label(pipeline: Pipeline) -> str:
    sink = pipeline.sink
    if isinstance(sink, TopicSink):
        return f"to({sink.topic})"
    if isinstance(sink, ShuffleSink):
        return f"repartition({sink.topic})"
    assert isinstance(sink, FunctionSink)
    return sink.label


def topology(worker: ServedWorker) -> dict[str, Any]:
    app = worker.app
    return {
        "app": app.name,
        "version": app.version,
        "streams": [
            {
                "name": p.name,
                "source": p.source,
                "steps": [step_label(s) for s in p.steps],
                "sink": _sink_label(p),
            }
            for p in app.pipelines
        ],
        "views": {name: view_document(view.declaration, view.stream) for name, view in declared_views(worker).items()},
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


def view_document(declaration: Any, stream: str) -> dict[str, Any]:
    """One view: its entity key, the stream that keeps it, and each feature's schema."""
    return {
        "entity": declaration.entity,
        "stream": stream,
        "description": declaration.description,
        "features": declaration.feature_schemas(),
    }
