"""How a pipeline's graph is named for people: its source, each step, its sink.

One naming for everything that shows a job: the status page (`streamcore.runtime.status_document`)
and an agent's topology resource (`streamcore.serving.topology`).
"""

from __future__ import annotations

from typing import Any

from streamcore.dataflow.stream import (
    FilterStep,
    FunctionSink,
    KeyByStep,
    MapStep,
    OperatorStep,
    Pipeline,
    ScoreStep,
    ShuffleSink,
    SinkStep,
    Step,
    TopicSink,
)


def step_label(step: Step) -> str:
    """How the graph names a step: what it does, and with what."""
    if isinstance(step, MapStep):
        return f"map({_name(step.fn)})"
    if isinstance(step, FilterStep):
        return f"filter({_name(step.fn)})"
    if isinstance(step, KeyByStep):
        return step.label
    if isinstance(step, OperatorStep):
        spec: Any = step.spec  # the runtime knows operators by their interface only
        if hasattr(spec, "features"):
            return f"features {spec.name}"
        if hasattr(spec, "aggregations") and hasattr(spec, "kind"):
            return f"{spec.kind} window: {', '.join(spec.aggregations)}"
        return str(spec.name)
    assert isinstance(step, ScoreStep)
    return f"score({step.model} → {step.into})"


def sink_label(sink: SinkStep) -> str:
    if isinstance(sink, TopicSink):
        return f"topic {sink.topic}"
    if isinstance(sink, ShuffleSink):
        return f"repartition {sink.topic}"
    assert isinstance(sink, FunctionSink)
    return f"sink {sink.label}"


def describe(pipeline: Pipeline) -> dict[str, Any]:
    """The pipeline's graph: ``{"name", "source", "steps", "sink"}``."""
    return {
        "name": pipeline.name,
        "source": pipeline.source,
        "steps": [step_label(step) for step in pipeline.steps],
        "sink": sink_label(pipeline.sink),
    }


def _name(fn: Any) -> str:
    return str(getattr(fn, "__name__", type(fn).__name__))
