"""A released partition is served stale until its new owner announces itself, then let go.

The whole move between two real workers is `tests/integration/test_kafka.py::
test_a_worker_that_stops_hands_its_partitions_over_without_a_gap`; these pin the rules.
"""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import pytest

from streamcore.online.reads import NotOwned
from streamcore.online.views import OnlineState
from streamcore.runtime.handover import Handover


class _Stream:
    name = "tx"

    def positions(self) -> dict[int, int]:
        return {1: 42}

    def watermark(self) -> float:
        return 1_000.0

    def current_arrival(self) -> tuple[int, int, int]:
        return (1, 41, 900)


class _Reader:
    feature_names = ("n",)

    def compute(self, state: Any, reference: Any, names: Any = None) -> dict[str, Any]:
        return {"n": state}

    def reference(self) -> Any:
        return None


def _held_partition(clock: list[float]) -> tuple[OnlineState, Handover, SimpleNamespace]:
    """An online state whose view `v` keeps partition 1 (entity "a": n=7), held by a handover."""
    online = OnlineState(clock_ms=lambda: clock[0])
    online.locate = lambda view, entity: 1
    stream = _Stream()
    keyed = {b"a": [7, 900, 1, 41, 0]}
    online.register("v", keyed, stream, _Reader(), partition=1)  # type: ignore[arg-type]
    store = SimpleNamespace(closed=False)
    store.close = lambda: setattr(store, "closed", True)
    run = SimpleNamespace(task=SimpleNamespace(stream=stream, store=store))
    handover = Handover(online, timeout_s=0.2)
    handover.hold("events", 1, run)  # type: ignore[arg-type]
    return online, handover, store


def test_a_held_partition_answers_its_last_values_marked_stale_until_its_new_owner_comes() -> None:
    clock = [10_000.0]
    online, handover, store = _held_partition(clock)
    clock[0] += 250
    read = online.read("v", "a")
    assert read.values() == {"n": 7} and read.stale_ms == 250 and read.as_dict()["stale_ms"] == 250
    handover.taken("events", 1)  # the owners topic names another worker
    assert store.closed
    with pytest.raises(NotOwned):
        online.read("v", "a")


def test_a_partition_nobody_takes_is_let_go_after_the_timeout() -> None:
    online, handover, store = _held_partition([0.0])
    handover.expire()
    assert not store.closed  # not yet
    time.sleep(0.25)
    handover.expire()
    assert store.closed
    with pytest.raises(NotOwned):
        online.read("v", "a")


def test_a_stopping_worker_waits_for_new_owners_unless_it_was_alone() -> None:
    _, handover, store = _held_partition([0.0])
    handover.alone = True
    started = time.monotonic()
    asyncio.run(handover.settle(until=started + 10))
    assert store.closed and time.monotonic() - started < 0.1  # nobody to hand over to

    _, handover, store = _held_partition([0.0])

    async def taken_soon() -> None:
        asyncio.get_running_loop().call_later(0.1, handover.taken, "events", 1)
        await handover.settle(until=time.monotonic() + 10)

    started = time.monotonic()
    asyncio.run(taken_soon())
    assert store.closed and 0.1 <= time.monotonic() - started < 0.19  # ended by the new owner, not the timeout


def test_a_gained_partition_reads_stale_from_its_checkpoint_until_it_has_caught_up() -> None:
    """A new owner serves what it restored at once, but says how old it is until its task catches up."""
    clock = [50_000.0]
    online = OnlineState(clock_ms=lambda: clock[0])
    online.locate = lambda view, entity: 1
    stream = _Stream()
    online.register("v", {b"a": [3, 900, 1, 41, 0]}, stream, _Reader(), partition=1)  # type: ignore[arg-type]
    online.mark_stale(stream, since_ms=42_000.0)  # the restored checkpoint's time
    assert online.read("v", "a").stale_ms == 8_000
    online.mark_fresh(stream)  # caught up with its input
    assert online.read("v", "a").stale_ms is None
