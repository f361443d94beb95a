"""A task's checkpoint in steps: encode the changed keyed entries, then write journal, commit, apply."""

from __future__ import annotations

import time
from typing import Any

from streamcore.base.errors import IncompatibleState
from streamcore.runtime.counters import TaskCounters
from streamcore.state.keyed import KeyedState
from streamcore.state.store import CheckpointWrite, TaskStore

CHECKPOINT_FORMAT = 1
ENCODE_CHUNK = 32
"""Keyed entries a checkpoint step encodes between looks at the clock (a large entry takes ~10 µs)."""


def checkpoint_meta(
    checkpoint_id: int,
    time_ms: int,
    *,
    app: tuple[str, str],
    stream: str,
    operators: list[str],
    positions: dict[int, int],
    watermark: dict[str, Any],
) -> dict[str, Any]:
    """The checkpoint record: what a restore checks and resumes from."""
    return {
        "format": CHECKPOINT_FORMAT,
        "id": checkpoint_id,
        "time_ms": time_ms,
        "app": app[0],
        "app_version": app[1],
        "stream": stream,
        "operators": operators,
        "positions": {str(p): off for p, off in positions.items()},
        "watermark": watermark,
    }


def check_compatible(
    meta: dict[str, Any] | None, store: TaskStore, operators: list[str], stream: str, partitions: tuple[int, ...]
) -> None:
    """Raise `IncompatibleState` unless the store's checkpoint (or its absence) fits this task."""
    if meta is None:
        stale = store.namespaces()
        if stale:
            raise IncompatibleState(
                f"{store.path} holds operator state {sorted(stale)} "
                "but no checkpoint record; remove the directory to start over"
            )
        return
    if meta.get("operators") != operators:
        raise IncompatibleState(
            f"state in {store.path} was written for operators {meta.get('operators')}, "
            f"but stream {stream!r} now has {operators}. Renaming an operator "
            "or changing its state version needs a fresh state directory (or a migration)."
        )
    saved_parts = {int(p) for p in meta["positions"]}
    if saved_parts != set(partitions):
        raise IncompatibleState(
            f"state in {store.path} covers partitions {sorted(saved_parts)}, the source now has {list(partitions)}"
        )


class TaskCheckpoint:
    """A checkpoint being taken while the stream goes on.

    The cut (positions, watermarks, operator deltas, which keyed entries changed) was
    taken by `streamcore.runtime.task.Task.start_checkpoint`. `step` then works for a bounded time: it encodes
    the changed keyed entries (an entry that changes meanwhile is encoded first,
    copy-on-write, so the checkpoint holds exactly the state of the cut), and then
    writes the checkpoint in small batches: journal, commit record, apply
    (`streamcore.state.store.CheckpointWrite`). `commit` finishes once `step` says it is done.
    """

    def __init__(
        self, keyed_states: list[KeyedState], counters: TaskCounters, write: CheckpointWrite, meta: dict[str, Any]
    ) -> None:
        self.keyed_states = keyed_states
        self.counters = counters
        self.write = write
        self.meta = meta
        self.positions = {int(p): off for p, off in meta["positions"].items()}
        self.started = time.perf_counter()
        self._sealed = False

    def step(self, budget_s: float) -> bool:
        """Work for up to about `budget_s`; True once the checkpoint is written."""
        deadline = time.perf_counter() + budget_s
        if not self._sealed:
            for state in self.keyed_states:
                while not state.encode_some(ENCODE_CHUNK):
                    if time.perf_counter() >= deadline:
                        return False
            self.write.seal(self.meta)
            self._sealed = True
        return self.write.step(max(0.0, deadline - time.perf_counter()))

    def commit(self) -> None:
        """After `step` returned True: the cache may shrink; count the checkpoint."""
        for state in self.keyed_states:
            state.end_checkpoint()
        counters = self.counters
        counters.checkpoints += 1
        counters.last_checkpoint_ms = (time.perf_counter() - self.started) * 1000
        counters.last_checkpoint_at_ms = time.time() * 1000
        counters.last_checkpoint_bytes = self.write.bytes
