"""The one error tree of streamcore.

    StreamcoreError
     ├── ConfigError          a job or run setting is invalid; raised when the job is built
     ├── LogError             the embedded log
     │    ├── TopicNotFound
     │    ├── TopicConflict   a topic exists with other settings (e.g. partition count)
     │    └── LogCorruption   a frame in the middle of a segment fails its checksum
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
"""Why a record went to the dead-letter queue (see docs and `streamcore.deadletter`)."""


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
    """A complete frame failed its checksum in the middle of a segment: data was damaged on disk."""

    def __init__(self, path: str, position: int, detail: str) -> None:
        super().__init__(f"{path} at byte {position}: {detail}")
        self.path = path
        self.position = position


class StateError(StreamcoreError):
    """A problem with RocksDB state or a checkpoint."""


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
