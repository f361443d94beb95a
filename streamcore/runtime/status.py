"""What a run reports: per task counters and positions, handed to progress callbacks and returned at the end."""

from __future__ import annotations

from dataclasses import dataclass, field

from streamcore.runtime.counters import TaskCounters


@dataclass(slots=True)
class TaskStatus:
    name: str
    counters: TaskCounters
    watermark: float
    state_entries: int
    positions: dict[int, int]
    consumer_lag: dict[int, int] = field(default_factory=dict)
    """Kafka: records in the partition not yet processed (high watermark minus position)."""
    released_s: float | None = None
    """Kafka, in a worker's final status: when (seconds into the run) the partition was
    released to another worker; None for one held to the end."""
    stream: str = ""
    """The pipeline the task runs (`name` adds ``/pN`` when a task is one partition of it)."""
    idle_s: float | None = None
    """Seconds without input, once caught up and quiet a while (`TaskRun.idle_s`); else None."""


@dataclass(slots=True)
class RunStatus:
    """A progress snapshot, handed to the progress callback and returned at the end."""

    elapsed_s: float
    processing_time_ms: int
    tasks: list[TaskStatus] = field(default_factory=list)
    stopped_by: str = ""

    @property
    def records_in(self) -> int:
        return sum(t.counters.records_in for t in self.tasks)
