"""A partition revoked twice at once is released once (a rebalance arriving while a worker stops).

Found by the chaos suite's long profile (`zombie`, run 5): the stop's revocation of every
partition and the group's own revocation of two of them ran interleaved; both released
the same task and the second failed with ``list.remove(x): x not in list``, so the
worker exited 1 after a clean stop.
"""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

from streamcore.runtime.kafka_membership import KafkaMembership
from streamcore.runtime.status import TaskStatus


class _Membership(KafkaMembership):
    """Just what `_revoked` touches, with two partitions' tasks."""

    def __init__(self) -> None:
        self._runs = [self._run(p) for p in (2, 3)]
        self._released: list[TaskStatus] = []
        self._started = time.monotonic()
        self._handover = None
        self.closed: list[int] = []
        self.online = SimpleNamespace(unregister=lambda stream: None)

    def _run(self, partition: int) -> Any:
        async def close_source() -> None:
            await asyncio.sleep(0)

        store = SimpleNamespace(close=lambda: self.closed.append(partition))
        task = SimpleNamespace(partitions=[partition], stream=object(), store=store)
        return SimpleNamespace(source=SimpleNamespace(topic="events", close=close_source), task=task, drive=None)

    async def _retire(self, run: Any) -> None:
        await asyncio.sleep(0.01)  # a checkpoint takes a while: the other revocation runs meanwhile

    def _task_status(self, run: Any) -> TaskStatus:
        return TaskStatus(f"p{run.task.partitions[0]}", None, 0.0, 0, {})  # type: ignore[arg-type]


def test_two_revocations_of_the_same_partitions_release_each_task_once() -> None:
    membership = _Membership()

    async def both() -> None:
        stop = membership._revoked([("events", 2), ("events", 3)])  # type: ignore[misc]
        rebalance = membership._revoked([("events", 2), ("events", 3)])  # type: ignore[misc]
        await asyncio.gather(stop, rebalance)

    asyncio.run(both())
    assert membership._runs == [] and sorted(membership.closed) == [2, 3]  # each store closed once
    assert [s.name for s in membership._released] == ["p2", "p3"]  # each counted once in the summary
