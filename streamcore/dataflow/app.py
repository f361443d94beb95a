"""`App`: the topics and streams of one job, and the entry point to run it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from streamcore.base.durations import Duration, optional_ms
from streamcore.base.errors import ConfigError
from streamcore.dataflow.stream import Pipeline, Stream, TopicSink
from streamcore.eventtime.watermarks import EventTime
from streamcore.io.log.topics import check_topic_name
from streamcore.io.transport import TopicSpec
from streamcore.online.models import Model


class App:
    """A streamcore application.

    >>> from streamcore import App, EventTime
    >>> app = App("payments")
    >>> payments = app.topic("payments", partitions=4)
    >>> totals = app.topic("card-totals")
    >>> app.stream(payments, event_time=EventTime("ts", max_out_of_orderness="5s")) \\
    ...    .key_by("card").map(lambda e: e).to(totals).name
    'payments'

    Every input event ends up somewhere: in state and outputs, in the late topic
    (``<name>-late``) or in the dead-letter topic (``<name>-dlq``).
    """

    def __init__(
        self, name: str, *, version: str = "0", dead_letter_topic: str | None = None, late_topic: str | None = None
    ) -> None:
        try:
            check_topic_name(name)
        except ConfigError:
            raise ConfigError("name", f"{name!r} is not a valid app name (letters, digits, '.', '_', '-')") from None
        self.name = name
        self.version = version
        self._topics: dict[str, TopicSpec] = {}
        self._pipelines: dict[str, Pipeline] = {}
        self.models: dict[str, Model] = {}
        self.dead_letter_topic = self.topic(dead_letter_topic or f"{name}-dlq")
        self.late_topic = self.topic(late_topic or f"{name}-late")

    def topic(
        self,
        name: str,
        *,
        partitions: int = 1,
        retention: Duration | None = None,
        retention_bytes: int | None = None,
        key: str | None = None,
    ) -> TopicSpec:
        """Declare a topic; it is created on the broker when the app starts, if missing.

        `key`: the event field its producers use as the record key. On Kafka a stream
        keyed by another field is repartitioned through an internal topic first, so that
        each key's state lives in one partition (see `streamcore.runtime.repartition`).
        """
        check_topic_name(name)
        if partitions < 1:
            raise ConfigError("partitions", f"topic {name!r}: must be >= 1, got {partitions}")
        if key is not None and (not isinstance(key, str) or not key):
            raise ConfigError("key", f"topic {name!r}: name the field records are keyed by, got {key!r}")
        spec = TopicSpec(name, partitions, optional_ms(retention, "retention"), retention_bytes, key)
        known = self._topics.get(name)
        if known is not None and known != spec:
            raise ConfigError("topic", f"topic {name!r} declared twice with different settings")
        self._topics[name] = spec
        return spec

    @property
    def sources(self) -> set[str]:
        """The topics its streams read."""
        return {pipeline.source for pipeline in self._pipelines.values()}

    def with_output_suffix(self, suffix: str, change: Callable[[Pipeline], Pipeline] | None = None) -> App:
        """The same app, writing every output (results, dead letters, late events) to
        ``<topic><suffix>`` instead: what `streamcore replay` runs. `change` is applied to
        each pipeline of the copy (a tool's own steps or sinks: `streamcore backfill`)."""
        copy = App(
            self.name,
            version=self.version,
            dead_letter_topic=self.dead_letter_topic.name + suffix,
            late_topic=self.late_topic.name + suffix,
        )
        outputs = {p.sink.topic for p in self._pipelines.values() if isinstance(p.sink, TopicSink)}
        for spec in self._topics.values():
            if spec.name in outputs:
                copy._topics[spec.name + suffix] = replace(spec, name=spec.name + suffix)
            elif spec not in (self.dead_letter_topic, self.late_topic):
                copy._topics[spec.name] = spec
        copy.models = dict(self.models)
        for pipeline in self._pipelines.values():
            sink = pipeline.sink
            if isinstance(sink, TopicSink):
                sink = TopicSink(sink.topic + suffix)
            copied = replace(pipeline, sink=sink)
            copy._pipelines[pipeline.name] = copied if change is None else change(copied)
        return copy

    def stream(self, topic: TopicSpec | str, *, event_time: EventTime | None = None, name: str | None = None) -> Stream:
        """A stream over a declared topic. `name` (default: the topic) identifies its state."""
        source = topic if isinstance(topic, str) else topic.name
        if source not in self._topics:
            raise ConfigError("topic", f"topic {source!r} is not declared; use app.topic({source!r})")
        if event_time is not None and not isinstance(event_time, EventTime):
            raise ConfigError("event_time", f"expected EventTime(...), got {event_time!r}")
        stream_name = name or source
        check_topic_name(stream_name)
        return Stream(self, source, event_time, stream_name)

    def model(
        self,
        name: str,
        model: Any,
        *,
        view: str,
        features: Sequence[str],
        fallback: Any,
        timeout_ms: float = 50.0,
        missing: float = 0.0,
        isolate: bool = False,
        description: str = "",
    ) -> Model:
        """Register a model that reads `features` of feature view `view` (see `streamcore.online.models`)."""
        if name in self.models:
            raise ConfigError("model", f"two models named {name!r}")
        registered = Model(name, model, view, features, fallback, timeout_ms, missing, isolate, description)
        self.models[name] = registered
        return registered

    def _register(self, pipeline: Pipeline) -> Pipeline:
        if pipeline.name in self._pipelines:
            raise ConfigError(
                "name", f"two streams named {pipeline.name!r}; pass name=... to app.stream() to tell them apart"
            )
        sink = getattr(pipeline.sink, "topic", None)
        if sink is not None and sink not in self._topics:
            raise ConfigError("to", f"topic {sink!r} is not declared; use app.topic({sink!r})")
        self._pipelines[pipeline.name] = pipeline
        return pipeline

    @property
    def topics(self) -> tuple[TopicSpec, ...]:
        return tuple(self._topics.values())

    @property
    def pipelines(self) -> tuple[Pipeline, ...]:
        return tuple(self._pipelines.values())
