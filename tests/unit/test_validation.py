"""Every setting is checked when the job is built, and the error names the setting."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from streamcore.operators import Aggregate, Count, Mean, Session, Sliding, Sum, Tumbling, window_from_dict

from streamcore import App, ConfigError, EventTime, Runner, RunSettings


def app_with_stream() -> tuple[App, Any]:
    app = App("v")
    topic = app.topic("in")
    return app, app.stream(topic, event_time=EventTime("ts")).key_by("k")


def unkeyed_stream() -> Any:
    app = App("v")
    return app.stream(app.topic("in"), event_time=EventTime("ts"))


CASES: list[tuple[str, Callable[[], Any], str]] = [
    ("window of an unkeyed stream", lambda: unkeyed_stream().window(Tumbling("1s")), "window"),
    ("zero window size", lambda: Tumbling(0), "window.size"),
    ("negative window size", lambda: Tumbling(-5), "window.size"),
    ("unreadable duration", lambda: Tumbling("ten seconds"), "window.size"),
    ("zero slide", lambda: Sliding("10s", 0), "window.slide"),
    ("slide does not divide size", lambda: Sliding("10s", "3s"), "window.slide"),
    ("slide larger than size", lambda: Sliding("1s", "2s"), "window.slide"),
    ("zero session gap", lambda: Session(0), "window.gap"),
    ("unknown window type", lambda: window_from_dict({"type": "hopping"}), "window.type"),
    (
        "unknown aggregation",
        lambda: app_with_stream()[1].window(Tumbling("1s")).aggregate(m=("median", "x")),
        "aggregate.m",
    ),
    (
        "aggregation without its field",
        lambda: app_with_stream()[1].window(Tumbling("1s")).aggregate(t="sum"),
        "aggregate.t",
    ),
    ("aggregation field missing", lambda: Sum(""), "sum.field"),
    ("mean field missing", lambda: Mean(None), "mean.field"),  # type: ignore[arg-type]
    (
        "count with a field",
        lambda: app_with_stream()[1].window(Tumbling("1s")).aggregate(n=("count", "x")),
        "aggregate.n",
    ),
    (
        "reserved output name",
        lambda: app_with_stream()[1].window(Tumbling("1s")).aggregate(key=Count()),
        "aggregate.key",
    ),
    ("no aggregation", lambda: app_with_stream()[1].window(Tumbling("1s")).aggregate(), "aggregate"),
    (
        "user aggregation without functions",
        lambda: Aggregate(create=None, add=None, merge=None, result=None),
        "aggregate.create",
    ),  # type: ignore[arg-type]
    ("timestamp field missing", lambda: EventTime(""), "event_time.field"),
    ("negative out-of-orderness", lambda: EventTime("ts", max_out_of_orderness=-1), "event_time.max_out_of_orderness"),
    ("zero idle timeout", lambda: EventTime("ts", idle_timeout=0), "event_time.idle_timeout"),
    ("negative future skew", lambda: EventTime("ts", max_future_skew=-1), "event_time.max_future_skew"),
    ("window size above 2**40 ms", lambda: Tumbling(2**40 + 1), "window.size"),
    ("slide above 2**40 ms", lambda: Sliding(2**40, 2**40 + 1), "window.slide"),
    ("session gap above 2**40 ms", lambda: window_from_dict({"type": "session", "gap_ms": 2**41}), "window.gap"),
    ("session gap of 2**63", lambda: Session(2**63), "window.gap"),
    (
        "out-of-orderness above 2**40 ms",
        lambda: EventTime("ts", max_out_of_orderness=2**40 + 1),
        "event_time.max_out_of_orderness",
    ),
    ("idle timeout above 2**40 ms", lambda: EventTime("ts", idle_timeout=2**40 + 1), "event_time.idle_timeout"),
    ("future skew above 2**40 ms", lambda: EventTime("ts", max_future_skew=2**40 + 1), "event_time.max_future_skew"),
    (
        "allowed lateness above 2**40 ms",
        lambda: app_with_stream()[1].window(Tumbling("1s"), allowed_lateness=2**40 + 1),
        "window.allowed_lateness",
    ),
    ("key field missing", lambda: app_with_stream()[1].key_by(""), "key_by"),
    ("map of a non-function", lambda: app_with_stream()[1].map(3), "map"),
    (
        "negative allowed lateness",
        lambda: app_with_stream()[1].window(Tumbling("1s"), allowed_lateness=-1),
        "window.allowed_lateness",
    ),
    (
        "window without event time",
        lambda: (lambda app: app.stream(app.topic("x")).key_by("k").window(Tumbling("1s")).aggregate(n=Count()))(
            App("w")
        ),
        "event_time",
    ),
    ("stream over an undeclared topic", lambda: App("u").stream("missing"), "topic"),
    ("sink to an undeclared topic", lambda: app_with_stream()[1].to("nowhere"), "to"),
    ("zero partitions", lambda: App("p").topic("t", partitions=0), "partitions"),
    ("invalid app name", lambda: App("no spaces"), "name"),
    ("invalid topic name", lambda: App("a").topic("a/b"), "topic"),
    ("bad batch size", lambda: RunSettings(max_batch_records=0), "max_batch_records"),
    ("bad fsync policy", lambda: RunSettings(fsync="sometimes"), "fsync"),
    ("bad broker url", lambda: RunSettings(broker="redis://x"), "broker"),
    ("mcp without http", lambda: RunSettings(mcp=True), "mcp"),
    ("mcp beyond loopback without a token", lambda: RunSettings(http="0.0.0.0:8080", mcp=True), "mcp_token"),
]


@pytest.mark.parametrize(("build", "setting"), [(b, s) for _, b, s in CASES], ids=[n for n, _, _ in CASES])
def test_invalid_setting_is_named(build: Callable[[], Any], setting: str) -> None:
    with pytest.raises(ConfigError) as err:
        build()
    assert err.value.setting == setting
    assert str(err.value).startswith(f"{setting}: ")


def test_two_streams_with_one_name_are_refused() -> None:
    app, stream = app_with_stream()
    out = app.topic("out")
    stream.to(out)
    with pytest.raises(ConfigError, match="two streams named 'in'"):
        stream.to(out)


def test_an_app_without_sinks_does_not_run(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="defines no stream"):
        Runner(App("empty"), RunSettings(state_dir=tmp_path))


def test_environment_settings_are_read_and_checked() -> None:
    settings = RunSettings.from_env(
        {
            "STREAMCORE_MAX_BATCH_RECORDS": "500",
            "STREAMCORE_UNTIL_END": "true",
            "STREAMCORE_CHECKPOINT_INTERVAL_MS": "2s",
        }
    )
    assert (settings.max_batch_records, settings.until_end, settings.checkpoint_interval_ms) == (500, True, 2000)
    with pytest.raises(ConfigError, match="STREAMCORE_MAX_BATCH_RECORDS"):
        RunSettings.from_env({"STREAMCORE_MAX_BATCH_RECORDS": "many"})
    mcp = RunSettings.from_env({"STREAMCORE_MCP": "1", "STREAMCORE_MCP_TOKEN": "t", "STREAMCORE_HTTP": "0.0.0.0:8080"})
    assert (mcp.mcp, mcp.mcp_token) == (True, "t")  # beyond loopback, with its token
    assert not RunSettings.from_env({}).mcp  # off unless asked


def test_settings_at_the_edges_of_their_ranges_are_accepted() -> None:
    """The contract's ranges are inclusive: a future skew of 0 means nothing may be ahead."""
    assert EventTime("ts", max_future_skew=0).max_future_skew_ms == 0
    assert EventTime("ts", idle_timeout=1, max_out_of_orderness=2**40).idle_timeout_ms == 1
    assert Session(2**40).aggregate_operator({"n": Count()}, allowed_lateness_ms=0, name="w").gap == 2**40
    assert Sliding(2**40, 1).aggregate_operator({"n": Count()}, allowed_lateness_ms=0, name="w").slide == 1


def test_durations_accept_common_forms() -> None:
    assert Tumbling("1m").aggregate_operator({"n": Count()}, allowed_lateness_ms=0, name="w").size == 60_000
    assert Sliding("1500ms", "0.5s").aggregate_operator({"n": "count"}, allowed_lateness_ms=0, name="w").slide == 500
