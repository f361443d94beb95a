"""The online state: entity features, readable between batches, with pinned snapshots.

Feature operators keep per-entity state in an `EntityStore`; `OnlineState` ties the
stores of an app together and serves reads.

Coherence. Batches are processed synchronously on the worker's event loop, and one
event is applied to every feature of its stream before the next begins; reads run on
the same loop, only when a task yields. So a read always sees whole events. When a task
yields, the runner calls `publish`: everything applied so far becomes one *epoch*, and
the time of that moment is when those events became readable (their freshness).

Snapshots. `pin` names the current epoch. Until the snapshot expires, every read with
its id returns the state as of that epoch, while the stream moves on: the first time an
entity changes after a pin, its old state is copied aside (copy-on-write), so pinning
costs nothing until entities change, and nothing at all when no snapshot is pinned.
Snapshots expire after their TTL, or oldest first when the copies exceed the memory cap;
reading an expired snapshot is a `SnapshotExpired` error.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from streamcore.base.codec import decode_state, encode_state
from streamcore.online.reads import (
    EntityRead,
    FeatureReader,
    FeatureValue,
    NotOwned,
    Snapshot,
    SnapshotExpired,
    StreamInfo,
    UnknownView,
)
from streamcore.state.keyed import KeyedState

_NOT_UPDATING: tuple[None, bytes, None] = (None, b"", None)


class EntityStore:
    """Per-entity state of one feature view: KeyedState plus versions for pinned snapshots.

    An entity's record is ``[state, arrival_ms, partition, offset, epoch]``: its state
    (JSON data), where and when the newest event applied to it arrived, and the epoch in
    which it last changed (so a version is valid from that epoch on). Operators change
    state with ``state = get_for_update(entity)`` ... ``put(entity, state)``.
    """

    def __init__(
        self, online: OnlineState, view: str, keyed: KeyedState, stream: StreamInfo, reader: FeatureReader
    ) -> None:
        self.online = online
        self.view = view
        self.keyed = keyed
        self.stream = stream
        self.reader = reader
        self._versions: dict[bytes, list[tuple[int, Any, int]]] = {}  # key -> [(valid from, record, bytes)]
        self.stale_since_ms: float | None = None
        """When the checkpoint its reads come from was taken, while they are not current: its
        task let the partition go, or gained it and is catching up (None otherwise)."""
        self._reference_at: dict[int, Any] = {}  # pinned epoch -> the reader's reference then
        self._updating: tuple[str | None, bytes, Any] = _NOT_UPDATING
        """The entity the stream last read for update or wrote, its key and its record."""

    # -- writes (from the operator, during a batch) ------------------------------------------
    def get_for_update(self, entity: str) -> Any:
        """The entity's current state, to change and then `put` (None if it has none yet).

        If a pinned snapshot can still see this state, a copy is kept aside first.
        """
        key = entity.encode()
        record = self.keyed.get(key)
        self._updating = (entity, key, record)
        if record is None:
            return None
        online = self.online
        if online.snapshots and record[4] != online.epoch + 1:
            since = record[4]
            if any(since <= snap.epoch for snap in online.snapshots.values()):
                raw = record_json(record)  # a deep copy, exact for any value a record brought
                self._versions.setdefault(key, []).append((since, decode_state(raw), len(raw)))
                online.account_copy(len(raw))
        return record[0]

    def put(self, entity: str, state: Any) -> None:
        """Store the entity's state; the record being processed is noted as its newest event.

        Right after `get_for_update` of the same entity (the common case) its record is
        changed in place: the get already kept what a checkpoint or a snapshot needs of it.
        """
        partition, offset, arrival = self.stream.current_arrival()
        epoch = self.online.epoch + 1
        updating, key, record = self._updating
        if updating is entity and record is not None:
            record[0], record[1], record[2], record[3], record[4] = state, arrival, partition, offset, epoch
            self.keyed.changed(key)
        else:
            key, record = entity.encode(), [state, arrival, partition, offset, epoch]
            self.keyed.put(key, record)
        self._updating = (entity, key, record)

    def pinned(self, epoch: int) -> None:
        """A snapshot of `epoch` was pinned: remember the reader's reference as of now."""
        self._reference_at[epoch] = self.reader.reference()

    def forget(self, live_epochs: Iterable[int]) -> int:
        """Drop copies no live snapshot can see any more; return the bytes freed."""
        live = set(live_epochs)
        for epoch in [e for e in self._reference_at if e not in live]:
            del self._reference_at[epoch]
        freed = 0
        for key, versions in list(self._versions.items()):
            current = self.keyed.get(key)
            until = [v[0] for v in versions[1:]] + [1 << 62 if current is None else current[4]]
            kept = []
            for version, end in zip(versions, until, strict=True):
                if any(version[0] <= e < end for e in live):
                    kept.append(version)
                else:
                    freed += version[2]
            if kept:
                self._versions[key] = kept
            else:
                del self._versions[key]
        return freed

    # -- reads (between batches) ------------------------------------------------------------
    def record_as_of(self, entity: str, epoch: int | None) -> Any:
        """The entity's record now, or as of a pinned epoch (None: it had no state then)."""
        updating, _, record = self._updating
        if epoch is None and updating is entity:
            return record  # what the stream just read or wrote (a model scores the event's entity)
        key = entity.encode()
        current = self.keyed.get(key)
        if epoch is None or (current is not None and current[4] <= epoch):
            return current
        for since, record, _ in reversed(self._versions.get(key, [])):
            if since <= epoch:
                return record
        return None

    def reference_as_of(self, epoch: int | None) -> Any:
        if epoch is None:
            return self.reader.reference()
        return self._reference_at.get(epoch, self.reader.reference())


def record_json(record: list[Any]) -> bytes:
    """An `EntityStore` record's checkpoint entry (what its keyed state is encoded with): a state
    that writes its own JSON (``json_in_list``, the compiled feature kernel's) writes the
    record, in one call; any other `encode_state`."""
    write = getattr(record[0], "json_in_list", None)
    raw = None if write is None else write((record[1], record[2], record[3], record[4]))
    return encode_state(record) if raw is None else raw


@dataclass(slots=True)
class _Publish:
    epoch: int
    at_ms: float


@dataclass
class OnlineState:
    """The feature views of an app, their reads, and pinned snapshots."""

    clock_ms: Callable[[], float] = field(default=lambda: time.time_ns() / 1e6)
    snapshot_ttl_ms: int = 60_000
    snapshot_memory_bytes: int = 64 << 20
    max_snapshots: int = 10_000
    epoch: int = field(default_factory=lambda: time.time_ns() // 1_000)
    """Epochs count up from a run-unique base (µs at start), so epochs stored with entity
    records by an earlier run never look like ones of this run."""
    snapshots: dict[str, Snapshot] = field(default_factory=dict)
    views: dict[str, EntityStore] = field(default_factory=dict)
    """One store per view, for what all its stores share (stream, reader); reads use `store_for`."""
    locate: Callable[[str, str], int | None] | None = None
    """(view, entity) -> the partition that keeps it, when views are split by partition (Kafka);
    None when no worker keeps such a view."""
    _partitioned: dict[str, dict[int, EntityStore]] = field(default_factory=dict)
    copied_bytes: int = 0
    expired_by_memory: int = 0
    _publishes: deque[_Publish] = field(default_factory=lambda: deque(maxlen=200_000))
    _ids: Iterator[int] = field(default_factory=itertools.count)

    # -- registration (when tasks are built) -------------------------------------------------
    def register(
        self, view: str, keyed: KeyedState, stream: StreamInfo, reader: FeatureReader, partition: int | None = None
    ) -> EntityStore:
        """The store of `view` (of one `partition` of it, when each partition has its own task)."""
        store = EntityStore(self, view, keyed, stream, reader)
        if partition is None:
            if view in self.views:
                raise ValueError(f"feature view {view!r} is registered twice")
        else:
            stores = self._partitioned.setdefault(view, {})
            if partition in stores:
                raise ValueError(f"feature view {view!r}, partition {partition}, is registered twice")
            stores[partition] = store
        self.views.setdefault(view, store)
        return store

    def unregister(self, stream: StreamInfo) -> None:
        """A partition moved to another worker: the stores its task kept are no longer read here."""
        for view, stores in self._partitioned.items():
            for partition, store in list(stores.items()):
                if store.stream is stream:
                    del stores[partition]
                    if self.views.get(view) is store:
                        if stores:
                            self.views[view] = next(iter(stores.values()))
                        else:
                            del self.views[view]

    def mark_stale(self, stream: StreamInfo, since_ms: float | None = None) -> None:
        """Reads of `stream`'s stores are of a checkpoint taken at `since_ms` (default: now), so
        they say so: its task let the partition go, or gained it and is still catching up."""
        self._set_stale_since(stream, self.clock_ms() if since_ms is None else since_ms)

    def mark_fresh(self, stream: StreamInfo) -> None:
        """`stream`'s task has caught up with its input: its reads are current again."""
        self._set_stale_since(stream, None)

    def _set_stale_since(self, stream: StreamInfo, since_ms: float | None) -> None:
        for store in self._stores():
            if store.stream is stream:
                store.stale_since_ms = since_ms

    def views_of(self, stream: StreamInfo) -> list[str]:
        """The names of the views a stream keeps (here)."""
        return [store.view for store in self._stores() if store.stream is stream]

    def store_for(self, view: str, entity: str) -> EntityStore:
        """The store that keeps `entity` in `view`."""
        if self.locate is None:
            store = self.views.get(view)
            if store is None:
                raise UnknownView(f"no feature view {view!r}; known: {sorted(self.views)}")
            return store
        partition = self.locate(view, entity)
        if partition is None:
            raise UnknownView(f"no feature view {view!r} is kept by any worker")
        store = self._partitioned.get(view, {}).get(partition)
        if store is None:
            message = f"entity {entity!r} of view {view!r} is in partition {partition}, not assigned here"
            raise NotOwned(message, view, partition)
        return store

    def _stores(self) -> Iterator[EntityStore]:
        for view, store in self.views.items():
            stores = self._partitioned.get(view)
            if stores is None:
                yield store
            else:
                yield from stores.values()

    def _positions(self) -> dict[str, dict[int, int]]:
        positions: dict[str, dict[int, int]] = {}
        for store in self._stores():
            positions.setdefault(store.stream.name, {}).update(store.stream.positions())
        return positions

    # -- epochs --------------------------------------------------------------------------------
    def publish(self) -> float:
        """Everything applied so far becomes readable now (the runner calls this when it yields).

        Returns the time of publication (epoch ms).
        """
        self.epoch += 1
        now = self.clock_ms()
        self._publishes.append(_Publish(self.epoch, now))
        if self.snapshots:
            self._expire(now)
        return now

    def published_at(self, epoch: int) -> float | None:
        """When `epoch` became readable (None if that is too long ago to remember)."""
        publishes = self._publishes
        if not publishes or epoch < publishes[0].epoch or epoch > publishes[-1].epoch:
            return None
        return publishes[epoch - publishes[0].epoch].at_ms

    # -- snapshots -------------------------------------------------------------------------------
    def pin(self, ttl_ms: int | None = None) -> Snapshot:
        now = self.clock_ms()
        self._expire(now)
        if len(self.snapshots) >= self.max_snapshots:
            self._drop(min(self.snapshots.values(), key=lambda s: s.created_ms).id)
        ttl = self.snapshot_ttl_ms if ttl_ms is None else ttl_ms
        snapshot = Snapshot(
            id=f"s{next(self._ids)}-{secrets.token_hex(4)}",
            epoch=self.epoch,
            created_ms=int(now),
            expires_ms=int(now + ttl),
            positions=self._positions(),
        )
        self.snapshots[snapshot.id] = snapshot
        for store in self._stores():
            store.pinned(snapshot.epoch)
        return snapshot

    def snapshot(self, snapshot_id: str) -> Snapshot:
        self._expire(self.clock_ms())
        found = self.snapshots.get(snapshot_id)
        if found is None:
            raise SnapshotExpired(f"snapshot {snapshot_id!r} does not exist or has expired")
        return found

    def release(self, snapshot_id: str) -> None:
        self.snapshot(snapshot_id)
        self._drop(snapshot_id)

    def account_copy(self, size: int) -> None:
        self.copied_bytes += size
        while self.copied_bytes > self.snapshot_memory_bytes and self.snapshots:
            oldest = min(self.snapshots.values(), key=lambda s: s.created_ms)
            self.expired_by_memory += 1
            self._drop(oldest.id)

    def _expire(self, now: float) -> None:
        for snap in [s for s in self.snapshots.values() if s.expires_ms <= now]:
            self._drop(snap.id)

    def _drop(self, snapshot_id: str) -> None:
        self.snapshots.pop(snapshot_id, None)
        live = [s.epoch for s in self.snapshots.values()]
        for store in self._stores():
            self.copied_bytes -= store.forget(live)

    # -- reads -------------------------------------------------------------------------------
    def read(self, view: str, entity: str, snapshot_id: str | None = None) -> EntityRead:
        """All features of `entity` in `view`, now or as of a pinned snapshot."""
        store = self.store_for(view, entity)
        snapshot = None if snapshot_id is None else self.snapshot(snapshot_id)
        epoch = None if snapshot is None else snapshot.epoch
        record = store.record_as_of(entity, epoch)
        reference = store.reference_as_of(epoch)
        state = None if record is None else record[0]
        values = store.reader.compute(state, reference)
        now = self.clock_ms() if snapshot is None else float(snapshot.created_ms)
        freshness = age = None
        if record is not None:
            arrival = record[1]
            readable = self.published_at(record[4])
            freshness = None if readable is None else max(0.0, readable - arrival)
            age = max(0.0, now - arrival)
        features = {name: FeatureValue(value, freshness, age) for name, value in values.items()}
        positions = store.stream.positions() if snapshot is None else snapshot.positions.get(store.stream.name, {})
        watermark = store.stream.watermark()
        lag = None if watermark in (float("inf"), float("-inf")) else max(0.0, self.clock_ms() - watermark)
        return EntityRead(
            view,
            entity,
            record is not None,
            features,
            store.stream.name,
            dict(positions),
            lag,
            None if snapshot is None else snapshot.id,
            None if store.stale_since_ms is None else max(0.0, self.clock_ms() - store.stale_since_ms),
        )
