"""Co-located models: scored in the stream on every event and on request, from the online state.

    app.model("fraud", FraudModel(), view="card",
              features=["txn_1m", "merchants_5m", "spend_ratio"], fallback=0.5, timeout_ms=20)

A model is any callable ``model(features: dict) -> score``, or an object with
``predict_proba`` or ``predict`` (a scikit-learn estimator, say), which gets one row
``[[f1, f2, ...]]`` in the order of `features` (missing values become `missing`);
``predict_proba`` scores are the probability of the last class.

A model that raises, returns something that is not JSON data, or takes longer than
`timeout_ms` is given its `fallback` score instead, and the reason is counted; it never
stops the stream. Models are called on the worker's event loop (the fastest way), and
the time limit is checked when the call returns: a call cannot be interrupted there.
With ``isolate=True`` a request's call runs in a thread instead, and the request gets
the fallback as soon as the limit passes, even if the model hangs (at the cost of a
thread hop per request).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from streamcore.base.errors import ConfigError


class Score(NamedTuple):
    """One scoring: the score, whether the fallback was used and why, and how long it took.

    A named tuple, not a frozen dataclass: one is made per event, and a frozen dataclass
    spends a microsecond on ``object.__setattr__`` for its four fields."""

    value: Any
    fallback: bool
    reason: str | None
    latency_ms: float

    def as_dict(self) -> dict[str, Any]:
        """How an answer reports it: the score, the fallback's reason (None: none), the time taken."""
        return {"score": self.value, "fallback": self.reason, "latency_ms": round(self.latency_ms, 3)}


_clock = time.perf_counter


def _score_of(value: Any, latency_ms: float) -> Score:
    """A score the model gave in time (the tuple made directly: a named tuple's own ``__new__``
    is a Python function, and one is made per event)."""
    return tuple.__new__(Score, (value, False, None, latency_ms))


@dataclass
class ModelStats:
    """Scores and fallbacks by reason (latencies go to the metrics' histogram)."""

    scores: int = 0
    fallbacks: dict[str, int] = field(default_factory=dict)

    def record(self, score: Score) -> None:
        self.scores += 1
        if score.reason is not None:
            self.fallbacks[score.reason] = self.fallbacks.get(score.reason, 0) + 1


def _call_style(model: Any) -> tuple[str, Callable[..., Any]]:
    if hasattr(model, "predict_proba"):
        return "proba", model.predict_proba
    if hasattr(model, "predict"):
        return "predict", model.predict
    if callable(model):
        return "dict", model
    raise ConfigError("model", f"{model!r} is neither callable nor has predict/predict_proba")


@dataclass
class Model:
    """A registered model: what it reads, how it is called, what it falls back to."""

    name: str
    model: Any
    view: str
    features: Sequence[str]
    fallback: Any
    timeout_ms: float = 50.0
    missing: float = 0.0
    isolate: bool = False
    description: str = ""
    """What the model scores, for those who call it (e.g. the MCP tools of ``--mcp``)."""
    stats: ModelStats = field(default_factory=ModelStats)
    on_score: Callable[[Score, str], None] | None = None
    """Called with every score and its path (``"stream"`` or ``"request"``), e.g. by metrics."""

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ConfigError("model.name", "a model needs a name")
        if not self.view:
            raise ConfigError(f"model.{self.name}.view", "name the feature view the model reads")
        if not self.features or isinstance(self.features, str):
            raise ConfigError(f"model.{self.name}.features", "give the list of feature names the model reads")
        if self.timeout_ms <= 0:
            raise ConfigError(f"model.{self.name}.timeout_ms", f"must be > 0, got {self.timeout_ms}")
        self._style, self._call = _call_style(self.model)
        self.features = tuple(self.features)

    def inputs(self, features: dict[str, Any], overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """The model's inputs from an entity's features (plus overrides); unknown names are errors."""
        chosen = {name: features.get(name) for name in self.features}
        if not overrides:
            return chosen
        for name, value in overrides.items():
            if name not in chosen:
                raise KeyError(f"model {self.name!r} does not read a feature {name!r}; it reads {list(self.features)}")
            chosen[name] = value
        return chosen

    def _invoke(self, inputs: dict[str, Any]) -> Any:
        if self._style == "dict":
            return self._call(inputs)
        missing = self.missing
        row = [[missing if (v := inputs[name]) is None else v for name in self.features]]
        result = self._call(row)[0]
        return result[-1] if self._style == "proba" else result

    def _checked(self, value: Any) -> Any:
        if type(value) is float and math.isfinite(value):
            return value  # the common case, before `hasattr`, which costs a raised AttributeError
        if hasattr(value, "item"):  # numpy scalars
            value = value.item()
        if isinstance(value, bool) or value is None or isinstance(value, str | int):
            return value
        if isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError(f"score {value} is not finite")
            return value
        raise TypeError(f"score of type {type(value).__name__} is not a number, string or boolean")

    def score(self, inputs: dict[str, Any]) -> Score:
        """Score in the calling thread (the stream); the time limit is checked afterwards."""
        result = self._score(inputs)
        if self.on_score is not None:
            self.on_score(result, "stream")
        return result

    def _score(self, inputs: dict[str, Any]) -> Score:
        started = _clock()
        try:
            value = self._checked(self._invoke(inputs))
        except Exception as exc:  # noqa: BLE001 - a failing model takes its fallback, the stream goes on
            result = Score(self.fallback, True, f"error:{type(exc).__name__}", (_clock() - started) * 1000)
        else:
            latency = (_clock() - started) * 1000
            result = (
                _score_of(value, latency)
                if latency <= self.timeout_ms
                else Score(self.fallback, True, "timeout", latency)
            )
        self.stats.record(result)
        return result

    async def score_request(self, inputs: dict[str, Any]) -> Score:
        """Score for a request: on the loop, or (``isolate``) in a thread with a hard time limit."""
        if not self.isolate:
            result = self._score(inputs)
            if self.on_score is not None:
                self.on_score(result, "request")
            return result
        started = time.perf_counter()
        try:
            value = await asyncio.wait_for(asyncio.to_thread(self._invoke, inputs), self.timeout_ms / 1000)
            value = self._checked(value)
            reason = None
        except TimeoutError:
            value, reason = self.fallback, "timeout"
        except Exception as exc:  # noqa: BLE001
            value, reason = self.fallback, f"error:{type(exc).__name__}"
        result = Score(value, reason is not None, reason, (time.perf_counter() - started) * 1000)
        self.stats.record(result)
        if self.on_score is not None:
            self.on_score(result, "request")
        return result
