"""streamcore: an asyncio event-time stream processor for Python.

    from streamcore import App, EventTime
    from operators import Tumbling, Count, Sum

    app = App("payments")
    payments = app.topic("payments", partitions=4)
    totals = app.topic("card-totals")
    (app.stream(payments, event_time=EventTime("ts", max_out_of_orderness="5s"))
        .key_by("card")
        .window(Tumbling("1m"), allowed_lateness="30s")
        .aggregate(n=Count(), total=Sum("amount"))
        .to(totals))

Run it with ``streamcore run app.py`` (or ``app.run()``).
"""

from .app import App
from .clock import Clock, ManualClock, SystemClock
from .errors import (
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
from .eventtime import EventTime
from .operator import FILTERED, LATE, Operator, OperatorContext, OperatorSpec, StateWriter, WindowSpec
from .records import Record, RecordBatch
from .runner import Runner, RunStatus, SimulatedCrash
from .settings import RunSettings
from .stream import Pipeline, Stream, WindowedStream
from .transport import Broker, Control, Sink, Source, TopicSpec

__version__ = "0.1.0"

__all__ = [
    "FILTERED",
    "LATE",
    "App",
    "Broker",
    "Clock",
    "ConfigError",
    "Control",
    "EventTime",
    "IncompatibleState",
    "LogCorruption",
    "LogError",
    "ManualClock",
    "Operator",
    "OperatorContext",
    "OperatorSpec",
    "Pipeline",
    "Record",
    "RecordBatch",
    "RecordError",
    "RunSettings",
    "RunStatus",
    "Runner",
    "SchemaError",
    "SimulatedCrash",
    "Sink",
    "Source",
    "StateError",
    "StateWriter",
    "Stream",
    "StreamcoreError",
    "SystemClock",
    "TopicNotFound",
    "TopicSpec",
    "WindowSpec",
    "WindowedStream",
]
