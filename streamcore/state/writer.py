"""The contract between operators and checkpoints: where a checkpoint delta is written."""

from __future__ import annotations

from typing import Protocol


class StateWriter(Protocol):
    """Where an operator writes its checkpoint delta (keys are relative to its namespace)."""

    def put(self, key: bytes, value: bytes) -> None: ...

    def delete(self, key: bytes) -> None: ...
