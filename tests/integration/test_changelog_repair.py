"""A zombie's writes that reach the changelog after the new owner took over are overwritten.

Found by the chaos suite's long profile (`zombie`, run 7 of 20, 2026-12-02; and by the
`no-zombie-fence` mutant): a worker frozen *between* its fence check and its send wakes
up and its checkpoint lands in the changelog after the new owner's writes. Compaction
keeps the last value per key, so the next restore took the zombie's stale window
(`('c1', 1700000060000)`: 4 events where 5 were produced). The owner now notices, at its
next flush, records in its partition it did not write, and writes its own values for
their keys again, after them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from streamcore.io.kafka import KafkaBroker
from streamcore.io.kafka_settings import KafkaSettings
from streamcore.state.store import TaskStore
from tests.integration.conftest import create_topic

NS = "window@v1"


def _checkpoint(store: TaskStore, checkpoint_id: int, entries: dict[bytes, bytes | None]) -> None:
    def fill(writer: object) -> None:
        for key, value in entries.items():
            writer.delete(key) if value is None else writer.put(key, value)  # type: ignore[attr-defined]

    store.commit({NS: fill}, {"id": checkpoint_id, "positions": {"0": checkpoint_id * 10}})


async def _scenario(bootstrap: str, tmp_path: Path) -> dict[bytes, bytes]:
    topic = "repair-changelog"
    await create_topic(bootstrap, topic, 1)
    broker = KafkaBroker(KafkaSettings(bootstrap_servers=bootstrap))
    await broker.start()
    try:
        zombie = TaskStore(tmp_path / "zombie", sync=False)
        await broker.changelog(topic, 0).restore(zombie)
        _checkpoint(zombie, 1, {b"x": b"x@1", b"gone": b"open"})
        await zombie.changelog.flush()  # type: ignore[union-attr]

        owner = TaskStore(tmp_path / "owner", sync=False)  # takes over: restores what the zombie wrote
        await broker.changelog(topic, 0).restore(owner)
        _checkpoint(owner, 2, {b"x": b"x@2", b"gone": None})
        await owner.changelog.flush()  # type: ignore[union-attr]

        _checkpoint(zombie, 2, {b"x": b"x@stale", b"gone": b"back", b"y": b"zombie"})  # it passed its fence check
        await zombie.changelog.flush()  # type: ignore[union-attr] - and lands after the owner's writes

        _checkpoint(owner, 3, {b"z": b"z@3"})
        await owner.changelog.flush()  # type: ignore[union-attr]

        restored = TaskStore(tmp_path / "next-owner", sync=False)
        await broker.changelog(topic, 0).restore(restored)
        assert restored.load_checkpoint() == owner.load_checkpoint()
        return dict(restored.scan(NS))
    finally:
        await broker.close()


def test_the_owner_overwrites_what_a_zombie_wrote_after_it_took_over(kafka: str, tmp_path: Path) -> None:
    assert asyncio.run(_scenario(kafka, tmp_path)) == {b"x": b"x@2", b"z": b"z@3"}
