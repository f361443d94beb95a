"""What a feature's value is, as a JSON Schema with a description a reader (or an agent) can use.

`FeatureView.feature_schemas` builds one per feature from its declaration, e.g.

    Rolling(CountDistinct("merchant"), over="5m", pane="30s")
    -> {"type": "integer", "description": "distinct values of merchant over the last 5m (in panes of 30s)"}
"""

from __future__ import annotations

from typing import Any

from .aggregations import Count, CountDistinct, Max, Mean, Min, Sum

_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}


def span(ms: int) -> str:
    """``300000`` -> ``"5m"``: the largest unit that divides the span exactly."""
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def schema_of(plan: Any) -> dict[str, Any]:
    """The schema of one feature of a view: a rolling plan has an ``aggregation``, a latest one a ``field``."""
    if hasattr(plan, "aggregation"):
        return rolling_schema(plan.aggregation, plan.over, plan.pane)
    return latest_schema(plan.field, plan.type, plan.required)


def rolling_schema(aggregation: Any, over_ms: int, pane_ms: int) -> dict[str, Any]:
    """A rolling feature: its value's type follows the aggregation; None where it has no value."""
    window = f"over the last {span(over_ms)} (in panes of {span(pane_ms)})"
    field = getattr(aggregation, "field", None)
    if isinstance(aggregation, Count):
        return {"type": "integer", "description": f"events {window}"}
    if isinstance(aggregation, CountDistinct):
        return {"type": "integer", "description": f"distinct values of {field} {window}"}
    if isinstance(aggregation, Sum):
        return {"type": "number", "description": f"sum of {field} {window}"}
    if isinstance(aggregation, Mean):
        return {"type": ["number", "null"], "description": f"mean of {field} {window} (null: no events)"}
    if isinstance(aggregation, Min | Max):
        kind = "smallest" if isinstance(aggregation, Min) else "largest"
        return {"type": ["number", "null"], "description": f"{kind} {field} {window} (null: no events)"}
    name = getattr(aggregation, "name", type(aggregation).__name__)
    about = f"{name} of {field}" if field else name
    return {"description": f"{about} {window} (a user-defined aggregation)"}


def latest_schema(field: str, kind: type | None, required: bool) -> dict[str, Any]:
    """A latest feature: the field's type if the view declares one; null before the first event."""
    description = f"{field} of the newest event" + ("" if required else " that has it")
    json_type = _JSON_TYPES.get(kind) if kind is not None else None
    if json_type is None:
        return {"description": description + " (null: none yet)"}
    return {"type": [json_type, "null"], "description": description + " (null: none yet)"}
