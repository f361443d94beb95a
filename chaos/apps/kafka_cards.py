"""The app the Kafka scenarios run as ``streamcore worker`` processes: 10 s tumbling count and sum per card.

Events are keyed by card (the message key), so each card's windows live in one partition
and no repartition is needed. Its topic names carry ``STREAMCORE_CHAOS_RUN`` so that the
runs of one suite, sharing a broker, do not meet. With ``STREAMCORE_CHAOS_STALL_FILE``
the results go instead to a sink that waits while that file exists (a stalled sink),
then appends them to ``<file>.out`` as JSON lines. With ``STREAMCORE_CHAOS_VIEW=1`` the
stream keeps a feature view of each card first (its count and sum over the last hour),
which a worker with ``--http`` serves, forwarding reads of cards it does not own.
"""

import asyncio
import os
from pathlib import Path
from typing import Any

import orjson

from streamcore import App, Count, EventTime, FeatureView, Rolling, Sum, Tumbling

run = os.environ.get("STREAMCORE_CHAOS_RUN", "c")
stall_file = os.environ.get("STREAMCORE_CHAOS_STALL_FILE", "")
app = App(f"chaos-{run}", version="1")
events = app.topic(f"chaos-{run}-events", partitions=4, key="card")
totals = app.topic(f"chaos-{run}-totals")

cards = app.stream(events, event_time=EventTime("ts", max_out_of_orderness="1s"), name="totals").key_by("card")
if os.environ.get("STREAMCORE_CHAOS_VIEW") == "1":
    hour = {"over": "1h", "pane": "1m"}
    view = FeatureView(
        "card", entity="card", features={"n": Rolling(Count(), **hour), "total": Rolling(Sum("amount"), **hour)}
    )
    cards = cards.features(view)
windows = cards.window(Tumbling("10s")).aggregate(n=Count(), total=Sum("amount"))


def _append(values: list[Any]) -> None:
    with open(stall_file + ".out", "ab") as out:
        out.write(b"".join(orjson.dumps(v) + b"\n" for v in values))


async def stalled_sink(values: list[Any]) -> None:
    while await asyncio.to_thread(Path(stall_file).exists):  # noqa: ASYNC110 - the harness removes the file
        await asyncio.sleep(0.05)
    await asyncio.to_thread(_append, values)


if stall_file:
    windows.sink(stalled_sink, label="stalled")
else:
    windows.to(totals)
