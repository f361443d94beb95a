"""What a task hands to its operators (`TaskContext`) and to the online state (`TaskStream`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from streamcore.base.records import RecordBatch
from streamcore.dataflow.operator import Emit
from streamcore.dataflow.stream import Pipeline
from streamcore.online.reads import FeatureReader
from streamcore.online.views import EntityStore, OnlineState, record_json
from streamcore.state.keyed import KeyedState
from streamcore.state.store import TaskStore


class TaskParts(Protocol):
    """The parts of a `streamcore.runtime.task.Task` its context and stream view read."""

    pipeline: Pipeline
    store: TaskStore
    keyed_states: list[KeyedState]
    online: OnlineState
    stream: TaskStream
    partitions: tuple[int, ...]
    split_views: bool
    tracks_arrivals: bool
    positions: dict[int, int]
    current_batch: RecordBatch | None
    current_index: int

    @property
    def watermark(self) -> float: ...


class TaskContext:
    """What an operator may call back into: admit events, emit results, report failures, keyed state."""

    __slots__ = ("_namespace", "_task", "admit", "emit", "fail_output")

    def __init__(
        self,
        task: TaskParts,
        namespace: str,
        emit: Emit,
        fail_output: Callable[[Any, Any, int, BaseException], None],
        admit: Callable[[int], None],
    ) -> None:
        self._task = task
        self._namespace = namespace
        self.emit = emit
        self.fail_output = fail_output
        self.admit = admit

    def keyed_state(self, name: str, *, capacity: int = 100_000) -> KeyedState:
        state = KeyedState(self._task.store, f"{self._namespace}/{name}", capacity=capacity)
        self._task.keyed_states.append(state)
        return state

    def entity_store(self, view: str, reader: FeatureReader, *, capacity: int = 100_000) -> EntityStore:
        task = self._task
        task.tracks_arrivals = True
        partition = task.partitions[0] if task.split_views else None
        keyed = self.keyed_state(f"view:{view}", capacity=capacity)
        keyed.encode_with(record_json)
        return task.online.register(view, keyed, task.stream, reader, partition)


class TaskStream:
    """The task as the online state sees it (`streamcore.online.reads.StreamInfo`)."""

    def __init__(self, task: TaskParts) -> None:
        self._task = task

    @property
    def name(self) -> str:
        return self._task.pipeline.name

    def positions(self) -> dict[int, int]:
        return dict(self._task.positions)

    def watermark(self) -> float:
        return self._task.watermark

    def current_arrival(self) -> tuple[int, int, int]:
        batch, i = self._task.current_batch, self._task.current_index
        if batch is None:
            return -1, -1, 0
        return batch.partition, batch.base_offset + i, batch.timestamps[i]
