"""Aggregations: ``create / add / merge / result``, each with a versioned state name.

An aggregation folds the values of one window into an accumulator:

* ``create()`` a fresh accumulator, ``add(acc, value)`` one value (returning the new
  accumulator), ``merge(a, b)`` two accumulators (session windows and panes need it),
  ``result(acc)`` the output value;
* `field` names the event field it reads; None means it receives the whole event
  (and `Count` ignores it);
* accumulators must be JSON data (numbers, strings, lists, dicts): they are
  checkpointed with orjson and can be inspected;
* `state_name` (``"sum/1"``) is stored with checkpoints: change the accumulator's
  layout and you must change its version.

Built-in aggregations on a field only accept finite numbers; anything else dead-letters
the event as ``schema``. Integer sums are exact at any magnitude (Python integers); a
float sum that overflows is infinite, and written to outputs as ``null`` (see
`streamcore.base.codec`). User-defined ones use `Aggregate`; their accumulators must be JSON
data, or the event that made one dead-letters as ``operator_error``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from streamcore.base.errors import ConfigError, SchemaError

RESERVED_OUTPUT_NAMES = frozenset({"key", "start", "end", "revision", "retracted"})


@runtime_checkable
class Aggregation(Protocol):
    @property
    def field(self) -> str | None:
        """The event field the aggregation reads (None: the whole event)."""
        ...

    @property
    def numeric(self) -> bool:
        """True if the field must hold a finite number (checked before any state changes)."""
        ...

    @property
    def state_name(self) -> str:
        """The accumulator's name and layout version, e.g. ``"sum/1"``."""
        ...

    def create(self) -> Any: ...

    def add(self, acc: Any, value: Any) -> Any: ...

    def merge(self, a: Any, b: Any) -> Any: ...

    def result(self, acc: Any) -> Any: ...


@dataclass(frozen=True, slots=True)
class Count:
    """The number of events in the window."""

    field: None = None
    numeric: bool = False
    state_name: str = "count/1"

    def create(self) -> int:
        return 0

    def add(self, acc: int, value: Any) -> int:
        return acc + 1

    def merge(self, a: int, b: int) -> int:
        return a + b

    def result(self, acc: int) -> int:
        return acc


def _needs_field(kind: str, field: Any) -> str:
    if not isinstance(field, str) or not field:
        raise ConfigError(f"{kind}.field", f"{kind} needs the name of a numeric field, e.g. {kind.title()}('amount')")
    return field


@dataclass(frozen=True, slots=True)
class Sum:
    """The sum of a numeric field."""

    field: str
    numeric: bool = True
    state_name: str = "sum/1"

    def __post_init__(self) -> None:
        _needs_field("sum", self.field)

    def create(self) -> float:
        return 0

    def add(self, acc: float, value: float) -> float:
        return acc + value

    def merge(self, a: float, b: float) -> float:
        return a + b

    def result(self, acc: float) -> float:
        return acc


@dataclass(frozen=True, slots=True)
class Min:
    """The smallest value of a numeric field."""

    field: str
    numeric: bool = True
    state_name: str = "min/1"

    def __post_init__(self) -> None:
        _needs_field("min", self.field)

    def create(self) -> float | None:
        return None

    def add(self, acc: float | None, value: float) -> float:
        return value if acc is None or value < acc else acc

    def merge(self, a: float | None, b: float | None) -> float | None:
        if a is None:
            return b
        return a if b is None or a <= b else b

    def result(self, acc: float | None) -> float | None:
        return acc


@dataclass(frozen=True, slots=True)
class Max:
    """The largest value of a numeric field."""

    field: str
    numeric: bool = True
    state_name: str = "max/1"

    def __post_init__(self) -> None:
        _needs_field("max", self.field)

    def create(self) -> float | None:
        return None

    def add(self, acc: float | None, value: float) -> float:
        return value if acc is None or value > acc else acc

    def merge(self, a: float | None, b: float | None) -> float | None:
        if a is None:
            return b
        return a if b is None or a >= b else b

    def result(self, acc: float | None) -> float | None:
        return acc


@dataclass(frozen=True, slots=True)
class Mean:
    """The arithmetic mean of a numeric field (sum / count)."""

    field: str
    numeric: bool = True
    state_name: str = "mean/1"

    def __post_init__(self) -> None:
        _needs_field("mean", self.field)

    def create(self) -> list[float]:
        return [0, 0]

    def add(self, acc: list[float], value: float) -> list[float]:
        return [acc[0] + value, acc[1] + 1]

    def merge(self, a: list[float], b: list[float]) -> list[float]:
        return [a[0] + b[0], a[1] + b[1]]

    def result(self, acc: list[float]) -> float | None:
        return mean_of(acc)


def mean_of(acc: list[float]) -> float | None:
    """sum / count; None for no values, or for an exact integer sum whose mean no float can hold."""
    if not acc[1]:
        return None
    try:
        return acc[0] / acc[1]
    except OverflowError:
        return None


@dataclass(frozen=True, slots=True)
class CountDistinct:
    """The number of distinct values of a field (strings, numbers or booleans); exact."""

    field: str
    numeric: bool = False
    state_name: str = "count_distinct/1"

    def __post_init__(self) -> None:
        if not isinstance(self.field, str) or not self.field:
            raise ConfigError("count_distinct.field", "CountDistinct needs the name of a field")

    def create(self) -> list[Any]:
        return []

    def add(self, acc: list[Any], value: Any) -> list[Any]:
        if isinstance(value, dict | list):
            raise SchemaError(f"field {self.field!r} is {type(value).__name__}; distinct values must be scalars")
        return acc if any(_same(value, v) for v in acc) else [*acc, value]

    def merge(self, a: list[Any], b: list[Any]) -> list[Any]:
        seen = {_identity(v) for v in a}
        return a + [v for v in b if _identity(v) not in seen]

    def result(self, acc: list[Any]) -> int:
        return len(acc)


def _identity(value: Any) -> tuple[bool, Any]:
    return (type(value) is bool, value)  # True and 1 are distinct values


def _same(a: Any, b: Any) -> bool:
    return _identity(a) == _identity(b)


@dataclass(frozen=True, slots=True)
class Aggregate:
    """A user-defined aggregation from four functions.

    >>> longest = Aggregate(create=lambda: "", add=lambda a, v: max(a, v, key=len),
    ...                     merge=lambda a, b: max(a, b, key=len), result=lambda a: a,
    ...                     field="merchant", name="longest")
    >>> longest.add(longest.create(), "acme")
    'acme'
    """

    create: Callable[[], Any]
    add: Callable[[Any, Any], Any]
    merge: Callable[[Any, Any], Any]
    result: Callable[[Any], Any]
    field: str | None = None
    name: str = "custom"
    version: int = 1
    numeric: bool = False

    def __post_init__(self) -> None:
        for part in ("create", "add", "merge", "result"):
            if not callable(getattr(self, part)):
                raise ConfigError(f"aggregate.{part}", f"{self.name}: {part} must be a function")

    @property
    def state_name(self) -> str:
        return f"{self.name}/{self.version}"


_BY_NAME: dict[str, Callable[..., Aggregation]] = {
    "count": Count,
    "sum": Sum,
    "min": Min,
    "max": Max,
    "mean": Mean,
    "count_distinct": CountDistinct,
}


def resolve(output: str, spec: Any) -> Aggregation:
    """An aggregation from an object or a short form: ``"count"``, ``("sum", "amount")``."""
    setting = f"aggregate.{output}"
    if output in RESERVED_OUTPUT_NAMES:
        raise ConfigError(setting, f"{output!r} is reserved for window results; choose another name")
    if isinstance(spec, Aggregation):
        return spec
    if isinstance(spec, str):
        spec = [spec]
    if not isinstance(spec, list | tuple) or not spec or not isinstance(spec[0], str):
        raise ConfigError(setting, f"expected an aggregation such as Sum('amount') or ('sum', 'amount'), got {spec!r}")
    kind, *args = spec
    factory = _BY_NAME.get(kind)
    if factory is None:
        raise ConfigError(setting, f"unknown aggregation {kind!r}; known: {', '.join(sorted(_BY_NAME))}")
    if kind == "count":
        if args:
            raise ConfigError(setting, "count takes no field")
        return factory()
    if len(args) != 1:
        raise ConfigError(setting, f"{kind} needs exactly one field, e.g. ({kind!r}, 'amount')")
    try:
        return factory(args[0])
    except ConfigError as exc:
        raise ConfigError(setting, str(exc).split(": ", 1)[-1]) from None


def resolve_all(aggregations: Mapping[str, Any]) -> dict[str, Aggregation]:
    if not aggregations:
        raise ConfigError("aggregate", "give at least one aggregation, e.g. aggregate(n=Count())")
    return {name: resolve(name, spec) for name, spec in aggregations.items()}
