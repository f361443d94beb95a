"""Aggregation laws (hypothesis), and the fused fast path against the generic reference."""

from __future__ import annotations

import math
from typing import Any

import pytest
from helpers import RecordingContext
from hypothesis import given
from hypothesis import strategies as st
from streamcore.operators import Count, CountDistinct, Max, Mean, Min, Sum
from streamcore.operators.aggregations import Aggregation
from streamcore.operators.fused import fuse

from streamcore.base.errors import SchemaError

numbers = st.one_of(st.integers(-(10**9), 10**9), st.floats(-1e9, 1e9, allow_nan=False, allow_infinity=False))
BUILTINS: list[Aggregation] = [Count(), Sum("v"), Min("v"), Max("v"), Mean("v")]


def fold(agg: Aggregation, values: list[Any]) -> Any:
    acc = agg.create()
    for v in values:
        acc = agg.add(acc, v)
    return acc


def close(a: Any, b: Any) -> bool:
    if isinstance(a, list):
        return all(close(x, y) for x, y in zip(a, b, strict=True))
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


@pytest.mark.parametrize("agg", BUILTINS, ids=lambda a: a.state_name)
@given(xs=st.lists(numbers, max_size=20), ys=st.lists(numbers, max_size=20), zs=st.lists(numbers, max_size=20))
def test_merge_laws(agg: Aggregation, xs: list[Any], ys: list[Any], zs: list[Any]) -> None:
    a, b, c = fold(agg, xs), fold(agg, ys), fold(agg, zs)
    assert close(agg.result(agg.merge(a, b)), agg.result(fold(agg, xs + ys)))  # merge == fold of the union
    assert close(agg.merge(agg.merge(a, b), c), agg.merge(a, agg.merge(b, c)))  # associative
    assert close(agg.merge(agg.create(), a), a)  # create() is the identity


@given(events=st.lists(st.fixed_dictionaries({"v": numbers, "w": numbers}), min_size=1, max_size=30))
def test_fused_equals_generic(events: list[dict[str, Any]]) -> None:
    aggs = [Count(), Sum("v"), Min("w"), Max("v"), Mean("w"), Sum("w")]
    names = [f"a{i}" for i in range(len(aggs))]
    fused = fuse(names, aggs)
    assert fused is not None
    generic = [a.create() for a in aggs]
    fast = fused.create()
    assert fast == generic
    for event in events:
        generic = [a.add(acc, event[a.field] if a.field else event) for a, acc in zip(aggs, generic, strict=True)]
        fast = fused.add(fast, fused.extract(event))
    assert close(fast, generic)
    out: dict[str, Any] = {}
    fused.results(out, fast)
    assert close([out[n] for n in names], [a.result(acc) for a, acc in zip(aggs, generic, strict=True)])


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"w": 1}, "'v' .* is missing"),
        ({"v": "1"}, "not a finite number"),
        ({"v": True}, "not a finite number"),
        ({"v": float("inf")}, "not a finite number"),
        ([1, 2], "is missing"),
    ],
)
def test_fused_extract_rejects_bad_fields(event: Any, message: str) -> None:
    fused = fuse(["s"], [Sum("v")])
    assert fused is not None
    with pytest.raises(SchemaError, match=message):
        fused.extract(event)


@given(st.lists(st.one_of(st.booleans(), st.integers(-3, 3), st.sampled_from([0.0, 1.0, 2.5]), st.sampled_from("ab"))))
def test_count_distinct_counts_values_by_type_and_equality_true_and_1_apart(values: list[Any]) -> None:
    agg = CountDistinct("v")
    acc = agg.create()
    for value in values:
        acc = agg.add(acc, value)
    assert agg.result(acc) == len({(type(v) is bool, v) for v in values})
    halves = agg.merge(_fold(agg, values[::2]), _fold(agg, values[1::2]))
    assert agg.result(halves) == agg.result(acc)


def _fold(agg: CountDistinct, values: list[Any]) -> list[Any]:
    acc = agg.create()
    for value in values:
        acc = agg.add(acc, value)
    return acc


class _Writer:
    def __init__(self) -> None:
        self.entries: dict[bytes, bytes | None] = {}

    def put(self, key: bytes, value: bytes) -> None:
        self.entries[key] = value

    def delete(self, key: bytes) -> None:
        self.entries[key] = None


def _drive(kind: str, events: list[tuple[str, int, Any]], generic: bool) -> Any:
    """Emitted results, late event indices and checkpoint entries of one Python window operator over `events`
    (the compiled kernel has its own comparison with the fused path: ``test_compiled_windows.py``)."""
    from streamcore.operators import compiled_windows
    from streamcore.operators.window_operator import WindowAggregateSpec

    shape = {"tumbling": {"size": 100, "slide": 100}, "sliding": {"size": 300, "slide": 100}, "session": {"gap": 50}}
    aggs = {"n": Count(), "total": Sum("v"), "lo": Min("v"), "avg": Mean("v")}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STREAMCORE_GENERIC_AGGREGATIONS", "1" if generic else "0")
        patch.setattr(compiled_windows, "_kernel", None)
        context = RecordingContext()
        operator = WindowAggregateSpec("w", kind, aggs, 40, **shape[kind]).build(context)  # type: ignore[arg-type]
    assert (operator.fused is None) == generic  # type: ignore[attr-defined]
    late, watermark, writer = [], -math.inf, _Writer()
    for i, (key, ts, v) in enumerate(events):
        if operator.process(key, {"v": v}, ts) is False:
            late.append(i)
        if ts - 60 > watermark:
            watermark = ts - 60
            operator.on_watermark(watermark)
        if i % 7 == 0:
            operator.checkpoint(writer)
    operator.on_end_of_input()
    operator.checkpoint(writer)
    return context.emitted, late, writer.entries


@pytest.mark.parametrize("kind", ["tumbling", "sliding", "session"])
@given(
    events=st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c"]),
            st.integers(0, 2_000),
            st.one_of(numbers, st.sampled_from([2**63 - 1, -(2**63), 5e-324, 1.7e308])),
        ),
        max_size=60,
    )
)
def test_fused_windows_equal_generic_windows(kind: str, events: list[tuple[str, int, Any]]) -> None:
    """The generated window code (tumbling, sliding) and fused aggregations emit the same results in
    the same order, find the same events late, and checkpoint the same bytes as the generic path."""
    assert _drive(kind, events, generic=False) == _drive(kind, events, generic=True)
