"""RocksDB state of one task, and the atomic checkpoint.

One RocksDB database per task (``<state_dir>/<app>/<task>``), so a task's state can
move, be copied or be dropped on its own. Keys:

    b"o\\0" + namespace + b"\\0" + key     operator state (namespace = ``name@vN``)
    b"m\\0checkpoint"                     the checkpoint record (positions, watermarks, ...)

Nothing is written between checkpoints: operators keep changes in memory, and a
checkpoint writes all of them plus the checkpoint record in one WriteBatch with a
synced WAL. A killed process therefore leaves exactly the last checkpoint on disk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, cast

import orjson
from rocksdict import Options, Rdict, WriteBatch, WriteOptions

from .errors import StateError
from .operator import StateWriter

_META_KEY = b"m\x00checkpoint"


def _namespace_prefix(namespace: str) -> bytes:
    return b"o\x00" + namespace.encode() + b"\x00"


class _BatchWriter:
    """The StateWriter an operator gets during a checkpoint: keys go under its namespace."""

    __slots__ = ("_batch", "_prefix", "bytes", "deletes", "puts")

    def __init__(self, batch: WriteBatch, prefix: bytes) -> None:
        self._batch = batch
        self._prefix = prefix
        self.bytes = 0

    def put(self, key: bytes, value: bytes) -> None:
        self._batch.put(self._prefix + key, value)
        self.bytes += len(key) + len(value)

    def delete(self, key: bytes) -> None:
        self._batch.delete(self._prefix + key)


class StoreBatch:
    """The deltas of one checkpoint, committed with its record in one atomic RocksDB write."""

    def __init__(self, store: TaskStore) -> None:
        self._store = store
        self._batch = WriteBatch(raw_mode=True)
        self._writers: list[_BatchWriter] = []

    def writer(self, namespace: str) -> _BatchWriter:
        writer = _BatchWriter(self._batch, _namespace_prefix(namespace))
        self._writers.append(writer)
        return writer

    def commit(self, meta: dict[str, Any]) -> int:
        """Write it all (synced); return the bytes of state written."""
        record = orjson.dumps(meta)
        self._batch.put(_META_KEY, record)
        self._store._write(self._batch)
        return sum(w.bytes for w in self._writers) + len(record)


class TaskStore:
    """The RocksDB database of one task."""

    def __init__(self, path: Path, *, sync: bool = True) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        options = Options(raw_mode=True)
        options.create_if_missing(True)
        try:
            self._db = Rdict(str(path), options)
        except Exception as exc:
            raise StateError(f"cannot open state at {path}: {exc}") from exc
        self._write_options = WriteOptions()
        self._write_options.sync = sync

    def load_checkpoint(self) -> dict[str, Any] | None:
        raw = self._db.get(_META_KEY)
        return None if raw is None else orjson.loads(raw)

    def get(self, namespace: str, key: bytes) -> bytes | None:
        """One value of an operator namespace as of the last checkpoint."""
        return cast("bytes | None", self._db.get(_namespace_prefix(namespace) + key))

    def scan(self, namespace: str) -> Iterator[tuple[bytes, bytes]]:
        """Every (key, value) of an operator namespace, in key order."""
        prefix = _namespace_prefix(namespace)
        cut = len(prefix)
        items = cast("Iterator[tuple[bytes, bytes]]", self._db.items(from_key=prefix))  # raw mode: bytes
        for key, value in items:
            if not key.startswith(prefix):
                break
            yield key[cut:], value

    def namespaces(self) -> set[str]:
        """Operator namespaces present in the store (to detect renamed or re-versioned state)."""
        found = set()
        for key in cast("Iterator[bytes]", self._db.keys(from_key=b"o\x00")):
            if not key.startswith(b"o\x00"):
                break
            found.add(key[2 : key.index(b"\x00", 2)].decode())
        return found

    def batch(self) -> StoreBatch:
        """A write batch for one checkpoint: operator deltas, then the checkpoint record."""
        return StoreBatch(self)

    def commit(self, writers: Mapping[str, Callable[[StateWriter], None]], meta: dict[str, Any]) -> int:
        """Write every operator's delta and the checkpoint record in one atomic batch.

        Returns the number of bytes of state written.
        """
        batch = self.batch()
        for namespace, write in writers.items():
            write(batch.writer(namespace))
        return batch.commit(meta)

    def _write(self, batch: WriteBatch) -> None:
        try:
            self._db.write(batch, self._write_options)
        except Exception as exc:
            raise StateError(f"checkpoint write to {self.path} failed: {exc}") from exc

    def close(self) -> None:
        """Release the database. Writes nothing: what is not checkpointed is not on disk."""
        self._db.close()
