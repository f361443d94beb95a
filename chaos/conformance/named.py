"""Hand-shaped conformance cases: one rule of the contract each, at its edge.

`named_cases()` returns them with their expectations from the reference model; the files
in ``cases/`` are these plus a few random ones (``python -m chaos tck --write``), and a
test checks the files are exactly what this code makes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from chaos.conformance.reference import expected
from chaos.conformance.settings import Refused, check_job

AGGS = {"n": ["count"], "total": ["sum", "v"], "lo": ["min", "v"], "hi": ["max", "v"], "avg": ["mean", "v"]}
INT64_MAX, INT64_MIN = 2**63 - 1, -(2**63)


def _job(window: dict[str, Any] | None = None, **settings: Any) -> dict[str, Any]:
    job = {"key": "k", "ts": "ts", "aggs": AGGS, "window": window or {"type": "tumbling", "size_ms": 1000}}
    job.update({"max_out_of_orderness_ms": 0, "allowed_lateness_ms": 0})
    job.update(settings)
    return job


def _ev(key: str, ts: Any, v: Any = 1, **extra: Any) -> str:
    return json.dumps({"k": key, "ts": ts, "v": v, **extra})


def _at(texts: list[str], p: int = 0, start: int = 0, step: int = 1) -> list[dict[str, Any]]:
    return [{"p": p, "at": start + i * step, "data": text} for i, text in enumerate(texts)]


def _timed(rows: list[tuple[int, int, int]]) -> list[dict[str, Any]]:
    """Arrivals of key "a" given as (partition, processing time, event time)."""
    return [{"p": p, "at": at, "data": _ev("a", ts)} for p, at, ts in rows]


def unicode_keys() -> tuple[dict[str, Any], dict[str, Any]]:
    """NFC and NFD spellings are two keys; a raw and an escaped astral character are one; the
    empty string is a key; an unpaired surrogate key is schema, one in an unread field is not."""
    texts = [
        _ev("café", 1), _ev("cafe\u0301", 2), '{"k": "😀", "ts": 3, "v": 1}',
        '{"k": "\\ud83d\\ude00", "ts": 4, "v": 2}', _ev("", 5), '{"k": "\\ud800", "ts": 6, "v": 1}',
        '{"k": "a", "ts": 7, "v": 1, "note": "\\udfff"}', '{"ключ": "ж", "時刻": 8, "金額": 3}',
    ]  # fmt: skip
    job = _job(aggs={"n": ["count"], "total": ["sum", "v"]})
    unicode_fields = {**_job(), "key": "ключ", "ts": "時刻", "aggs": {"n": ["count"], "total": ["sum", "金額"]}}
    return {"job": job, "partitions": 1, "arrivals": _at(texts)}, {"job": unicode_fields, "arrivals": _at(texts)}


def exact_integers() -> dict[str, Any]:
    """Integer sums are exact at any magnitude; min and max at the signed 64-bit limits."""
    texts = [_ev("a", t, 8 * 10**18) for t in (1, 2, 3)] + [_ev("b", 4, INT64_MAX), _ev("b", 5, INT64_MIN)]
    return {"job": _job(), "partitions": 1, "arrivals": _at([*texts, _ev("b", 6, INT64_MAX - 1)])}


def float_overflow_is_null() -> dict[str, Any]:
    """A float sum past the largest double is null, and so is its mean; min and max are not."""
    texts = [_ev("a", 1, 1.7e308), _ev("a", 2, 1.7e308), _ev("a", 3, 1), _ev("b", 4, 0.5), _ev("b", 5, 2)]
    return {"job": _job(), "partitions": 1, "arrivals": _at(texts)}


def not_json() -> dict[str, Any]:
    """JavaScript's constants, a byte-order mark, trailing commas, single quotes: decode.
    ``1e400`` is JSON, but not a finite number: schema."""
    texts = [
        '{"k": "a", "ts": 1, "v": NaN}', '{"k": "a", "ts": 1, "v": Infinity}', '{"k": "a", "ts": 1, "v": -Infinity}',
        "\ufeff" + _ev("a", 1), '{"k": "a", "ts": 1, "v": 1,}', "{'k': 'a', 'ts': 1, 'v': 1}", "", "{",
        '{"k": "a", "ts": 1, "v": 1e400}', "[]", "7", _ev("a", 2),
    ]  # fmt: skip
    return {"job": _job(), "partitions": 1, "arrivals": _at(texts)}


def timestamps_at_the_edges() -> dict[str, Any]:
    """0 and 2^62 are event times; 2^62 + 1, -1, 1.0, true, "5" and a missing one are schema."""
    stamps: list[Any] = [0, 2**62, 2**62 + 1, -1, 1.0, True, "5"]
    texts = [_ev("a", ts) for ts in stamps] + ['{"k": "a", "v": 1}']
    return {"job": _job(), "partitions": 1, "arrivals": _at(texts)}


def zero_future_skew() -> dict[str, Any]:
    """With a skew of 0, an event at its processing time is accepted, one a ms ahead is not;
    the dead-lettered one moves no watermark, so the next event in its window is on time."""
    arrivals = _timed([(0, 1000, 1000), (0, 1001, 5000), (0, 1002, 1001)])
    return {"job": _job(max_future_skew_ms=0), "partitions": 1, "arrivals": arrivals}


def late_on_a_revived_partition() -> dict[str, Any]:
    """Partition 1 goes idle and W moves on without it; when it speaks again with old event
    times, its records are late, and its watermark still counts from then on."""
    arrivals = _timed(
        [(0, 0, 0), (1, 0, 10), (0, 600, 3000), (0, 700, 5000), (1, 800, 20), (1, 810, 4100), (0, 820, 4200)]
    )
    return {"job": _job(idle_timeout_ms=500), "partitions": 2, "arrivals": arrivals}


def sliding_partially_closed() -> dict[str, Any]:
    """An event whose oldest sliding windows are closed joins the open ones and is not late."""
    texts = [_ev("a", 500), _ev("a", 3200), _ev("a", 1500), _ev("a", 200)]
    window = {"type": "sliding", "size_ms": 3000, "slide_ms": 1000}
    return {"job": _job(window), "partitions": 1, "arrivals": _at(texts)}


def sessions_bridge_and_judge_lateness_first() -> dict[str, Any]:
    """A middle event bridges two sessions into one (the two leave the results); an event whose
    own window is closed is late even though it touches an open session."""
    texts = [_ev("a", 1000), _ev("a", 1600), _ev("a", 1300), _ev("a", 9000), _ev("a", 500), _ev("a", 2500)]
    job = _job({"type": "session", "gap_ms": 500}, allowed_lateness_ms=1000)
    return {"job": job, "partitions": 1, "arrivals": _at(texts)}


def all_partitions_idle_keep_the_watermark() -> dict[str, Any]:
    """When every partition is idle W stays: an event of the window W reached is still late."""
    arrivals = _timed([(0, 0, 100), (1, 0, 2100), (0, 10, 2200), (1, 5000, 900), (0, 5001, 2500)])
    return {"job": _job(idle_timeout_ms=100), "partitions": 2, "arrivals": arrivals}


def recovery_of_sliding_windows() -> dict[str, Any]:
    """A crash between checkpoints: the rerun's windows, late records and dead letters equal
    an uninterrupted run's."""
    texts = [_ev(f"k{i % 3}", 100 * i + (i % 4) * 170, i) for i in range(30)] + ["{", _ev("k1", 10)]
    window = {"type": "sliding", "size_ms": 600, "slide_ms": 200}
    arrivals = [{"p": i % 2, "at": 100 * i, "data": t} for i, t in enumerate(texts)]
    case = {"job": _job(window, max_out_of_orderness_ms=150, allowed_lateness_ms=200), "partitions": 2}
    return {**case, "arrivals": arrivals, "recovery": {"checkpoint_after": [4, 11, 19], "crash_after": 25}}


def largest_settings_run() -> dict[str, Any]:
    """2^40 is inside every range: the job is built and runs."""
    window = {"type": "sliding", "size_ms": 2**40, "slide_ms": 2**39}
    job = _job(window, allowed_lateness_ms=2**40, max_out_of_orderness_ms=2**40, idle_timeout_ms=2**40)
    return {"job": {**job, "max_future_skew_ms": 2**40}, "partitions": 1, "arrivals": _at([_ev("a", 5), _ev("a", 6)])}


def _refused(**change: Any) -> Callable[[], dict[str, Any]]:
    def case() -> dict[str, Any]:
        settings = dict(change)
        job = _job(settings.pop("window", None), **settings)
        return {"job": job, "partitions": 1, "arrivals": _at([_ev("a", 1)])}

    return case


REFUSED = {
    "refused_size_zero": _refused(window={"type": "tumbling", "size_ms": 0}),
    "refused_size_past_2_40": _refused(window={"type": "tumbling", "size_ms": 2**40 + 1}),
    "refused_slide_not_dividing_the_size": _refused(window={"type": "sliding", "size_ms": 1000, "slide_ms": 300}),
    "refused_negative_lateness": _refused(allowed_lateness_ms=-1),
    "refused_negative_future_skew": _refused(max_future_skew_ms=-1),
    "refused_out_of_orderness_past_2_40": _refused(max_out_of_orderness_ms=2**40 + 1),
    "refused_output_named_start": _refused(aggs={"start": ["count"]}),
}  # fmt: skip

SHAPED = (
    exact_integers, float_overflow_is_null, not_json, timestamps_at_the_edges, zero_future_skew,
    late_on_a_revived_partition, sliding_partially_closed, sessions_bridge_and_judge_lateness_first,
    all_partitions_idle_keep_the_watermark, recovery_of_sliding_windows, largest_settings_run,
)  # fmt: skip


def _finish(name: str, case: dict[str, Any], about: str) -> dict[str, Any]:
    case = {"name": name, "about": " ".join(about.split()), **case}
    try:
        check_job(case["job"])
    except Refused as refused:
        return {**case, "refused": refused.setting, "expected": {"results": [], "late": [], "dlq": []}}
    return {**case, "expected": expected(case)}


def named_cases() -> list[dict[str, Any]]:
    """Every hand-shaped case, named, with what the contract expects of it."""
    cases = []
    plain, unicode_fields = unicode_keys()
    about = unicode_keys.__doc__ or ""
    cases.append(_finish("unicode_keys", plain, about))
    cases.append(_finish("unicode_field_names", {**unicode_fields, "partitions": 1}, "Field names in Unicode."))
    for make in SHAPED:
        cases.append(_finish(make.__name__, make(), make.__doc__ or ""))
    for name, make in REFUSED.items():
        cases.append(_finish(name, make(), "A setting just outside its range: refused when the job is built."))
    return cases
