"""Checkpoints written in small steps are still all or nothing, whenever the process dies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streamcore.state.store import DIRECT_BUDGET_S, WRITE_CHUNK, CheckpointWrite, TaskStore

N = WRITE_CHUNK * 3


def live(store: TaskStore) -> dict[bytes, bytes]:
    return dict(store.scan("ns"))


def first_checkpoint(path: Path) -> None:
    store = TaskStore(path, sync=False)
    store.commit({"ns": lambda w: [w.put(b"k%05d" % i, b"old") for i in range(N)]}, {"id": 1})
    store.close()


def second_checkpoint(store: TaskStore, *, delete_first: bool) -> CheckpointWrite:
    """Checkpoint 2, sealed but not written: every key becomes b"new" (k00000 deleted, if asked)."""
    write = store.checkpoint_write(2)
    writer = write.writer("ns")
    for i in range(N):
        writer.put(b"k%05d" % i, b"new")
    if delete_first:
        writer.delete(b"k00000")
    write.seal({"id": 2})
    return write


def test_a_crash_between_commit_and_apply_is_finished_on_open(tmp_path: Path) -> None:
    path = tmp_path / "db"
    first_checkpoint(path)
    store = TaskStore(path, sync=False)
    write = second_checkpoint(store, delete_first=True)
    steps = 0
    while store.load_checkpoint()["id"] != 2:  # journal, then commit (one chunk per zero-budget step)
        assert not write.step(0.0)
        steps += 1
    assert steps >= 3
    assert list(live(store).values()).count(b"new") < N  # committed, not all applied yet
    store.close()  # the process dies here

    reopened = TaskStore(path, sync=False)  # recovery applies the rest of the journal
    assert reopened.load_checkpoint()["id"] == 2
    state = live(reopened)
    assert b"k00000" not in state and len(state) == N - 1 and set(state.values()) == {b"new"}
    assert not [k for k in reopened._db.keys(from_key=b"j\x00") if k.startswith(b"j\x00")]
    reopened.close()


def test_a_crash_while_journaling_leaves_the_previous_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "db"
    first_checkpoint(path)
    store = TaskStore(path, sync=False)
    write = second_checkpoint(store, delete_first=False)
    assert not write.step(0.0)  # one journal chunk written, no commit record
    store.close()

    reopened = TaskStore(path, sync=False)
    assert reopened.load_checkpoint()["id"] == 1
    assert set(live(reopened).values()) == {b"old"} and len(live(reopened)) == N
    assert not [k for k in reopened._db.keys(from_key=b"j\x00") if k.startswith(b"j\x00")]
    reopened.close()


def test_a_checkpoint_with_time_to_spare_is_one_write_without_a_journal(tmp_path: Path) -> None:
    path = tmp_path / "db"
    first_checkpoint(path)
    writes: list[bool] = []
    store = TaskStore(path, sync=False)
    store._write = _recording(store._write, writes)  # type: ignore[method-assign]
    write = second_checkpoint(store, delete_first=True)
    assert write.step(DIRECT_BUDGET_S)
    assert len(writes) == 1  # through the journal: three chunks, the commit, three chunks
    assert store.load_checkpoint() == {"id": 2}
    state = live(store)
    assert b"k00000" not in state and len(state) == N - 1 and set(state.values()) == {b"new"}
    store.close()


def test_with_a_changelog_every_checkpoint_goes_through_the_journal(tmp_path: Path) -> None:
    """A changelog reader may see part of one write: live keys must not change before the commit."""

    class Changelog:
        def __init__(self) -> None:
            self.ops: list[tuple[bytes, bytes | None]] = []

        def append(self, ops: list[tuple[bytes, bytes | None]]) -> None:
            self.ops.extend(ops)

    changelog = Changelog()
    store = TaskStore(tmp_path / "db", sync=False, changelog=changelog)
    write = second_checkpoint(store, delete_first=False)
    assert write.step(DIRECT_BUDGET_S * 4)
    commit = next(i for i, (key, _) in enumerate(changelog.ops) if key == b"m\x00checkpoint")
    assert commit == N and all(key.startswith(b"j\x00") for key, _ in changelog.ops[:commit])
    store.close()


def _recording(write: Any, writes: list[bool]) -> Any:
    def recorded(batch: Any, *, sync: bool) -> None:
        writes.append(sync)
        write(batch, sync=sync)

    return recorded
