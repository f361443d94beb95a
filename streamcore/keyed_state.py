"""Per-key operator state larger than memory: a write-back cache over the task's RocksDB.

    counts = context.keyed_state("counts")
    counts.put(b"card-42", counts.get(b"card-42", 0) + 1)

* Reads hit the cache; a miss reads RocksDB (the value as of the last checkpoint) and
  caches it.
* Writes and deletes stay in memory, marked dirty, until the next checkpoint writes them
  in the task's single atomic WriteBatch. Nothing reaches RocksDB between checkpoints, so
  a crash leaves exactly the last checkpoint.
* After a checkpoint, clean entries beyond `capacity` are evicted, least recently used
  first. Dirty entries are never evicted, so memory is bounded by the capacity plus what
  changed in one checkpoint interval.

Values are JSON data (encoded with orjson), like all checkpointed state.
"""

from __future__ import annotations

from typing import Any

import orjson

from .errors import StateError
from .operator import StateWriter
from .state import TaskStore

_MISSING = object()
_DELETED = object()


class KeyedState:
    """A dict-like view of one namespace of a task's state, with a bounded write-back cache."""

    def __init__(self, store: TaskStore, namespace: str, *, capacity: int = 100_000) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.store = store
        self.namespace = namespace
        self.capacity = capacity
        self._cache: dict[bytes, Any] = {}  # insertion order = recency (a hit moves a key to the end)
        self._dirty: set[bytes] = set()
        self.hits = self.misses = self.evictions = 0

    def get(self, key: bytes, default: Any = None) -> Any:
        cache = self._cache
        value = cache.pop(key, _MISSING)
        if value is _MISSING:
            self.misses += 1
            raw = self.store.get(self.namespace, key)
            value = _DELETED if raw is None else orjson.loads(raw)
        else:
            self.hits += 1
        cache[key] = value
        return default if value is _DELETED else value

    def put(self, key: bytes, value: Any) -> None:
        self._cache.pop(key, None)
        self._cache[key] = value
        self._dirty.add(key)

    def delete(self, key: bytes) -> None:
        self.put(key, _DELETED)

    def __contains__(self, key: bytes) -> bool:
        return self.get(key, _MISSING) is not _MISSING

    @property
    def cached(self) -> int:
        return len(self._cache)

    @property
    def dirty(self) -> int:
        return len(self._dirty)

    def checkpoint(self, writer: StateWriter) -> None:
        """Write what changed since the last checkpoint, then shrink the cache to `capacity`."""
        cache = self._cache
        for key in self._dirty:
            value = cache[key]
            if value is _DELETED:
                writer.delete(key)
                continue
            try:
                raw = orjson.dumps(value)
            except TypeError as exc:
                raise StateError(
                    f"keyed state {self.namespace!r}, key {key!r}: the value is not JSON data ({exc})"
                ) from exc
            writer.put(key, raw)
        self._dirty.clear()
        excess = len(cache) - self.capacity
        if excess > 0:
            for key in list(cache)[:excess]:  # the least recently used come first
                del cache[key]
            self.evictions += excess
