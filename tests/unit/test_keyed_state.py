"""KeyedState: a bounded write-back cache that only ever persists checkpoints."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from helpers import produce, run
from hypothesis import given, settings
from hypothesis import strategies as st

from streamcore import App, Operator, OperatorContext, StateError, StateWriter
from streamcore.io.log import EmbeddedLog
from streamcore.state.keyed import KeyedState
from streamcore.state.store import TaskStore


def commit(store: TaskStore, state: KeyedState) -> None:
    store.commit({state.namespace: state.checkpoint}, {"id": 1})


ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.integers(0, 30), st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5)),
        st.tuples(st.just("delete"), st.integers(0, 30), st.none()),
        st.tuples(st.just("get"), st.integers(0, 30), st.none()),
        st.tuples(st.just("checkpoint"), st.none(), st.none()),
        st.tuples(st.just("crash"), st.none(), st.none()),
    ),
    max_size=80,
)


@settings(max_examples=60, deadline=None)
@given(operations=ops, capacity=st.sampled_from([1, 3, 50]))
def test_behaves_like_a_dict_that_survives_only_checkpoints(
    operations: list[tuple[str, Any, Any]], capacity: int, tmp_path_factory: Any
) -> None:
    path = tmp_path_factory.mktemp("ks") / "db"
    store = TaskStore(path, sync=False)
    state = KeyedState(store, "op@v1/counts", capacity=capacity)
    live: dict[bytes, Any] = {}
    durable: dict[bytes, Any] = {}
    for op, k, v in operations:
        key = str(k).encode() if k is not None else b""
        if op == "put":
            state.put(key, v)
            live[key] = v
        elif op == "delete":
            state.delete(key)
            live.pop(key, None)
        elif op == "get":
            assert state.get(key) == live.get(key)
        elif op == "checkpoint":
            commit(store, state)
            durable = dict(live)
            assert state.cached <= capacity
        else:  # a crash: nothing since the last checkpoint survives
            store.close()
            store = TaskStore(path, sync=False)
            state = KeyedState(store, "op@v1/counts", capacity=capacity)
            live = dict(durable)
    for k in range(31):
        assert state.get(str(k).encode()) == live.get(str(k).encode())
    store.close()


def test_a_value_that_is_not_json_data_is_a_clear_error(tmp_path: Path) -> None:
    store = TaskStore(tmp_path / "db")
    state = KeyedState(store, "op@v1/things", capacity=5)
    state.put(b"k", {1, 2})
    with pytest.raises(StateError, match="'op@v1/things', key b'k': the value is not JSON data"):
        commit(store, state)
    store.close()


def test_dirty_entries_are_never_evicted_before_a_checkpoint(tmp_path: Path) -> None:
    store = TaskStore(tmp_path / "db")
    state = KeyedState(store, "ns", capacity=2)
    for i in range(10):
        state.put(b"%d" % i, i)
    assert state.cached == 10 and state.dirty == 10
    commit(store, state)
    assert state.cached == 2 and state.dirty == 0 and state.evictions == 8
    assert state.get(b"0") == 0 and state.misses == 1  # read back from RocksDB
    store.close()


def test_the_least_recently_used_entries_go_first_once_the_cache_is_half_full(tmp_path: Path) -> None:
    store = TaskStore(tmp_path / "db")
    state = KeyedState(store, "ns", capacity=4)
    for key in (b"a", b"b"):  # below half full: no recency kept, nothing could be evicted yet
        state.put(key, 1)
    state.get(b"a")
    for key in (b"c", b"d"):
        state.put(key, 1)
    commit(store, state)
    state.get(b"a")  # from half full on, a use moves a key after the others
    state.get(b"c")
    state.put(b"e", 1)
    state.put(b"f", 1)
    commit(store, state)  # 6 entries, capacity 4: the two least recently used go
    assert state.evictions == 2
    state.hits = state.misses = 0
    for key in (b"a", b"c", b"e", b"f"):
        state.get(key)
    assert state.misses == 0
    assert state.get(b"b") == 1 and state.get(b"d") == 1 and state.misses == 2  # read back from RocksDB
    store.close()


@dataclass(frozen=True)
class RunningCountSpec:
    """A user-defined stateful operator: per-key running count, emitted on every event."""

    name: str = "running-count"
    state_version: int = 1
    needs_event_time: bool = False

    def build(self, context: OperatorContext) -> Operator:
        return RunningCount(context)

    def checker(self) -> Callable[[Any], None]:
        return lambda event: None


@dataclass
class RunningCount:
    context: OperatorContext
    counts: KeyedState = field(init=False)

    def __post_init__(self) -> None:
        self.counts = self.context.keyed_state("counts", capacity=2)

    def process(self, key: Any, value: Any, ts: int) -> Any:
        n = self.counts.get(key.encode(), 0) + 1
        self.counts.put(key.encode(), n)
        return self.context.emit(key, {"key": key, "count": n}, ts)

    def on_watermark(self, watermark: float) -> None:
        return None

    def on_end_of_input(self) -> None:
        return None

    def restore(self, entries: Iterable[tuple[bytes, bytes]]) -> None:
        return None  # keyed state is read lazily

    def checkpoint(self, writer: StateWriter) -> None:
        return None  # the runtime checkpoints keyed state itself

    def state_entries(self) -> int:
        return self.counts.cached


def counting_app() -> App:
    app = App("counting")
    app.stream(app.topic("in")).key_by("k").process(RunningCountSpec()).to(app.topic("counts"))
    return app


def test_a_user_operator_with_keyed_state_resumes_exactly(tmp_path: Path) -> None:
    produce(tmp_path, "in", [{"k": f"k{i % 5}"} for i in range(50)])
    run(counting_app(), tmp_path)
    produce(tmp_path, "in", [{"k": f"k{i % 5}"} for i in range(50)])
    run(counting_app(), tmp_path)
    final: dict[str, int] = {}
    for record in EmbeddedLog(tmp_path / "log").read_all("counts"):
        value = orjson.loads(record.value)
        final[value["key"]] = value["count"]
    assert final == {f"k{i}": 20 for i in range(5)}  # 100 events over 5 keys, each counted once
