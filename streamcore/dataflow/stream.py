"""The fluent pipeline builder: ``app.stream(topic).key_by(...).window(...).aggregate(...).to(out)``.

Each method returns a new `Stream`; nothing runs until the app does. Settings are
checked here, when the job is built, and errors name the setting.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from streamcore.base.durations import Duration, to_ms
from streamcore.base.errors import ConfigError
from streamcore.dataflow.operator import OperatorSpec, WindowSpec
from streamcore.eventtime.watermarks import EventTime
from streamcore.io.transport import TopicSpec


class PipelineRegistry(Protocol):
    """What a stream needs of its app (`streamcore.dataflow.app.App`): its models, and a
    place to register the pipeline its `to` finishes."""

    @property
    def models(self) -> Mapping[str, Any]: ...

    def _register(self, pipeline: Pipeline) -> Pipeline: ...


@dataclass(frozen=True, slots=True)
class MapStep:
    fn: Callable[..., Any]
    with_record: bool = False
    """``fn(event, record)``: the step also gets the `Record` the event came from."""


@dataclass(frozen=True, slots=True)
class FilterStep:
    fn: Callable[..., bool]
    with_record: bool = False


@dataclass(frozen=True, slots=True)
class KeyByStep:
    field: str | None = None
    fn: Callable[[Any], str] | None = None

    @property
    def label(self) -> str:
        return f"key_by({self.field!r})" if self.field else "key_by(fn)"


@dataclass(frozen=True, slots=True)
class OperatorStep:
    spec: OperatorSpec


@dataclass(frozen=True, slots=True)
class ScoreStep:
    """Score the event's entity with a registered model; the score goes into field `into`."""

    model: str
    into: str
    features_into: str | None = None


Step = MapStep | FilterStep | KeyByStep | OperatorStep | ScoreStep


@dataclass(frozen=True, slots=True)
class TopicSink:
    topic: str


@dataclass(frozen=True, slots=True)
class FunctionSink:
    """Calls ``fn(values)`` with the output values of each processed batch."""

    fn: Callable[[list[Any]], None]
    label: str


@dataclass(frozen=True, slots=True)
class ShuffleSink:
    """The internal topic a repartitioned stream's first stage writes (`streamcore.runtime.repartition`)."""

    topic: str
    partitions: int


SinkStep = TopicSink | FunctionSink | ShuffleSink


@dataclass(frozen=True, slots=True)
class Pipeline:
    """A complete, validated job: one source topic, its steps, one sink. Runs as one task."""

    name: str
    source: str
    event_time: EventTime | None
    steps: tuple[Step, ...]
    sink: SinkStep
    repartitioned_from: TopicSpec | None = None
    """Its source is the repartition topic of this topic, whose partitions' shuffle tasks write it."""


def _discard(values: list[Any]) -> None:
    return None


def _callable(setting: str, fn: Any) -> Any:
    if not callable(fn):
        raise ConfigError(setting, f"expected a function, got {type(fn).__name__}")
    return fn


class Stream:
    """A stream of events from one topic, transformed step by step."""

    def __init__(
        self,
        app: PipelineRegistry,
        source: str,
        event_time: EventTime | None,
        name: str,
        steps: tuple[Step, ...] = (),
    ) -> None:
        self._app = app
        self._source = source
        self._event_time = event_time
        self._name = name
        self._steps = steps

    @property
    def name(self) -> str:
        return self._name

    def _then(self, step: Step) -> Stream:
        return Stream(self._app, self._source, self._event_time, self._name, (*self._steps, step))

    def map(self, fn: Callable[..., Any], *, with_record: bool = False) -> Stream:
        """Replace each event by ``fn(event)``.

        With ``with_record=True``, ``fn(event, record)``: `record` is the `Record` the event
        came from (topic, partition, offset, timestamp, key, headers; its value the raw
        bytes), or None for a window's result. After a repartition (Kafka) it is the
        repartitioned record: its partition and offset are the repartition topic's, its key
        and headers those of the input."""
        return self._then(MapStep(_callable("map", fn), with_record))

    def filter(self, fn: Callable[..., bool], *, with_record: bool = False) -> Stream:
        """Keep the events for which ``fn(event)`` is true (dropped ones are counted as filtered).

        ``with_record=True``: ``fn(event, record)``, as for `map`."""
        return self._then(FilterStep(_callable("filter", fn), with_record))

    def key_by(self, key: str | Callable[[Any], str]) -> Stream:
        """Key events by a field name or a function; keys must be strings (else: ``schema``)."""
        if isinstance(key, str):
            if not key:
                raise ConfigError("key_by", "the key field is missing")
            return self._then(KeyByStep(field=key))
        return self._then(KeyByStep(fn=_callable("key_by", key)))

    def window(self, window: WindowSpec, *, allowed_lateness: Duration = 0) -> WindowedStream:
        """Group keyed events into event-time windows; follow with `.aggregate(...)`."""
        if not hasattr(window, "aggregate_operator"):
            raise ConfigError("window", f"expected a window such as Tumbling('1m'), got {window!r}")
        if not any(isinstance(step, KeyByStep) for step in self._steps):
            # windows are per key: without one every window's key would be None, which no
            # checkpoint can store (it used to stop the run at its first checkpoint)
            raise ConfigError("window", "windows are per key: key the stream first, e.g. .key_by('card').window(...)")
        return WindowedStream(self, window, to_ms(allowed_lateness, "window.allowed_lateness"))

    def process(self, spec: OperatorSpec) -> Stream:
        """Add a stateful operator (windows, features, joins ...) built from `spec`."""
        for attr in ("name", "state_version", "build", "checker"):
            if not hasattr(spec, attr):
                raise ConfigError("process", f"{spec!r} is not an operator spec (no {attr!r})")
        taken = {s.spec.name for s in self._steps if isinstance(s, OperatorStep)}
        if spec.name in taken:
            raise ConfigError("name", f"two operators named {spec.name!r} in stream {self._name!r}")
        if spec.needs_event_time and self._event_time is None:
            raise ConfigError(
                "event_time",
                f"operator {spec.name!r} needs event time: pass event_time=EventTime(...) to app.stream()",
            )
        return self._then(OperatorStep(spec))

    def features(self, view: OperatorSpec) -> Stream:
        """Keep a feature view (`operators.FeatureView`) current; events pass on unchanged."""
        return self.process(view)

    def score(self, model: str, *, into: str = "score", features_into: str | None = None) -> Stream:
        """Score each event's entity with `app.model(model, ...)`, from the features just applied.

        The score is added to the event as field `into` (and ``<into>_fallback`` holds the
        reason when the model's fallback was used); with `features_into`, the model's
        inputs are added too, so later steps can combine rules with the score.
        """
        if model not in self._app.models:
            raise ConfigError("score", f"no model {model!r}; register it with app.model({model!r}, ...)")
        if not into or not isinstance(into, str):
            raise ConfigError("score.into", "name the field the score goes into")
        return self._then(ScoreStep(model, into, features_into))

    def discard(self) -> Pipeline:
        """End the stream without an output topic: its effect is its state (e.g. feature views)."""
        return self.sink(_discard, label="discard")

    def to(self, topic: TopicSpec | str) -> Pipeline:
        """Write the stream's output to a topic, as JSON, keyed by the entity key."""
        name = topic if isinstance(topic, str) else topic.name
        return self._app._register(self._pipeline(TopicSink(name)))

    def sink(self, fn: Callable[[list[Any]], Any], *, label: str | None = None) -> Pipeline:
        """Send the output to a Python function, called with the values of each batch.

        An async function is awaited: a slow one holds the stream back (and pauses its source).
        """
        _callable("sink", fn)
        return self._app._register(self._pipeline(FunctionSink(fn, label or str(getattr(fn, "__name__", "sink")))))

    def _pipeline(self, sink: SinkStep) -> Pipeline:
        return Pipeline(self._name, self._source, self._event_time, self._steps, sink)


class WindowedStream:
    """A keyed stream cut into windows, waiting for its aggregations."""

    def __init__(self, stream: Stream, window: WindowSpec, allowed_lateness_ms: int) -> None:
        self._stream = stream
        self._window = window
        self._allowed_lateness_ms = allowed_lateness_ms

    def aggregate(self, name: str | None = None, **aggregations: Any) -> Stream:
        """Aggregate each window: ``aggregate(n=Count(), total=Sum("amount"))``.

        Aggregations are objects from `operators.aggregations`, or the short forms
        ``"count"`` and ``("sum", "amount")``. Each fired window becomes one output
        event ``{"key", "start", "end", <name>: <value>, ..., "revision"}``.
        """
        if not aggregations:
            raise ConfigError("aggregate", "give at least one aggregation, e.g. aggregate(n=Count())")
        index = sum(isinstance(s, OperatorStep) for s in self._stream._steps) + 1
        op_name = name or f"window{index}"
        spec = self._window.aggregate_operator(
            aggregations, allowed_lateness_ms=self._allowed_lateness_ms, name=op_name
        )
        return self._stream.process(spec)
