"""The one error tree of streamcore.

    StreamcoreError
     ├── ConfigError          a job or run setting is invalid; raised when the job is built
     ├── LogError             the embedded log
     │    ├── TopicNotFound
     │    ├── TopicConflict   a topic exists with other settings (e.g. partition count)
     │    ├── LogCorruption   a frame is damaged on disk (not a torn write at the tail)
     │    └── OffsetOutOfRange a checkpoint resumes past the end of a partition
     ├── StateError           RocksDB state or checkpoints
     │    └── IncompatibleState
     └── RecordError          one record cannot be processed; it is dead-lettered, never raised to the user
          ├── SchemaError     decoded, but a field has the wrong type or is missing
          └── FutureTimestamp the event time is too far ahead of processing time

`retriable` says whether trying the same call again later can succeed.
"""

from __future__ import annotations

from typing import Literal

DeadLetterReason = Literal["decode", "schema", "future_timestamp", "operator_error", "shed"]
"""Why a record went to the dead-letter queue (see docs and `streamcore.base.deadletter`)."""


class StreamcoreError(Exception):
    """Base of every error streamcore raises."""

    retriable: bool = False


class ConfigError(StreamcoreError, ValueError):
    """A setting is invalid. `setting` names it the way the user wrote it (e.g. ``window.size``)."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting


class LogError(StreamcoreError):
    """A problem with the embedded log."""


class TopicNotFound(LogError, KeyError):
    def __init__(self, topic: str) -> None:
        super().__init__(f"topic {topic!r} does not exist (create it with `streamcore log topics --create`)")
        self.topic = topic

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class TopicConflict(LogError):
    """The topic exists with settings that differ from the ones asked for."""


class LogCorruption(LogError):
    """A frame was damaged on disk: its checksum fails, or valid frames follow bytes that are no frame."""

    def __init__(self, path: str, position: int, detail: str) -> None:
        super().__init__(f"{path} at byte {position}: {detail}")
        self.path = path
        self.position = position


class OffsetOutOfRange(LogError):
    """A checkpointed position lies past the end of its partition: records it counted are gone.

    Resuming there would skip the records appended since under offsets the checkpoint already
    counted, so the run stops instead, unless ``offset_reset="latest"`` says to go on from the
    partition's end (like Kafka's ``auto.offset.reset``, which is ``none`` here by default).
    """

    def __init__(self, topic: str, partition: int, position: int, end: int) -> None:
        super().__init__(
            f"topic {topic!r} partition {partition}: the checkpoint resumes at offset {position}, "
            f"but the log ends at offset {end}. The records the checkpoint counted past {end} are gone "
            "(the log's tail was cut, or lost in a power failure with fsync=never), and new records "
            "would reuse their offsets. To go on from the log's end, accepting that, run with "
            "--offset-reset latest (STREAMCORE_OFFSET_RESET=latest); to recompute from what the log "
            "holds, remove the state directory."
        )
        self.topic, self.partition, self.position, self.end = topic, partition, position, end


class StateError(StreamcoreError):
    """A problem with RocksDB state or a checkpoint."""


class StateLocked(StateError):
    """Another process (a running worker) holds a task's RocksDB."""


class IncompatibleState(StateError):
    """The state directory was written by a job whose operators or state versions differ."""


class RecordError(StreamcoreError):
    """A single record cannot be processed; the runtime dead-letters it with `reason`."""

    reason: DeadLetterReason = "operator_error"


class SchemaError(RecordError):
    """The record decoded, but a field is missing or has the wrong type."""

    reason: DeadLetterReason = "schema"


class FutureTimestamp(RecordError):
    """The event time is further ahead of processing time than ``max_future_skew`` allows."""

    reason: DeadLetterReason = "future_timestamp"
