"""The window-aggregate operator spec: what `.window(...).aggregate(...)` builds, and the operator it picks.

`WindowAggregateSpec` is what ``.window(...).aggregate(...)`` builds; it picks
`FixedWindows` (tumbling, sliding) or `SessionWindows`, each compiled by
`compiled_windows` where it applies. Both keep every open window in
memory, fire a window once the watermark reaches its end (in ``(end, key, start)``
order), re-emit it for every accepted late event while the watermark is below
``end + allowed_lateness``, and purge it after that. Timers are derived from the
checkpointed windows (end + fired flag), so recovery fires exactly what a
crash-free run fires.

Each result is ``{"key", "start", "end", <aggregations>..., "revision"}``: revision 0
is the first firing, later ones are updates. A session window that is merged away
after it fired is withdrawn with ``{"key", "start", "end", "retracted": true, "revision"}``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from streamcore.dataflow.operator import Operator, OperatorContext

from .aggregations import Aggregation
from .compiled_windows import compiled_fixed_windows, compiled_session_windows
from .fixed_windows import FixedWindows
from .session_windows import SessionWindows
from .window_base import extract_values


@dataclass(frozen=True, slots=True)
class WindowAggregateSpec:
    """A keyed window aggregation; built into an operator per task."""

    name: str
    kind: str
    aggregations: Mapping[str, Aggregation]
    allowed_lateness_ms: int
    size: int = 0
    slide: int = 0
    gap: int = 0
    state_version: int = 1
    needs_event_time: bool = field(default=True, init=False)

    def checker(self) -> Callable[[Any], None]:
        """Raises `SchemaError` if an aggregated field is missing or not a finite number."""
        aggregations = self.aggregations

        def check(event: Any) -> None:
            extract_values(aggregations, event)

        return check

    def build(self, context: OperatorContext) -> Operator:
        if self.kind == "session":
            return compiled_session_windows(self, context) or SessionWindows(self, context)
        return compiled_fixed_windows(self, context) or FixedWindows(self, context)
