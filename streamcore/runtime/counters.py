"""What happened to every input record of a task: the accounting behind "every record accounted for"."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class TaskCounters:
    """What happened to every input record; `accounted` must always equal `records_in`."""

    records_in: int = 0
    records_in_by_partition: dict[int, int] = field(default_factory=dict)
    accepted: int = 0
    filtered: int = 0
    late: int = 0
    dead_lettered: dict[str, int] = field(default_factory=dict)
    dead_letter_total: int = 0
    """The sum of `dead_lettered` (kept, not summed: the hot loop reads it per batch)."""
    duplicates: int = 0
    """Repartitioned input written again by a restarted producer, skipped (already applied)."""
    outputs: int = 0
    output_errors: int = 0
    checkpoints: int = 0
    last_checkpoint_ms: float = 0.0
    """How long the last checkpoint took (ms)."""
    last_checkpoint_at_ms: float = 0.0
    """When it committed (epoch ms; 0 before the first)."""
    last_checkpoint_bytes: int = 0
    backpressure_s: float = 0.0
    """Time spent waiting for sinks to flush and checkpoints to commit."""

    @property
    def accounted(self) -> int:
        return self.accepted + self.filtered + self.late + self.dead_letter_total + self.duplicates
