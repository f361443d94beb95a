"""Per-key operator state larger than memory: a write-back cache over the task's RocksDB.

    counts = context.keyed_state("counts")
    counts.put(b"card-42", counts.get(b"card-42", 0) + 1)

* Reads hit the cache; a miss reads RocksDB (the value as of the last checkpoint) and
  caches it.
* Writes and deletes stay in memory, marked dirty, until the next checkpoint writes them
  in the task's single atomic WriteBatch. Nothing reaches RocksDB between checkpoints, so
  a crash leaves exactly the last checkpoint.
* After a checkpoint, clean entries beyond `capacity` are evicted, least recently used
  first (recency counts from when the cache is half full; before that, insertion order).
  Dirty entries are never evicted, so memory is bounded by the capacity plus what
  changed in one checkpoint interval.
* A checkpoint can be taken in steps while the stream goes on (`begin_checkpoint`,
  `encode_some`, `write_encoded`, `end_checkpoint`): the cut is taken at once, entries
  are encoded a few at a time, and an entry about to be read for change or replaced is
  encoded first (copy-on-write), so the checkpoint holds exactly the state of its cut.

Values are JSON data, like all checkpointed state (`streamcore.base.codec`: exact for any
value a record can carry, such as integers beyond 64 bits).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamcore.base.codec import decode_state, encode_state
from streamcore.base.errors import StateError
from streamcore.state.store import TaskStore
from streamcore.state.writer import StateWriter

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
        self._read = store.getter(namespace)
        self._encode_value: Callable[[Any], bytes] = encode_state
        self._cache: dict[bytes, Any] = {}  # insertion order = recency (a hit moves a key to the end)
        self._track_recency_from = capacity // 2
        """Below this many entries a hit leaves a key where it is: nothing is evicted before the
        cache holds more than `capacity`, and every key used from half full on is moved after
        those used before (two dict operations per access saved while the cache fills)."""
        self._dirty: dict[bytes, None] = {}  # a dict, not a set: in the order keys first changed
        self._pending: dict[bytes, None] = {}  # in the checkpoint being taken, not encoded yet
        self._writer: StateWriter | None = None  # where the checkpoint being taken goes
        self.hits = self.misses = self.evictions = 0

    def get(self, key: bytes, default: Any = None) -> Any:
        if self._pending and key in self._pending:
            self._capture(key)  # the caller may change the value it gets
        cache = self._cache
        if len(cache) > self._track_recency_from:
            value = cache.pop(key, _MISSING)
            if value is not _MISSING:
                cache[key] = value  # the most recently used, last
        else:
            value = cache.get(key, _MISSING)
        if value is _MISSING:
            self.misses += 1
            raw = self._read(key)
            value = cache[key] = _DELETED if raw is None else decode_state(raw)
        else:
            self.hits += 1
        return default if value is _DELETED else value

    def put(self, key: bytes, value: Any) -> None:
        if self._pending and key in self._pending:
            self._capture(key)
        cache = self._cache
        if len(cache) > self._track_recency_from:
            cache.pop(key, None)
        cache[key] = value
        self._dirty[key] = None

    def encode_with(self, encode: Callable[[Any], bytes]) -> None:
        """Checkpoint values with `encode` (of the values this state holds: `encode_state`'s
        bytes, or bytes `decode_state` reads back as equal JSON data) instead of `encode_state`."""
        self._encode_value = encode

    def changed(self, key: bytes) -> None:
        """The value `get` just returned for `key` was changed in place: it is written at the
        next checkpoint (call it before anything else touches the state: `get` already
        kept what a checkpoint being taken needs)."""
        self._dirty[key] = None

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
        self.begin_checkpoint(writer)
        self.encode_some(len(self._pending))
        self.end_checkpoint()

    # -- a checkpoint in steps ---------------------------------------------------------------
    def begin_checkpoint(self, writer: StateWriter) -> None:
        """The cut: everything changed until now belongs to this checkpoint (O(1)).

        Its entries are encoded into `writer` (the checkpoint's write batch) by `encode_some`.
        """
        self._pending, self._dirty = self._dirty, {}
        self._writer = writer

    def encode_some(self, limit: int) -> bool:
        """Encode up to `limit` entries into the checkpoint; True when all are encoded."""
        pending = self._pending
        for _ in range(min(limit, len(pending))):
            self._encode(pending.popitem()[0])  # newest first: entries made in a row sit in memory in a row
        return not pending

    def end_checkpoint(self) -> None:
        """The checkpoint is written: clean entries beyond the capacity may go."""
        self._writer = None
        cache = self._cache
        excess = len(cache) - self.capacity
        if excess > 0:
            evictable = [k for k in cache if k not in self._dirty][:excess]  # least recently used first
            for key in evictable:
                del cache[key]
            self.evictions += len(evictable)

    def _capture(self, key: bytes) -> None:
        self._pending.pop(key, None)
        self._encode(key)

    def _encode(self, key: bytes) -> None:
        writer = self._writer
        assert writer is not None, "encode outside a checkpoint"
        value = self._cache[key]
        if value is _DELETED:
            writer.delete(key)
            return
        try:
            writer.put(key, self._encode_value(value))
        except TypeError as exc:
            raise StateError(
                f"keyed state {self.namespace!r}, key {key!r}: the value is not JSON data ({exc})"
            ) from exc
