"""streamcore: an asyncio event-time stream processor for Python.

    from streamcore import App, EventTime
    from streamcore.operators import Tumbling, Count, Sum

    app = App("payments")
    payments = app.topic("payments", partitions=4)
    totals = app.topic("card-totals")
    (app.stream(payments, event_time=EventTime("ts", max_out_of_orderness="5s"))
        .key_by("card")
        .window(Tumbling("1m"), allowed_lateness="30s")
        .aggregate(n=Count(), total=Sum("amount"))
        .to(totals))

Run it with ``streamcore run app.py`` (or ``streamcore.run(app)``).

This package is the public surface; the layers below it, bottom up, are `base`,
`eventtime`, `state`, `io`, `online`, `dataflow`, `serving` and `runtime` (each says
in its docstring what it owns and may import), then `operators` (windows,
aggregations, features, on the operator interface of `dataflow`), `cli` and `apps`.
See docs/architecture.md.
"""

from typing import Any

from streamcore.base.clock import Clock, ManualClock, SystemClock
from streamcore.base.errors import (
    ConfigError,
    IncompatibleState,
    LogCorruption,
    LogError,
    RecordError,
    SchemaError,
    StateError,
    StreamcoreError,
    TopicNotFound,
)
from streamcore.base.records import Record, RecordBatch
from streamcore.dataflow.app import App
from streamcore.dataflow.operator import FILTERED, LATE, Operator, OperatorContext, OperatorSpec, WindowSpec
from streamcore.dataflow.stream import Pipeline, Stream, WindowedStream
from streamcore.eventtime.watermarks import EventTime
from streamcore.io.transport import Broker, Control, Sink, Source, TopicSpec
from streamcore.operators import (
    Aggregate,
    Count,
    CountDistinct,
    FeatureView,
    Latest,
    Max,
    Mean,
    Min,
    Rolling,
    Session,
    Sliding,
    Sum,
    Tumbling,
)
from streamcore.runtime.runner import Runner, SimulatedCrash
from streamcore.runtime.settings import RunSettings
from streamcore.runtime.status import RunStatus
from streamcore.state.writer import StateWriter

__version__ = "0.1.0"


def run(app: App, settings: RunSettings | None = None, **options: Any) -> RunStatus:
    """Run `app` until stopped (SIGINT/SIGTERM) or, with ``until_end=True`` settings, to the end of input."""
    import asyncio

    return asyncio.run(Runner(app, settings or RunSettings.from_env(), **options).run())


__all__ = [
    "FILTERED",
    "LATE",
    "Aggregate",
    "App",
    "Broker",
    "Clock",
    "ConfigError",
    "Control",
    "Count",
    "CountDistinct",
    "EventTime",
    "FeatureView",
    "IncompatibleState",
    "Latest",
    "LogCorruption",
    "LogError",
    "ManualClock",
    "Max",
    "Mean",
    "Min",
    "Operator",
    "OperatorContext",
    "OperatorSpec",
    "Pipeline",
    "Record",
    "RecordBatch",
    "RecordError",
    "Rolling",
    "RunSettings",
    "RunStatus",
    "Runner",
    "SchemaError",
    "Session",
    "SimulatedCrash",
    "Sink",
    "Sliding",
    "Source",
    "StateError",
    "StateWriter",
    "Stream",
    "StreamcoreError",
    "Sum",
    "SystemClock",
    "TopicNotFound",
    "TopicSpec",
    "Tumbling",
    "WindowSpec",
    "WindowedStream",
    "run",
]
