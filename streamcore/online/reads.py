"""What a read of the online state returns, and the errors and contracts it speaks in.

`EntityRead` (values, freshness and position of one entity in one view), `Snapshot`
(a pinned epoch), the errors a read raises, and the two protocols the online state
reads through: `FeatureReader` (how a view computes features from an entity's state)
and `StreamInfo` (the stream that feeds a view).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from streamcore.base.errors import StreamcoreError


class SnapshotExpired(StreamcoreError, KeyError):
    """The snapshot id is unknown, or its TTL or the snapshot memory cap ended it."""

    def __str__(self) -> str:
        return str(self.args[0])


class NotOwned(StreamcoreError, KeyError):
    """The entity's partition is not assigned to this worker (another worker owns it)."""

    def __init__(self, message: str, view: str, partition: int) -> None:
        super().__init__(message)
        self.view = view
        self.partition = partition

    def __str__(self) -> str:
        return str(self.args[0])


class UnknownView(StreamcoreError, KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A pinned epoch: reads with its id see the online state as of `epoch`."""

    id: str
    epoch: int
    created_ms: int
    expires_ms: int
    positions: Mapping[str, Mapping[int, int]]
    """Per stream, the next offset of each input partition the snapshot reflects."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "epoch": self.epoch,
            "created_ms": self.created_ms,
            "expires_ms": self.expires_ms,
            "positions": {stream: {str(p): o for p, o in parts.items()} for stream, parts in self.positions.items()},
        }


@dataclass(frozen=True, slots=True)
class FeatureValue:
    value: Any
    freshness_ms: float | None
    """From the arrival of the newest event the feature reflects to when it became readable."""
    age_ms: float | None
    """From the arrival of that event to the read (or to the snapshot's pin)."""


@dataclass(frozen=True, slots=True)
class EntityRead:
    """All features of an entity in one view, as of one input position."""

    view: str
    entity: str
    found: bool
    features: Mapping[str, FeatureValue]
    stream: str
    positions: Mapping[int, int]
    watermark_lag_ms: float | None
    snapshot: str | None
    stale_ms: float | None = None
    """Set while the entity's partition moves to another worker: the values are those of the
    partition's last checkpoint, taken this many ms ago (see `streamcore.runtime.handover`)."""

    def values(self) -> dict[str, Any]:
        return {name: f.value for name, f in self.features.items()}

    def as_dict(self) -> dict[str, Any]:
        return {
            "view": self.view,
            "entity": self.entity,
            "found": self.found,
            "features": {
                name: {"value": f.value, "freshness_ms": f.freshness_ms, "age_ms": f.age_ms}
                for name, f in self.features.items()
            },
            "position": {"stream": self.stream, "partitions": {str(p): o for p, o in self.positions.items()}},
            "watermark_lag_ms": self.watermark_lag_ms,
            "snapshot": self.snapshot,
            "stale_ms": self.stale_ms,
        }


class FeatureReader(Protocol):
    """What a feature operator offers the online state: its features, computed from a state."""

    feature_names: tuple[str, ...]

    def compute(self, state: Any, reference: Any, names: Iterable[str] | None = None) -> dict[str, Any]:
        """The features (all, or just `names`) from an entity's state.

        `reference` is what `reference()` returned.
        """
        ...

    def reference(self) -> Any:
        """What reads need besides the entity's state (e.g. the view's event-time now)."""
        ...


@runtime_checkable
class ViewDeclaration(Protocol):
    """What an app declares about a feature view for those who read it, e.g. an agent's tool
    schemas (`streamcore.serving.agent_tools`): `operators.features.FeatureView` is one."""

    @property
    def name(self) -> str: ...

    @property
    def entity(self) -> str:
        """The name of the entity key (the field the stream is keyed by)."""
        ...

    @property
    def description(self) -> str: ...

    def feature_schemas(self) -> dict[str, dict[str, Any]]:
        """Per feature, the JSON Schema of its value, with a ``description`` of what it is."""
        ...


class StreamInfo(Protocol):
    """What the online state needs to know about the task that feeds a view."""

    @property
    def name(self) -> str: ...

    def positions(self) -> dict[int, int]: ...

    def watermark(self) -> float: ...

    def current_arrival(self) -> tuple[int, int, int]:
        """(partition, offset, arrival time in epoch ms) of the record being processed."""
        ...
