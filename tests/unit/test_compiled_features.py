"""The compiled feature kernel against its Python reference: same features, outputs, dead letters and state.

The same events (hypothesis: every aggregation kind, numbers at the contract's edges, bools
that equal numbers, values a feature refuses, missing fields) go through the whole engine
twice, once on `CompiledFeatureOperator` and once on `FeatureOperator`, in two runs each
(the second restores the first's checkpoint and continues over more of the log). A model
reads every feature after each event, so the output topic holds the view's values as of
every event; it, the dead-letter topic and the view's checkpointed entity states must be
identical.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import RecordingContext, run, use_python_references
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streamcore.operators import (
    Aggregate,
    Count,
    CountDistinct,
    FeatureView,
    Latest,
    Max,
    Mean,
    Min,
    Rolling,
    Sum,
    features,
)

from streamcore import App, EventTime
from streamcore.base.codec import decode_state, encode_state
from streamcore.base.deadletter import DeadLetter
from streamcore.io.log import EmbeddedLog, TopicConfig
from streamcore.state.store import TaskStore

pytestmark = pytest.mark.skipif(features._kernel is None, reason="the compiled feature kernel is not built here")

VIEW = FeatureView(
    "v",
    entity="k",
    features={
        "n": Rolling(Count(), over=100, pane=10),
        "total": Rolling(Sum("v"), over=100, pane=10),
        "avg": Rolling(Mean("v"), over=300, pane=100),
        "lo": Rolling(Min("v"), over=100, pane=20),
        "hi": Rolling(Max("v"), over=100, pane=20),
        "kinds": Rolling(CountDistinct("m"), over=100, pane=10),
        "kinds_long": Rolling(CountDistinct("m"), over=1_000, pane=1_000),
        "last_v": Latest("v"),
        "last_t": Latest("t", type=int, required=False),
    },
)
"""Every kind the kernel holds; `last_v` needs `v` in every event, `last_t` only takes ints."""


def _app() -> App:
    app = App("feat")
    source = app.topic("in", partitions=1)
    app.model("all", lambda f: 0, view="v", features=list(VIEW.features), fallback=1)
    app.stream(source, event_time=EventTime("ts")).key_by("k").features(VIEW).score("all", features_into="f").to(
        app.topic("out")
    )
    return app


def _mostly(valid: st.SearchStrategy[Any], refused: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`valid` nine times in ten: the kernel's own path is the common one, as in real traffic."""
    return st.integers(0, 9).flatmap(lambda roll: valid if roll else refused)


numbers = st.one_of(
    st.integers(-50, 50),
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([2**64, -(2**70), 10**400]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 5e-324, 1.7976931348623157e308, 1.5]),
)
distinct_values = st.sampled_from(["a", "b", "é", "\ud800", 1, 1.0, True, False, 0, None, 2**70, 0.5])
_MISSING = object()


def _event(k: str, ts: int, v: Any, m: Any, t: Any) -> dict[str, Any]:
    fields = {"k": k, "ts": ts, "v": v, "m": m, "t": t}
    return {name: value for name, value in fields.items() if value is not _MISSING}


def _events(span: int) -> st.SearchStrategy[dict[str, Any]]:
    """Events over `span` ms of event time: dense spans tie event times, long ones expire panes."""
    return st.builds(
        _event,
        st.sampled_from(["a", "b", "é"]),
        st.integers(0, span),
        _mostly(numbers, st.sampled_from(["x", None, [1], True, float("nan"), float("inf"), _MISSING])),
        _mostly(distinct_values, st.sampled_from([["a"], {"a": 1}, _MISSING])),
        _mostly(st.integers(0, 9), st.sampled_from(["s", 1.5, None, True, _MISSING])),
    )


spans = st.sampled_from([30, 400, 3_000])


def _produce(path: Path, lines: list[dict[str, Any]]) -> None:
    log = EmbeddedLog(path / "log")
    if not log.has_topic("in"):
        log.create_topic(TopicConfig("in", 1))
    log.producer("in").send_many([json.dumps(e).encode() for e in lines], [0] * len(lines))
    log.close()


def _results(path: Path) -> dict[str, Any]:
    log = EmbeddedLog(path / "log")
    got: dict[str, Any] = {"out": [(r.key, r.value) for r in log.read_all("out")]}
    got["dlq"] = [  # the error without where it was raised: in the kernel or in the reference
        (d.reason, d.error.rpartition(" (at ")[0] or d.error, d.source_offset, d.step)
        for d in map(DeadLetter.from_record, log.read_all("feat-dlq"))
    ]
    log.close()
    (db,) = {p.parent for p in (path / "state").rglob("CURRENT")}
    store = TaskStore(db)
    namespaces = [n for n in store.namespaces() if "view:v" in n]  # none if every event was refused
    got["state"] = [(key, decode_state(raw)[:4]) for n in namespaces for key, raw in store.scan(n)]  # but the epoch
    store.close()
    return got


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    first=spans.flatmap(lambda span: st.lists(_events(span), min_size=1, max_size=80)),
    second=spans.flatmap(lambda span: st.lists(_events(span), max_size=40)),
)
def test_the_kernel_equals_the_reference(
    first: list[dict[str, Any]],
    second: list[dict[str, Any]],
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    results = []
    for compiled in (True, False):
        path = tmp_path_factory.mktemp("compiled" if compiled else "reference")
        with monkeypatch.context() as patch:
            if not compiled:
                use_python_references(patch)
            for part in (first, second):
                _produce(path, part)
                status = run(_app(), path)
                assert status.tasks[0].counters.accounted == status.tasks[0].counters.records_in == len(part)
        results.append(_results(path))
    assert repr(results[0]) == repr(results[1])  # equal values of the same types (1 is not 1.0, -0.0 not 0.0)


class _Context(RecordingContext):
    def entity_store(self, view: str, reader: Any, *, capacity: int = 100_000) -> Any:
        return None


def test_a_view_of_built_in_features_gets_the_kernel_and_any_other_the_reference() -> None:
    assert type(VIEW.build(_Context())) is features.CompiledFeatureOperator  # type: ignore[arg-type]
    longest = Aggregate(create=lambda: "", add=max, merge=max, result=lambda a: a, field="m", name="longest")
    custom = FeatureView("c", entity="k", features={"n": Rolling(Count(), over=10), "x": Rolling(longest, over=10)})
    assert type(custom.build(_Context())) is features.FeatureOperator  # type: ignore[arg-type]


KINDS = [features._kernel.KINDS[name] for name in ("count", "sum", "mean", "min", "max", "count_distinct", "latest")]
ints64 = st.integers(-(2**63), 2**63 - 1)
finite = st.one_of(ints64, st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([0.0, -0.0, 5e-324]))
starts = st.lists(st.integers(-(2**62), 2**62), unique=True).map(sorted)


def _panes(accumulators: st.SearchStrategy[Any]) -> st.SearchStrategy[list[list[Any]]]:
    return starts.flatmap(
        lambda s: st.lists(accumulators, min_size=len(s), max_size=len(s)).map(
            lambda accs: [[start, acc] for start, acc in zip(s, accs, strict=True)]
        )
    )


reference_states = st.tuples(
    _panes(st.integers(0, 2**63 - 1)),
    _panes(finite),
    _panes(st.tuples(finite, st.integers(1, 2**63 - 1)).map(list)),
    _panes(finite),
    _panes(finite),
    _panes(st.lists(distinct_values, unique_by=lambda v: (type(v) is bool, v))),
    st.one_of(st.none(), st.tuples(ints64, st.one_of(distinct_values, st.just({"a": [1.5]}))).map(list)),
).map(list)


@settings(max_examples=300, deadline=None)
@given(state=reference_states)
def test_a_flat_entity_gives_back_the_reference_state_and_writes_its_json(state: list[Any]) -> None:
    """What the kernel keeps flat, a checkpoint writes and a restore reads as the reference's lists."""
    flat = features._kernel.from_lists(KINDS, state)
    assert flat is not None
    assert repr(flat.lists()) == repr(state)
    assert repr(decode_state(encode_state([flat, 1]))) == repr([state, 1])
    written = flat.json_in_list(())
    if written is not None:  # None: a value only the exact writer keeps (a surrogate, an int beyond 64 bits)
        assert repr(json.loads(written)) == repr([state])
        record = flat.json_in_list((1_700_000_000_000, -1, 0, 2**63 - 1))  # as the online state's record
        assert repr(json.loads(record)) == repr([state, 1_700_000_000_000, -1, 0, 2**63 - 1])
        assert flat.json_in_list((1.5,)) is None and flat.json_in_list((2**63,)) is None  # not an int64: not here


@pytest.mark.parametrize(
    "state",
    [
        [[], [[0, 2**64]], [], [], [], [], None],  # an exact sum beyond int64
        [[], [], [[0, [1, 0]]], [[0, None]], [], [], None],  # a min pane without a value
        [[[5, 1], [0, 1]], [], [], [], [], [], None],  # panes out of order
        [[], [], [], [], [], [], [1]],  # a latest value without its time
        [[], [], [], [], [], []],  # a feature short
    ],
)
def test_a_state_the_flat_layout_cannot_hold_stays_with_the_reference(state: list[Any]) -> None:
    assert features._kernel.from_lists(KINDS, state) is None
