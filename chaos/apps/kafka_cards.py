"""The app the Kafka scenarios run as ``streamcore worker`` processes: 10 s tumbling count and sum per card.

Events are keyed by card (the message key), so each card's windows live in one partition
and no repartition is needed. Its topic names carry ``STREAMCORE_CHAOS_RUN`` so that the
runs of one suite, sharing a broker, do not meet.
"""

import os

from streamcore import App, Count, EventTime, Sum, Tumbling

run = os.environ.get("STREAMCORE_CHAOS_RUN", "c")
app = App(f"chaos-{run}", version="1")
events = app.topic(f"chaos-{run}-events", partitions=4, key="card")
totals = app.topic(f"chaos-{run}-totals")

(
    app.stream(events, event_time=EventTime("ts", max_out_of_orderness="1s"), name="totals")
    .key_by("card")
    .window(Tumbling("10s"))
    .aggregate(n=Count(), total=Sum("amount"))
    .to(totals)
)
