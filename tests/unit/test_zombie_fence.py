"""A worker the group evicted (a zombie) never replicates a checkpoint to the changelog.

Found by the chaos suite's long profile (`zombie`, run 12 of 20): a worker paused past
its session timeout woke up, and its revocation checkpoint reached the changelog after
the new owner had restored and moved on. The next restore combined the two: a window
the new owner had fired and purged came back with one event in it and fired again
(``('c1', 1700000070000)``: 5 events, then 1). Now each changelog flush first asks the
broker whether this worker still belongs to the group (`KafkaPartitionSource.still_owned`
re-commits the last safe offset: Kafka refuses a commit from a member it evicted).
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import CommitFailedError

from streamcore.io.kafka_changelog import KafkaChangelog, PartitionLost
from streamcore.io.kafka_source import KafkaPartitionSource


class _Consumer:
    def __init__(self, fails: bool, generation: int) -> None:
        self.fails = fails
        self._coordinator = SimpleNamespace(generation=generation)
        self.commits: list[Any] = []

    async def commit(self, offsets: Any) -> None:
        self.commits.append(offsets)
        if self.fails:
            raise CommitFailedError("the group has already rebalanced")


def _owned(fails: bool, generation: int, safe: int | None = 41) -> bool:
    source = KafkaPartitionSource(_Consumer(fails, generation), "events", 3)  # type: ignore[arg-type]
    source._safe = safe
    return asyncio.run(source.still_owned())


def test_only_a_member_the_group_evicted_is_told_it_no_longer_owns_the_partition() -> None:
    assert _owned(fails=False, generation=7)  # the commit went through: still the owner
    assert not _owned(fails=True, generation=-1)  # refused, and the coordinator reset the generation
    assert _owned(fails=True, generation=7)  # refused for another reason (a rebalance in progress): still a member
    assert _owned(fails=True, generation=-1, safe=None)  # nothing to re-commit yet


def test_a_changelog_flush_of_a_lost_partition_sends_nothing() -> None:
    changelog = KafkaChangelog(None, "app-totals-changelog", 3)  # type: ignore[arg-type] - never reached

    async def lost() -> bool:
        return False

    changelog.fence = lost
    changelog.append([(b"key", b"value")])
    with pytest.raises(PartitionLost):
        asyncio.run(changelog.flush())
    assert changelog._pending == []  # dropped, not kept for a later flush
