"""The app the clock-skew scenario runs: tumbling windows that refuse events too far in the future.

An event stamped more than a minute past the processing time is dead-lettered
(``future_timestamp``) rather than allowed to drag the watermark ahead; one older than
the watermark minus the allowed lateness goes to the late topic.
"""

from streamcore import App, Count, EventTime, Sum, Tumbling

app = App("skew", version="1")
events = app.topic("events", partitions=3)
totals = app.topic("totals")

(
    app.stream(events, event_time=EventTime("ts", max_out_of_orderness="2s", max_future_skew="1m"), name="totals")
    .key_by("card")
    .window(Tumbling("10s"), allowed_lateness="3s")
    .aggregate(n=Count(), total=Sum("amount"))
    .to(totals)
)
