"""The app the Kafka integration tests run as worker processes.

Tumbling 10 s windows per key (count and sum), after a feature view of each key (events
in the last hour, latest amount) served over HTTP. Events are keyed by the message key,
field "key"; with ``STREAMCORE_TEST_KEY_BY=user`` by the field "user" instead, which
makes the stream cross a repartition topic. With
``STREAMCORE_TEST_STALL_FILE`` the results go instead to an async function that waits
while that file exists (a stalled sink, for the backpressure test) and then appends
them to ``<file>.out`` as JSON lines. Topic and app names
come from ``STREAMCORE_TEST_APP`` so that tests sharing one broker do not meet.
"""

import asyncio
import os
from pathlib import Path
from typing import Any

import orjson
from streamcore.operators import Count, FeatureView, Latest, Rolling, Sum, Tumbling

from streamcore import App, EventTime

name = os.environ.get("STREAMCORE_TEST_APP", "kwin")
stall_file = os.environ.get("STREAMCORE_TEST_STALL_FILE", "")
key_by = os.environ.get("STREAMCORE_TEST_KEY_BY", "key")

app = App(name, version="1")
events = app.topic(f"{name}-events", partitions=4, key="key")
totals = app.topic(f"{name}-totals", partitions=1)

per_key = FeatureView(
    "per_key", entity=key_by, features={"events_1h": Rolling(Count(), over="1h", pane="5m"), "amount": Latest("amount")}
)

app.model(  # read over HTTP and MCP (tests/integration/test_mcp.py)
    "busy", lambda f: min(1.0, f["events_1h"] / 10), view="per_key", features=["events_1h"], fallback=0.0
)

windows = (
    app.stream(events, event_time=EventTime("ts", max_out_of_orderness="1s"), name="totals")
    .key_by(key_by)
    .features(per_key)
    .window(Tumbling("10s"))
    .aggregate(n=Count(), total=Sum("amount"))
)


def _append(values: list[Any]) -> None:
    with open(stall_file + ".out", "ab") as out:
        out.write(b"".join(orjson.dumps(v) + b"\n" for v in values))


async def stalled_sink(values: list[Any]) -> None:
    while await asyncio.to_thread(Path(stall_file).exists):  # noqa: ASYNC110 - polls a file another process removes
        await asyncio.sleep(0.05)
    await asyncio.to_thread(_append, values)


if stall_file:
    windows.sink(stalled_sink, label="stalled")
else:
    windows.to(totals)
