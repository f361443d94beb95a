"""The app the kill -9 test runs: tumbling windows with lateness and session windows.

No idle timeout and no future-skew guard, so its results depend only on the input,
never on how fast or in what processing time a (restarted) worker read it.
"""

from streamcore import App, Count, EventTime, Max, Mean, Session, Sum, Tumbling

app = App("chaos", version="1")
events = app.topic("events", partitions=3)
totals = app.topic("totals")
sessions = app.topic("sessions")
event_time = EventTime("ts", max_out_of_orderness="2s")

(
    app.stream(events, event_time=event_time, name="totals")
    .key_by("card")
    .window(Tumbling("10s"), allowed_lateness="3s")
    .aggregate(n=Count(), total=Sum("amount"), biggest=Max("amount"))
    .to(totals)
)
(
    app.stream(events, event_time=event_time, name="sessions")
    .key_by("card")
    .window(Session("4s"), allowed_lateness="1s")
    .aggregate(n=Count(), mean=Mean("amount"))
    .to(sessions)
)
