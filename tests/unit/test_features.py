"""Feature views on the real engine: exact rolling features, coherent reads, pinned snapshots."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from helpers import settings as run_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streamcore.operators import Count, CountDistinct, FeatureView, Latest, Max, Mean, Rolling, Sum

from streamcore import App, ConfigError, EventTime, Runner
from streamcore.io.log import EmbeddedLog, TopicConfig
from streamcore.online.reads import SnapshotExpired

OVER, PANE = 10_000, 1_000
VIEW = FeatureView(
    "card",
    entity="card",
    features={
        "n": Rolling(Count(), over=OVER, pane=PANE),
        "ones": Rolling(Sum("one"), over=OVER, pane=PANE),
        "spend": Rolling(Sum("amount"), over=OVER, pane=PANE),
        "avg": Rolling(Mean("amount"), over=OVER, pane=PANE),
        "top": Rolling(Max("amount"), over=OVER, pane=PANE),
        "merchants": Rolling(CountDistinct("merchant"), over=OVER, pane=PANE),
        "n_all": Rolling(Count(), over=3_600_000, pane=60_000),
        "last": Latest("amount"),
    },
)


def feature_app() -> App:
    app = App("feat")
    app.stream(app.topic("tx", partitions=2), event_time=EventTime("ts")).key_by("card").features(VIEW).discard()
    return app


def append(tmp_path: Path, events: list[dict[str, Any]]) -> None:
    log = EmbeddedLog(tmp_path / "log")
    log.create_topic(TopicConfig("tx", 2))
    producer = log.producer("tx")
    producer.send_many([orjson.dumps(e) for e in events], [0] * len(events), [e["card"].encode() for e in events])
    log.close()


async def while_running(tmp_path: Path, body: Callable[[Runner], Awaitable[None]]) -> None:
    """Run the feature app (no end of input) while `body` works with the runner, then stop it."""
    runner = Runner(feature_app(), run_settings(tmp_path, until_end=False), handle_signals=False)
    running = asyncio.create_task(runner.run())
    try:
        await body(runner)
    finally:
        runner.stop()
        await running


async def caught_up(runner: Runner, records: int) -> None:
    while not runner.sources or runner.status().records_in < records:  # noqa: ASYNC110 - polls from outside
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.02)  # let the task publish what it applied


def expected(events: list[dict[str, Any]], card: str) -> dict[str, Any]:
    """Brute force: the events of `card` in the panes overlapping (T - over, T], T = newest time seen."""
    now = max(e["ts"] for e in events)
    mine = [e for e in events if e["card"] == card]
    window = [e for e in mine if e["ts"] - e["ts"] % PANE + PANE > now - OVER]
    amounts = [e["amount"] for e in window]
    newest = max(mine, key=lambda e: e["ts"]) if mine else None
    return {
        "n": len(window),
        "ones": len(window),
        "spend": sum(amounts),
        "avg": sum(amounts) / len(amounts) if amounts else None,
        "top": max(amounts, default=None),
        "merchants": len({e["merchant"] for e in window}),
        "n_all": len(mine),
        "last": newest["amount"] if newest else None,
    }


event_lists = st.lists(
    st.builds(
        lambda card, ts, amount, merchant: {"card": card, "ts": ts, "amount": amount, "merchant": merchant, "one": 1},
        st.sampled_from(["a", "b", "c"]),
        st.integers(0, 40_000),
        st.integers(1, 500),
        st.sampled_from("xyz"),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=event_lists)
def test_rolling_features_equal_brute_force(events: list[dict[str, Any]], tmp_path_factory: Any) -> None:
    tmp_path = tmp_path_factory.mktemp("rolling")
    append(tmp_path, events)

    async def check(runner: Runner) -> None:
        await caught_up(runner, len(events))
        for card in "abc":
            got = runner.online.read("card", card).values()
            want = expected(events, card)
            for name, value in want.items():
                if name in ("spend", "avg") and value is not None:
                    assert got[name] == pytest.approx(value), name
                elif name == "last" and value is not None:
                    same_time = [
                        e["amount"]
                        for e in events
                        if e["card"] == card and e["ts"] == max(x["ts"] for x in events if x["card"] == card)
                    ]
                    assert got[name] in same_time  # ties in event time: any of them may be the newest
                else:
                    assert got[name] == value, name

    asyncio.run(while_running(tmp_path, check))


def test_reads_during_ingest_are_coherent_and_snapshots_hold(tmp_path: Path) -> None:
    rng = random.Random(5)
    cards = [f"c{i}" for i in range(50)]
    batches = [
        [
            {"card": rng.choice(cards), "ts": 1_000 * b + i, "amount": rng.randint(1, 9), "merchant": "m", "one": 1}
            for i in range(200)
        ]
        for b in range(60)
    ]
    append(tmp_path, batches[0])

    async def check(runner: Runner) -> None:
        log = EmbeddedLog(tmp_path / "log")
        producer = log.producer("tx")
        reads = pinned_checks = 0
        applied = len(batches[0])
        for batch in batches[1:]:
            producer.send_many([orjson.dumps(e) for e in batch], [0] * len(batch), [e["card"].encode() for e in batch])
            applied += len(batch)
            for _ in range(40):  # read hard while the stream applies the batch
                await asyncio.sleep(0)
                read = runner.online.read("card", rng.choice(cards))
                if read.found:
                    f = read.values()
                    assert f["n"] == f["ones"]  # two features kept from the same events agree
                    assert f["n_all"] >= f["n"]
                    reads += 1
            snap = runner.online.pin()
            first = {c: runner.online.read("card", c, snap.id).values() for c in cards}
            total = sum(v["n_all"] for v in first.values())
            assert total == sum(snap.positions["tx"].values())  # all entities, as of one input position
            await asyncio.sleep(0.01)  # the stream moves on
            again = {c: runner.online.read("card", c, snap.id).values() for c in cards}
            assert again == first
            runner.online.release(snap.id)
            pinned_checks += 1
        await caught_up(runner, applied)
        final = sum(runner.online.read("card", c).values()["n_all"] for c in cards)
        assert final == applied
        assert reads > 500 and pinned_checks == len(batches) - 1
        log.close()

    asyncio.run(while_running(tmp_path, check))


def test_reads_report_position_freshness_and_lag(tmp_path: Path) -> None:
    append(tmp_path, [{"card": "a", "ts": 5, "amount": 3, "merchant": "m", "one": 1}])

    async def check(runner: Runner) -> None:
        await caught_up(runner, 1)
        read = runner.online.read("card", "a")
        doc = read.as_dict()
        assert doc["found"] and doc["features"]["last"]["value"] == 3
        assert doc["position"] == {"stream": "tx", "partitions": {"0": 0, "1": 1}} or doc["position"] == {
            "stream": "tx",
            "partitions": {"0": 1, "1": 0},
        }
        assert doc["features"]["n"]["freshness_ms"] is not None and doc["features"]["n"]["freshness_ms"] >= 0
        missing = runner.online.read("card", "nobody")
        assert not missing.found and missing.values()["n"] == 0 and missing.values()["last"] is None

    asyncio.run(while_running(tmp_path, check))


def test_snapshots_expire_by_ttl_and_by_memory(tmp_path: Path) -> None:
    append(tmp_path, [{"card": f"c{i}", "ts": i, "amount": 1, "merchant": "m", "one": 1} for i in range(100)])

    async def check(runner: Runner) -> None:
        await caught_up(runner, 100)
        online = runner.online
        short = online.pin(ttl_ms=1)
        await asyncio.sleep(0.01)
        with pytest.raises(SnapshotExpired, match="expired"):
            online.read("card", "c1", short.id)
        with pytest.raises(SnapshotExpired):
            online.read("card", "c1", "no-such-snapshot")
        online.snapshot_memory_bytes = 2_000
        old = online.pin()
        log = EmbeddedLog(tmp_path / "log")
        more = [{"card": f"c{i}", "ts": 200 + i, "amount": 2, "merchant": "m", "one": 1} for i in range(100)]
        log.producer("tx").send_many([orjson.dumps(e) for e in more], [0] * 100, [e["card"].encode() for e in more])
        log.close()
        await caught_up(runner, 200)
        assert online.expired_by_memory >= 1
        with pytest.raises(SnapshotExpired):
            online.read("card", "c1", old.id)
        assert online.copied_bytes <= online.snapshot_memory_bytes

    asyncio.run(while_running(tmp_path, check))


def test_features_survive_a_restart(tmp_path: Path) -> None:
    events = [{"card": "a", "ts": 1_000 * i, "amount": i, "merchant": f"m{i % 3}", "one": 1} for i in range(12)]
    append(tmp_path, events[:6])

    async def first(runner: Runner) -> None:
        await caught_up(runner, 6)

    asyncio.run(while_running(tmp_path, first))
    append(tmp_path, events[6:])
    seen: dict[str, Any] = {}

    async def second(runner: Runner) -> None:
        await caught_up(runner, 6)
        seen.update(runner.online.read("card", "a").values())

    asyncio.run(while_running(tmp_path, second))
    assert seen == expected(events, "a")


def test_after_a_restart_reads_are_as_of_the_same_moment_before_any_new_event(tmp_path: Path) -> None:
    events = [{"card": "a", "ts": 1_000 * i, "amount": i, "merchant": f"m{i % 3}", "one": 1} for i in range(12)]
    append(tmp_path, events)
    reads: list[dict[str, Any]] = []

    async def read(runner: Runner) -> None:
        await caught_up(runner, 12 if not reads else 0)
        reads.append(runner.online.read("card", "a").values())

    asyncio.run(while_running(tmp_path, read))
    asyncio.run(while_running(tmp_path, read))  # nothing new: the rolling windows must not look empty
    assert reads[0] == reads[1] == expected(events, "a")


def test_an_event_a_feature_refuses_changes_no_feature(tmp_path: Path) -> None:
    """A distinct value that is a list is refused by the sixth feature: the five before it must
    not have counted the event (an event is applied to all features or to none)."""
    good = {"card": "a", "ts": 1_000, "amount": 5, "merchant": "m1", "one": 1}
    refused = {"card": "a", "ts": 2_000, "amount": 7, "merchant": ["m2"], "one": 1}
    append(tmp_path, [good, refused])
    seen: dict[str, Any] = {}

    async def read(runner: Runner) -> None:
        await caught_up(runner, 2)
        seen.update(runner.online.read("card", "a").values())
        assert sum(t.counters.dead_lettered.get("schema", 0) for t in runner.status().tasks) == 1

    asyncio.run(while_running(tmp_path, read))
    assert seen == expected([good], "a")


def test_feature_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"features.x.pane: must divide over"):
        FeatureView("v", entity="e", features={"x": Rolling(Count(), over="1m", pane="7s")})
    with pytest.raises(ConfigError, match=r"aggregate.x: unknown aggregation"):
        FeatureView("v", entity="e", features={"x": Rolling("median", over="1m")})
    with pytest.raises(ConfigError, match=r"view\.features"):
        FeatureView("v", entity="e", features={})
