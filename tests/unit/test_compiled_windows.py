"""The compiled window kernel against its Python reference: same results, late events, dead letters and state.

Two levels, each with hypothesis choosing the input:

* the operator alone (`_drive`): the same events, watermarks and checkpoints into the
  kernel and into `FixedWindows`; emitted results in order, late events and every
  checkpoint's bytes must be identical, and so must a restore from them;
* the whole pipeline from record bytes (`_run_both`): JSON spelled every way the
  kernel's reader must either read exactly as orjson does or leave to the Python path
  (escapes, non-ASCII, nesting, duplicate fields, numbers past 64 bits, ``1e400``,
  surrogates, missing and mistyped fields, trailing bytes), through a real embedded
  log and RocksDB, with and without the kernel: the output, late and dead-letter
  topics must be byte for byte the same. The records alternate between two partitions
  in groups, so the compiled path applies many short runs of a fetch at once
  (`_apply_spans`) where the reference applies them batch by batch.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from helpers import RecordingContext, run, use_python_references
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streamcore.operators import Count, Max, Mean, Min, Session, Sliding, Sum, Tumbling, compiled_windows
from streamcore.operators.fixed_windows import FixedWindows
from streamcore.operators.session_windows import SessionWindows
from streamcore.operators.window_operator import WindowAggregateSpec

from streamcore import App, EventTime
from streamcore.base.deadletter import DeadLetter
from streamcore.io.embedded import MERGE_TICK_MS
from streamcore.io.log import EmbeddedLog, TopicConfig

pytestmark = pytest.mark.skipif(not compiled_windows.COMPILED, reason="the compiled kernel is not built here")

AGGS = {"n": Count(), "total": Sum("v"), "avg": Mean("v"), "lo": Min("v"), "hi": Max("v"), "w": Sum("w")}
SHAPES = {"tumbling": {"size": 100, "slide": 100}, "sliding": {"size": 100, "slide": 25}, "session": {"gap": 30}}
KINDS = list(SHAPES)


class _Writer:
    """The state a store holds after each checkpoint (an operator may write in any order,
    and the reference deletes some keys it never wrote)."""

    def __init__(self) -> None:
        self.state: dict[bytes, bytes] = {}
        self.log: list[list[tuple[bytes, bytes]]] = []

    def take(self, operator: Any) -> None:
        operator.checkpoint(self)
        self.log.append(sorted(self.state.items()))

    def put(self, key: bytes, value: bytes) -> None:
        self.state[key] = value

    def delete(self, key: bytes) -> None:
        self.state.pop(key, None)


def _build(kind: str, compiled: bool, recorder: RecordingContext) -> Any:
    spec = WindowAggregateSpec("w", kind, AGGS, 40, **SHAPES[kind])
    reference = SessionWindows if kind == "session" else FixedWindows
    if compiled:
        build = (
            compiled_windows.compiled_session_windows if kind == "session" else compiled_windows.compiled_fixed_windows
        )
        operator = build(spec, recorder)  # type: ignore[arg-type]
    else:
        operator = reference(spec, recorder)  # type: ignore[arg-type]
    assert operator is not None and isinstance(operator, reference) != compiled
    return operator


def _drive(kind: str, events: list[tuple[str, int, Any, Any]], compiled: bool, restart_at: int) -> Any:
    """Events, watermarks and checkpoints into one operator; restart from the checkpoints at `restart_at`."""
    recorder = RecordingContext()
    operator = _build(kind, compiled, recorder)
    late, watermark, writer = [], -math.inf, _Writer()
    for i, (key, ts, v, w) in enumerate(events):
        if i == restart_at:
            writer.take(operator)
            operator = _build(kind, compiled, recorder)
            operator.restore(list(writer.state.items()))
            operator.on_watermark(watermark)
        if operator.process(key, {"v": v, "w": w}, ts) is False:
            late.append(i)
        if ts - 60 > watermark:
            watermark = ts - 60
            operator.on_watermark(watermark)
        if i % 7 == 0:
            writer.take(operator)
    operator.on_end_of_input()
    writer.take(operator)
    return recorder.emitted, late, writer.log, operator.state_entries()


BIG = [2**63 - 1, -(2**63), 2**63, 2**64, 10**30, -(10**30)]
numbers = st.one_of(
    st.integers(-(2**40), 2**40),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, -0.0, 0.0, 5e-324, 1.7976931348623157e308, -1.7976931348623157e308, 2.0**53, 2**53 + 1]),
)


def _events(span: int) -> st.SearchStrategy[list[Any]]:
    keys = st.sampled_from(["a", "b", "c", "é"])
    return st.lists(st.tuples(keys, st.integers(0, span), numbers, numbers | st.sampled_from(BIG)), max_size=60)


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=150, deadline=None)
@given(events=st.sampled_from([150, 400, 2_000]).flatmap(_events), restart_at=st.integers(0, 60))
def test_the_kernel_equals_the_reference_operator(kind: str, events: list[Any], restart_at: int) -> None:
    """Same results in the same order, same late events, same state after every checkpoint, after a
    restore too; integers past 64 bits hand the state to the reference mid-run and nothing shows it.
    Dense times (a span of 150 ms) make sessions grow, merge and fire again."""
    assert _drive(kind, events, True, restart_at) == _drive(kind, events, False, restart_at)


@pytest.mark.parametrize("kind", KINDS)
def test_an_integer_past_64_bits_hands_the_state_to_the_reference(kind: str) -> None:
    recorder = RecordingContext()
    operator = _build(kind, True, recorder)
    operator.process("a", {"v": 1, "w": 2**63 - 1}, 5)
    assert operator.reference is None
    operator.process("a", {"v": 1, "w": 1}, 6)  # the sum would overflow int64
    assert isinstance(operator.reference, SessionWindows if kind == "session" else FixedWindows)
    operator.on_end_of_input()
    assert "'w': 9223372036854775808" in recorder.emitted[-1][1]


# -- the whole pipeline, from the records' bytes ----------------------------------------
def _spelled(values: list[bytes]) -> st.SearchStrategy[bytes]:
    return st.sampled_from(values)


plain_ts = st.integers(0, 3_000).map(lambda t: str(t).encode())
ts_spellings = st.one_of(
    plain_ts,
    plain_ts,
    plain_ts,
    _spelled(
        [
            b"-1",
            b"1.5",
            b'"7"',
            b"true",
            b"null",
            b"4611686018427387904",
            b"4611686018427387905",
            b"1e3",
            b"01",
            b"1000000000000000000",
            b"99999999999999999999",
            b"-0",
        ]
    ),
)
plain_keys = _spelled([b'"a"', b'"b"', b'"c"'])
key_spellings = st.one_of(
    plain_keys,
    plain_keys,
    plain_keys,
    _spelled(
        [
            b'"\\u0061"',
            b'"\\ud800"',
            b'"\xc3\xa9"',
            b'"\xff"',
            b"1",
            b"null",
            b'"a\\"b"',
            b'""',
            b'"\x01"',
            b'"\x7f"',
            b'["a"]',
        ]
    ),
    _spelled(  # UTF-8 the kernel reads, and bytes that are not UTF-8 (orjson refuses them)
        [
            b'"\xe2\x82\xac"',  # euro sign
            b'"\xf0\x9f\x99\x82"',  # emoji
            b'"\xc2\x80"',  # a C1 control: allowed unescaped in JSON
            b'"\xef\xbf\xbf"',  # U+FFFF
            b'"\xc0\xaf"',  # overlong
            b'"\xe0\x80\xaf"',  # overlong
            b'"\xed\xa0\x80"',  # an encoded surrogate
            b'"\xf4\x90\x80\x80"',  # past U+10FFFF
            b'"\xe2\x82"',  # cut short
            b'"\xf0\x9f\x99"',  # cut short
        ]
    ),
)
number_spellings = st.one_of(
    st.integers(-(10**6), 10**6).map(lambda i: str(i).encode()),
    st.integers(-(2**63), 2**63).map(lambda i: str(i).encode()),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda f: repr(f).encode()),
    st.integers(0, 20)
    .flatmap(lambda places: st.decimals(allow_nan=False, allow_infinity=False, places=places))
    .map(lambda d: str(d).encode()),
    _spelled(
        [
            b"-0",
            b"-0.0",
            b"0.0",
            b"1e400",
            b"-1e400",
            b"1e-400",
            b"9223372036854775807",
            b"9223372036854775808",
            b"18446744073709551616",
            b"123456789012345678",
            b"1234567890123456789",
            b"0.1",
            b"1E5",
            b"1e-5",
            b"2.5e+3",
            b"5e-324",
            b"1.7976931348623157e308",
            b"0.30000000000000004",
            b"1" + b"0" * 40 + b".5",
            b"0." + b"0" * 30 + b"1",
            b'"5"',
            b"true",
            b"null",
            b"[1]",
            b"NaN",
            b"Infinity",
            b"1.",
            b".5",
            b"+1",
            b"0x10",
            b"1e",
            b"-",
            b"00",
            b"1.5e+",
            b"4.9e-324",
            b"2.2250738585072011e-308",
        ]
    ),
)
extras = _spelled(
    [
        b'"x":1',
        b'"x":"y"',
        b'"x":[1,{"a":2}]',
        b'"x":{"k":"\\u00e9"}',
        b'"x":null',
        b'"x":false',
        b'"k":"zz"',
        b'"v":3',
        b'"ts":5',
        b'"\\u006b":"q"',
        b'"x":"\xc3\xa9"',
        b'"x":tru',
        b'"x":1.2.3',
    ]
)
spaces = _spelled([b"", b"", b"", b" ", b"\n\t", b"\r "])


@st.composite
def records(draw: st.DrawFn) -> bytes:
    fields = []
    for name, spelling in ((b"ts", ts_spellings), (b"k", key_spellings), (b"v", number_spellings)):
        if draw(st.integers(0, 30)):  # now and then a field is missing
            fields.append(b'"' + name + b'"' + draw(spaces) + b":" + draw(spaces) + draw(spelling))
    fields.extend(draw(st.lists(extras, max_size=2)))
    fields = draw(st.permutations(fields))
    body = b"{" + draw(spaces) + (draw(spaces) + b"," + draw(spaces)).join(fields) + draw(spaces) + b"}"
    damage = draw(st.integers(0, 40))
    if damage == 0:
        body = body[: draw(st.integers(0, len(body)))]
    elif damage == 1:
        body += draw(_spelled([b"x", b",", b"}", b" {}"]))
    elif damage == 2:
        body = draw(_spelled([b"[]", b'"s"', b"1", b"", b"\xef\xbb\xbf{}"]))
    return draw(spaces) + body + draw(spaces)


def _app(kind: str) -> App:
    app = App("parity")
    source = app.topic("in", partitions=2)
    window = {"tumbling": Tumbling(100), "sliding": Sliding(100, 25), "session": Session(30)}[kind]
    (
        app.stream(source, event_time=EventTime("ts", max_out_of_orderness=30, max_future_skew=10**9))
        .key_by("k")
        .window(window, allowed_lateness=20)
        .aggregate(n=Count(), total=Sum("v"), avg=Mean("v"), lo=Min("v"), hi=Max("v"))
        .to(app.topic("out"))
    )
    return app


def _topics(path: Path) -> dict[str, list[Any]]:
    """Each topic's records; for dead letters and late records, all but the wall-clock time written."""
    log = EmbeddedLog(path / "log")
    got: dict[str, list[Any]] = {"out": [(r.partition, r.key, r.value) for r in log.read_all("out")]}
    for topic in ("parity-late", "parity-dlq"):
        got[topic] = [
            (d.reason, _without_times(d.error), d.source_partition, d.source_offset, d.step, d.record.value)
            for d in map(DeadLetter.from_record, log.read_all(topic))
        ]
    log.close()
    return got


def _without_times(error: str) -> str:
    """A future_timestamp error names the processing time (the wall clock): not compared."""
    return error.partition(" ms ahead")[0].rpartition(" is ")[0] if " ms ahead of processing time " in error else error


def _produce_interleaved(path: Path, values: list[bytes], group: int) -> None:
    """Groups of `group` records, each in a merge tick of its own, alternate between the
    two partitions: the source hands them out in this order, as many short runs per fetch."""
    log = EmbeddedLog(path / "log")
    log.create_topic(TopicConfig("in", 2))
    producer = log.producer("in")
    for p in (0, 1):
        mine = [j for j in range(len(values)) if j // group % 2 == p]
        producer.send_many([values[j] for j in mine], [j // group * MERGE_TICK_MS for j in mine], partition=p)
    log.close()


def _run_both(tmp_path: Path, kind: str, values: list[bytes], group: int, monkeypatch: pytest.MonkeyPatch) -> None:
    results = []
    for compiled in (True, False):
        path = tmp_path / ("compiled" if compiled else "reference")
        _produce_interleaved(path, values, group)
        with monkeypatch.context() as patch:
            if not compiled:
                use_python_references(patch)
            status = run(_app(kind), path, checkpoint_interval_ms=10**9)
        counters = status.tasks[0].counters
        assert counters.accounted == counters.records_in == len(values)
        results.append((_topics(path), counters.accepted, counters.late, counters.dead_letter_total))
    assert results[0] == results[1]


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(records(), min_size=1, max_size=300), group=st.integers(1, 40))
def test_the_kernel_reads_records_as_the_python_path_does(
    kind: str,
    values: list[bytes],
    group: int,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _run_both(tmp_path_factory.mktemp("parity"), kind, values, group, monkeypatch)
