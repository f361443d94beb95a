"""Feature views: per-entity features kept current by the stream and read online.

    card = FeatureView("card", entity="card", features={
        "txn_1m": Rolling(Count(), over="1m"),
        "merchants_5m": Rolling(CountDistinct("merchant"), over="5m"),
        "spend_60m": Rolling(Sum("amount"), over="60m"),
        "last_amount": Latest("amount"),
    })
    app.stream(transactions, event_time=...).key_by("card").features(card).to(decisions)

* `Rolling(aggregation, over)`: the aggregation over the events of the entity in the
  last `over` of event time, kept in panes of `pane` (default ``over / 12``). A read at
  event time T (the newest event time the view has applied) combines the panes that
  overlap ``(T - over, T]``, so every event processed so far is reflected, and the
  window's old edge is exact to one pane.
* `Latest(field)`: the field's value in the entity's newest event (by event time).

Features from window results: put a view after ``.window(...).aggregate(...)`` and keep
`Latest` of the result fields. Each event is validated for every feature first, then
applied to all of them, then passed on downstream unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, cast

import orjson

from streamcore.base import kernels
from streamcore.base.durations import Duration, to_ms
from streamcore.base.errors import ConfigError, SchemaError
from streamcore.dataflow.operator import Operator, OperatorContext, admit_any
from streamcore.online.views import EntityStore
from streamcore.state.writer import StateWriter

from .aggregations import Aggregation, Count, CountDistinct, Max, Mean, Min, Sum, resolve
from .feature_schemas import schema_of

_kernel: Any = kernels.load("streamcore.operators._feature_kernel", "feature views")
_KIND_NAMES = {Count: "count", Sum: "sum", Min: "min", Max: "max", Mean: "mean", CountDistinct: "count_distinct"}

MAX_PANES = 3_600
_NOW_KEY = b"now"  # the operator's own state: the event time reads are as of
_ABSENT = object()  # an optional field the event does not have
_OUT_OF_WINDOW = object()  # an event older than a rolling feature's window: that feature skips it


@dataclass(frozen=True, slots=True)
class Rolling:
    """An aggregation over the last `over` of event time, kept in panes of `pane`.

    More panes make the window's old edge more exact and the entity's state larger (it is
    checkpointed whenever the entity changes): about a dozen is a good default.
    """

    aggregation: Any
    over: Duration
    pane: Duration | None = None

    def window_ms(self, setting: str) -> tuple[int, int]:
        over = to_ms(self.over, f"{setting}.over", allow_zero=False)
        pane = to_ms(self.pane, f"{setting}.pane", allow_zero=False) if self.pane is not None else max(1, over // 12)
        if over % pane:
            raise ConfigError(f"{setting}.pane", f"must divide over evenly ({over} ms is not a multiple of {pane} ms)")
        if over // pane > MAX_PANES:
            raise ConfigError(f"{setting}.pane", f"over / pane must be at most {MAX_PANES} (got {over // pane})")
        return over, pane


@dataclass(frozen=True, slots=True)
class Latest:
    """The value of `field` in the entity's newest event."""

    field: str
    type: type | None = None
    """If set, values must be of this type (else the event is dead-lettered as schema)."""
    required: bool = True
    """False: an event without the field leaves the feature as it was (mixed event types)."""

    def __post_init__(self) -> None:
        if not isinstance(self.field, str) or not self.field:
            raise ConfigError("latest.field", "Latest needs the name of a field")


@dataclass(frozen=True, slots=True)
class _RollingPlan:
    name: str
    aggregation: Aggregation
    over: int
    pane: int


@dataclass(frozen=True, slots=True)
class _LatestPlan:
    name: str
    field: str
    type: type | None
    required: bool


Plan = _RollingPlan | _LatestPlan


@dataclass(frozen=True, slots=True)
class FeatureView:
    """A named set of per-entity features, maintained by one stream and served online."""

    name: str
    entity: str
    features: Mapping[str, Rolling | Latest]
    capacity: int = 100_000
    """Entities kept in memory between checkpoints (the rest are read back from RocksDB)."""
    state_version: int = 1
    description: str = ""
    """What the view is about, for those who read it (e.g. the MCP tools of ``--mcp``)."""
    needs_event_time: bool = field(default=True, init=False)

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ConfigError("view.name", "a feature view needs a name")
        if not self.entity or not isinstance(self.entity, str):
            raise ConfigError("view.entity", "a feature view needs the name of its entity key")
        if not self.features:
            raise ConfigError("view.features", f"feature view {self.name!r} has no features")
        self.plans()  # validate eagerly: errors name the setting when the job is built

    def checker(self) -> Callable[[Any], None]:
        """Raises `SchemaError` for an event a feature of the view cannot read."""
        plans, _ = self.plans()  # once, not per event

        def check(event: Any) -> None:
            for plan in plans:
                FeatureOperator._extract(plan, event)

        return check

    def feature_schemas(self) -> dict[str, dict[str, Any]]:
        """Per feature, the JSON Schema of its value with a description (`feature_schemas`)."""
        return {plan.name: schema_of(plan) for plan in self.plans()[0]}

    def plans(self) -> tuple[list[Plan], tuple[str, ...]]:
        plans: list[Plan] = []
        for name, spec in self.features.items():
            setting = f"features.{name}"
            if isinstance(spec, Rolling):
                over, pane = spec.window_ms(setting)
                plans.append(_RollingPlan(name, resolve(name, spec.aggregation), over, pane))
            elif isinstance(spec, Latest):
                plans.append(_LatestPlan(name, spec.field, spec.type, spec.required))
            else:
                raise ConfigError(setting, f"expected Rolling(...) or Latest(...), got {spec!r}")
        return plans, tuple(self.features)

    def as_of(self, events: Iterable[tuple[Any, int]], at: int) -> dict[str, Any]:
        """One entity's features as a read at event time `at` gives them, from its events
        ``(event, ts)`` in arrival order, counting only those stamped at or before `at`
        (point in time: nothing later leaks in). For training data (`streamcore backfill`)."""
        plans, _ = self.plans()
        state = _empty_state(plans)
        now = -math.inf
        for event, ts in events:
            if ts > at:
                continue
            values = [FeatureOperator._extract(plan, event) for plan in plans]
            now = max(now, ts)
            _apply(plans, state, values, _accumulators(plans, state, values, ts, now), ts, now)
        return _compute(plans, state, at, None)

    def build(self, context: OperatorContext) -> Operator:
        """The compiled operator where the kernel is built and covers the view, else the reference."""
        kinds = _kernel_kinds(self.plans()[0])
        if kinds is not None:
            return CompiledFeatureOperator(self, context, kinds)
        return FeatureOperator(self, context)


class FeatureOperator:
    """Keeps a `FeatureView` current; its entity state is ``[feature state, ...]``.

    A rolling feature's state is a list of ``[pane start, accumulator]`` in start order;
    a latest feature's is ``[event time, value]`` or None.
    """

    def __init__(self, view: FeatureView, context: OperatorContext) -> None:
        self.view = view
        self.emit = context.emit
        self.admit = context.admit
        self.plans, self.feature_names = view.plans()
        self.now: float = -math.inf  # the newest event time applied: reads are "as of" it
        self.store: EntityStore = context.entity_store(view.name, self, capacity=view.capacity)

    # -- per event ----------------------------------------------------------------------------
    def process(self, key: str, event: Any, ts: int) -> Any:
        """Apply the event to every feature of `key`, all of them or (if anything raises) none."""
        return self.process_state(key, event, ts, self._as_lists(self.store.get_for_update(key)))

    def process_state(self, key: str, event: Any, ts: int, state: list[Any] | None) -> Any:
        """`process`, given the entity's current `state` (as lists; None if it has none)."""
        values = [self._extract(plan, event) for plan in self.plans]
        now = ts if ts > self.now else self.now
        store = self.store
        if state is None:
            state = _empty_state(self.plans)
        added = _accumulators(self.plans, state, values, ts, now)
        self.admit(ts)
        self.now = now
        _apply(self.plans, state, values, added, ts, now)
        store.put(key, state)
        return self.emit(key, event, ts)

    @staticmethod
    def _extract(plan: Plan, event: Any) -> Any:
        if isinstance(plan, _LatestPlan):
            try:
                value = event[plan.field]
            except (KeyError, TypeError, IndexError):
                if not plan.required:
                    return _ABSENT
                raise SchemaError(f"field {plan.field!r} is missing") from None
            if plan.type is not None and not isinstance(value, plan.type):
                raise SchemaError(f"field {plan.field!r} is {value!r}, expected {plan.type.__name__}")
            return value
        agg = plan.aggregation
        if agg.field is None:
            return event
        try:
            value = event[agg.field]
        except (KeyError, TypeError, IndexError):
            raise SchemaError(f"field {agg.field!r} (feature {plan.name!r}) is missing") from None
        if agg.numeric and not (type(value) is int or (type(value) is float and math.isfinite(value))):
            raise SchemaError(f"field {agg.field!r} (feature {plan.name!r}) is {value!r}, not a finite number")
        if isinstance(agg, CountDistinct) and isinstance(value, dict | list):
            raise SchemaError(
                f"field {agg.field!r} (feature {plan.name!r}) is {type(value).__name__}, not a scalar to count"
            )
        return value

    @staticmethod
    def _as_lists(state: Any) -> Any:
        """An entity's state in the reference's layout (the compiled kernel keeps its own)."""
        return state

    # -- reads (FeatureReader) -----------------------------------------------------------------
    def reference(self) -> float:
        return self.now

    def compute(self, state: Any, reference: Any, names: Iterable[str] | None = None) -> dict[str, Any]:
        return _compute(self.plans, state, reference, names)

    # -- the operator protocol ------------------------------------------------------------------
    def on_watermark(self, watermark: float) -> None:
        return None

    def on_end_of_input(self) -> None:
        return None

    def restore(self, entries: Iterable[tuple[bytes, bytes]]) -> None:
        """Reads after a restart are as of the same moment as before it (entities load lazily)."""
        for key, value in entries:
            if key == _NOW_KEY:
                self.now = orjson.loads(value)

    def checkpoint(self, writer: StateWriter) -> None:
        """The newest event time applied; the runtime checkpoints the entity store itself."""
        if self.now != -math.inf:
            writer.put(_NOW_KEY, orjson.dumps(self.now))

    def state_entries(self) -> int:
        return self.store.keyed.cached


def _empty_state(plans: list[Plan]) -> list[Any]:
    return [[] if isinstance(plan, _RollingPlan) else None for plan in plans]


def _accumulators(plans: list[Plan], state: list[Any], values: list[Any], ts: int, now: float) -> list[Any]:
    """Every rolling feature's new accumulator (`_added`), before anything changes: one that
    raises leaves the state as it was."""
    return [
        _added(state[i], plan, ts, value, now) if isinstance(plan, _RollingPlan) else None
        for i, (plan, value) in enumerate(zip(plans, values, strict=True))
    ]


def _apply(plans: list[Plan], state: list[Any], values: list[Any], added: list[Any], ts: int, now: float) -> None:
    """Put the event's values (and the accumulators from `_accumulators`) into an entity's state."""
    for i, (plan, value) in enumerate(zip(plans, values, strict=True)):
        if isinstance(plan, _RollingPlan):
            _store_pane(state[i], plan, ts, added[i], now)
        elif value is not _ABSENT and (state[i] is None or ts >= state[i][0]):
            state[i] = [ts, value]


def _compute(plans: list[Plan], state: Any, reference: Any, names: Iterable[str] | None) -> dict[str, Any]:
    """Each feature's value (or those in `names`) as of `reference`, from an entity's state."""
    out: dict[str, Any] = {}
    wanted = None if names is None else set(names)
    for i, plan in enumerate(plans):
        if wanted is not None and plan.name not in wanted:
            continue
        if isinstance(plan, _RollingPlan):
            agg = plan.aggregation
            acc = agg.create()
            oldest = reference - plan.over  # panes ending after this overlap (T - over, T]
            for start, pane_acc in [] if state is None else state[i]:
                if start + plan.pane > oldest and start <= reference:
                    acc = agg.merge(acc, pane_acc)
            out[plan.name] = agg.result(acc)
        else:
            out[plan.name] = None if state is None or state[i] is None else state[i][1]
    return out


class CompiledFeatureOperator(FeatureOperator):
    """A `FeatureOperator` whose per-event update and reads run in the compiled kernel.

    The kernel keeps entities flat (`FlatEntity`), which checkpoint as the reference's
    lists; whatever it does not read itself (an event that is not a plain dict of the
    view's fields, say) it hands to the reference methods of this same operator, with the
    entity as lists, so the two take turns on one state and one `now`.
    """

    @staticmethod
    def _as_lists(state: Any) -> Any:
        return _kernel.as_lists(state)

    def __init__(self, view: FeatureView, context: OperatorContext, kinds: list[int]) -> None:
        """`kinds`: each plan's kind in the kernel (`_kernel_kinds`), which covers them all."""
        plans, _ = view.plans()
        self._kernel = _kernel.FeatureKernel(
            kinds,
            [plan.over if isinstance(plan, _RollingPlan) else 0 for plan in plans],
            [plan.pane if isinstance(plan, _RollingPlan) else 1 for plan in plans],
            tuple(plan.name for plan in plans),
            tuple(plan.field if isinstance(plan, _LatestPlan) else plan.aggregation.field for plan in plans),
            tuple(plan.type if isinstance(plan, _LatestPlan) else None for plan in plans),
        )
        super().__init__(view, context)
        reference = FeatureOperator  # what the kernel hands to the reference: process, process_state, compute
        fallbacks = [
            partial(method, self) for method in (reference.process, reference.process_state, reference.compute)
        ]
        self._kernel.bind(self.store, self.emit, self.admit, context.admit is not admit_any, *fallbacks)
        self.process = self._kernel.process  # type: ignore[method-assign]
        self.compute = self._kernel.compute  # type: ignore[method-assign]
        self.reference = self._kernel.reference  # type: ignore[method-assign]

    @property
    def now(self) -> float:
        return cast(float, self._kernel.now)

    @now.setter
    def now(self, value: float) -> None:
        self._kernel.now = value


def _kernel_kinds(plans: list[Plan]) -> list[int] | None:
    """Each plan's kind code in the kernel, or None if the kernel does not cover them all."""
    if _kernel is None or len(plans) > _kernel.MAX_FEATURE_COUNT:
        return None
    names = ["latest" if isinstance(plan, _LatestPlan) else _KIND_NAMES.get(type(plan.aggregation)) for plan in plans]
    if None in names or any(isinstance(plan, _RollingPlan) and plan.over > _kernel.MAX_SPAN_MS for plan in plans):
        return None
    return [_kernel.KINDS[name] for name in names]


def _added(panes: list[list[Any]], plan: _RollingPlan, ts: int, value: Any, now: float) -> Any:
    """The accumulator of the pane of `ts` once `value` is in it, or `_OUT_OF_WINDOW`."""
    start = ts - ts % plan.pane
    if start + plan.pane <= now - plan.over:
        return _OUT_OF_WINDOW  # it could never be read
    agg = plan.aggregation
    for pane_start, acc in reversed(panes):
        if pane_start == start:
            return agg.add(acc, value)
        if pane_start < start:
            break
    return agg.add(agg.create(), value)


def _store_pane(panes: list[list[Any]], plan: _RollingPlan, ts: int, acc: Any, now: float) -> None:
    """Drop the panes that left the window of `now`, and put `acc` (from `_added`) in the pane of `ts`."""
    oldest = now - plan.over
    while panes and panes[0][0] + plan.pane <= oldest:
        del panes[0]
    if acc is _OUT_OF_WINDOW:
        return
    start = ts - ts % plan.pane
    i = len(panes)
    while i and panes[i - 1][0] > start:
        i -= 1
    if i and panes[i - 1][0] == start:
        panes[i - 1][1] = acc
    else:
        panes.insert(i, [start, acc])
