"""Models scored in the stream and on request; a failing model never stops the stream."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from helpers import CARD_VIEW as VIEW
from helpers import produce, run

from streamcore import App, ConfigError, EventTime
from streamcore.io.log import EmbeddedLog
from streamcore.online.models import Model


def scoring_app(model: Any, *, fallback: Any = -1.0, timeout_ms: float = 50) -> App:
    app = App("scoring")
    app.model("m", model, view="card", features=["n", "spend", "last"], fallback=fallback, timeout_ms=timeout_ms)
    (
        app.stream(app.topic("tx"), event_time=EventTime("ts"))
        .key_by("card")
        .features(VIEW)
        .score("m")
        .to(app.topic("decisions"))
    )
    return app


def decisions(tmp_path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(r.value) for r in EmbeddedLog(tmp_path / "log").read_all("decisions")]


EVENTS = [
    {"card": "a", "amount": 10, "ts": 1},
    {"card": "b", "amount": 5, "ts": 2},
    {"card": "a", "amount": 1, "ts": 3},
]


def test_in_stream_scores_see_the_event_just_applied(tmp_path: Path) -> None:
    produce(tmp_path, "tx", EVENTS)
    run(scoring_app(lambda f: f["n"] * 100 + f["spend"]), tmp_path)
    assert [d["score"] for d in decisions(tmp_path)] == [110, 105, 211]


class ProbaModel:
    """Shaped like a scikit-learn classifier."""

    def predict_proba(self, rows: list[list[float]]) -> list[list[float]]:
        return [[1 - min(1.0, r[1] / 100), min(1.0, r[1] / 100)] for r in rows]


class PredictModel:
    def predict(self, rows: list[list[float]]) -> list[float]:
        return [r[0] for r in rows]


@pytest.mark.parametrize(("model", "scores"), [(ProbaModel(), [0.1, 0.05, 0.11]), (PredictModel(), [1, 1, 2])])
def test_estimator_style_models(model: Any, scores: list[float], tmp_path: Path) -> None:
    produce(tmp_path, "tx", EVENTS)
    run(scoring_app(model), tmp_path)
    assert [d["score"] for d in decisions(tmp_path)] == pytest.approx(scores)


def broken(features: dict[str, Any]) -> float:
    if features["last"] == 5:
        raise RuntimeError("model bug")
    return 1.0


def slow(features: dict[str, Any]) -> float:
    time.sleep(0.03)
    return 1.0


@pytest.mark.parametrize(
    ("model", "reason"),
    [
        (broken, "error:RuntimeError"),
        (slow, "timeout"),
        (lambda f: object(), "error:TypeError"),
        (lambda f: float("nan"), "error:ValueError"),
    ],
)
def test_a_failing_model_takes_its_fallback_and_the_stream_goes_on(model: Any, reason: str, tmp_path: Path) -> None:
    produce(tmp_path, "tx", EVENTS)
    app = scoring_app(model, fallback=0.5, timeout_ms=10)
    status = run(app, tmp_path)
    assert status.tasks[0].counters.accepted == 3
    out = decisions(tmp_path)
    failed = [d for d in out if d.get("score_fallback")]
    assert failed and all(d["score"] == 0.5 and d["score_fallback"] == reason for d in failed)
    assert app.models["m"].stats.fallbacks[reason] == len(failed)


def test_on_request_a_slow_model_answers_with_the_fallback_in_time() -> None:
    model = Model("m", lambda f: time.sleep(0.5) or 1.0, "card", ["n"], fallback=0.0, timeout_ms=20, isolate=True)

    async def request() -> tuple[Any, float]:
        started = time.perf_counter()
        score = await model.score_request({"n": 1})
        return score, time.perf_counter() - started

    score, seconds = asyncio.run(request())  # (the abandoned call finishes in its thread afterwards)
    assert (score.value, score.reason) == (0.0, "timeout")
    assert seconds < 0.2


def test_overrides_replace_features_and_unknown_ones_are_errors() -> None:
    model = Model("m", lambda f: f["n"], "card", ["n", "spend"], fallback=0)
    assert model.inputs({"n": 1, "spend": 2, "other": 3}, {"n": 7}) == {"n": 7, "spend": 2}
    with pytest.raises(KeyError, match="does not read a feature 'x'"):
        model.inputs({"n": 1}, {"x": 1})


def test_model_configuration_errors(tmp_path: Path) -> None:
    app = App("bad")
    with pytest.raises(ConfigError, match="no model 'nope'"):
        app.stream(app.topic("tx"), event_time=EventTime("ts")).key_by("card").score("nope")
    with pytest.raises(ConfigError, match="neither callable"):
        app.model("x", 42, view="card", features=["n"], fallback=0)
    app.model("m", lambda f: 0, view="nowhere", features=["n"], fallback=0)
    app.stream(app.topic("tx"), event_time=EventTime("ts")).key_by("card").score("m").discard()
    produce(tmp_path, "tx", EVENTS)
    with pytest.raises(ConfigError, match="no stream keeps feature view 'nowhere'"):
        run(app, tmp_path)
