"""Fused built-in aggregations: one generated function instead of one call per aggregation.

For a window whose aggregations are all built-in (`Count`, `Sum`, `Min`, `Max`,
`Mean`), this module writes three small Python functions at build time, the way
`dataclasses` and `namedtuple` do:

* ``extract(event)`` reads each distinct field once, checks it is a finite number, and
  returns the values (raising `SchemaError` before any state changes);
* ``add(accs, values)`` folds them into the accumulator list in place and returns it
  (it cannot fail once ``extract`` succeeded, so in-place is still all-or-nothing);
* ``create()`` returns a fresh accumulator list;
* ``results(out, accs)`` writes each aggregation's result into the output dict.

The accumulator layout is exactly the generic one (``[agg.create(), ...]`` folded with
``agg.add``), so checkpoints do not depend on which path wrote them, and the generic
path in `window_base` stays the reference: ``tests/unit/test_aggregations.py`` checks
that both give the same accumulators. The generated source is kept in ``__source__``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from streamcore.base.errors import SchemaError

from .aggregations import Aggregation, Count, Max, Mean, Min, Sum, mean_of

_BUILTIN = (Count, Sum, Min, Max, Mean)


@dataclass(frozen=True, slots=True)
class FusedAggregations:
    extract: Callable[[Any], Any]
    add: Callable[[list[Any], Any], list[Any]]
    create: Callable[[], list[Any]]
    results: Callable[[dict[str, Any], list[Any]], None]
    source: str
    extract_lines: tuple[str, ...]
    """Statements (indented one level) that bind v0, v1, ... from ``event`` or raise."""
    add_lines: tuple[str, ...]
    """Statements (indented one level) that fold v0, v1, ... into ``accs`` in place."""
    create_expr: str
    namespace: dict[str, Any]
    """What the generated code refers to (add it to the globals of code built from the lines)."""

    def inline(self, part: str, indent: int) -> str:
        """`extract_lines` or `add_lines` re-indented to `indent` levels, for a code template."""
        lines = self.extract_lines if part == "extract" else self.add_lines
        return "\n".join("    " * (indent - 1) + line for line in lines)


def _schema_error(event: Any, fields: Sequence[str], owners: Sequence[str]) -> SchemaError:
    for field, owner in zip(fields, owners, strict=True):
        try:
            value = event[field]
        except (KeyError, TypeError, IndexError):
            return SchemaError(f"field {field!r} (aggregation {owner!r}) is missing")
        kind = type(value)
        if not (kind is int or (kind is float and value - value == 0.0)):
            return SchemaError(f"field {field!r} (aggregation {owner!r}) is {value!r}, not a finite number")
    return SchemaError("invalid event")  # pragma: no cover - only called when a check failed


def enabled() -> bool:
    """Fusion is on unless ``STREAMCORE_GENERIC_AGGREGATIONS=1`` asks for the reference path."""
    return os.environ.get("STREAMCORE_GENERIC_AGGREGATIONS", "") not in ("1", "true", "yes")


def fuse(names: Sequence[str], aggregations: Sequence[Aggregation]) -> FusedAggregations | None:
    """Generated functions for `aggregations`, or None if any of them is not built-in."""
    if not enabled() or not all(type(a) in _BUILTIN for a in aggregations):
        return None
    fields: list[str] = []
    owners: list[str] = []
    for name, agg in zip(names, aggregations, strict=True):
        if agg.field is not None and agg.field not in fields:
            fields.append(agg.field)
            owners.append(name)
    var = {f: f"v{i}" for i, f in enumerate(fields)}

    values = ", ".join(var.values()) or "None"
    extract_body: list[str] = []
    if fields:
        extract_body.append("    try:")
        extract_body.extend(f"        {var[f]} = event[{f!r}]" for f in fields)
        extract_body.append("    except (KeyError, TypeError, IndexError):")
        extract_body.append("        raise _schema_error(event, FIELDS, OWNERS) from None")
        checks = " or ".join(
            f"not (type({v}) is int or (type({v}) is float and {v} - {v} == 0.0))" for v in var.values()
        )
        extract_body.append(f"    if {checks}:")
        extract_body.append("        raise _schema_error(event, FIELDS, OWNERS)")

    add_body: list[str] = []
    create: list[str] = []
    results = ["def results(out, accs):"]
    for name, agg in zip(names, aggregations, strict=True):
        i = len(create)
        if isinstance(agg, Mean):
            results.append(f"    out[{name!r}] = mean_of(accs[{i}])")
        else:
            results.append(f"    out[{name!r}] = accs[{i}]")
        v = var.get(agg.field) if agg.field is not None else None
        if isinstance(agg, Count):
            add_body.append(f"    accs[{i}] += 1")
            create.append("0")
        elif isinstance(agg, Sum):
            add_body.append(f"    accs[{i}] += {v}")
            create.append("0")
        elif isinstance(agg, Min | Max):
            op = "<" if isinstance(agg, Min) else ">"
            add_body.append(f"    a = accs[{i}]")
            add_body.append(f"    if a is None or {v} {op} a:")
            add_body.append(f"        accs[{i}] = {v}")
            create.append("None")
        else:  # Mean: [sum, count]
            add_body.append(f"    m = accs[{i}]")
            add_body.append(f"    m[0] += {v}")
            add_body.append("    m[1] += 1")
            create.append("[0, 0]")
    create_expr = f"[{', '.join(create)}]"
    source = "\n".join(
        [
            "def extract(event):",
            *extract_body,
            f"    return {values}",
            "",
            "def add(accs, values):",
            f"    {values} = values" if fields else "    pass",
            *add_body,
            "    return accs",
            "",
            "def create():",
            f"    return {create_expr}",
            "",
            *results,
            "",
        ]
    )
    shared: dict[str, Any] = {
        "_schema_error": _schema_error,
        "mean_of": mean_of,
        "FIELDS": tuple(fields),
        "OWNERS": tuple(owners),
    }
    namespace = dict(shared)
    exec(compile(source, f"<fused aggregations {list(names)}>", "exec"), namespace)
    return FusedAggregations(
        namespace["extract"],
        namespace["add"],
        namespace["create"],
        namespace["results"],
        source,
        tuple(extract_body),
        tuple(add_body),
        create_expr,
        shared,
    )
