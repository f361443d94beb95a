"""A Kafka test app: events keyed by "user" (a repartition), a feature view, then a step that
reads each event's record; the described events go to ``<name>-described``."""

import os
from typing import Any

from streamcore.operators import Count, FeatureView, Rolling

from streamcore import App, EventTime, Record

name = os.environ.get("STREAMCORE_TEST_APP", "khdr")
app = App(name, version="1")
events = app.topic(f"{name}-events", partitions=4, key="key")
seen = FeatureView("seen", entity="user", features={"n": Rolling(Count(), over="1h", pane="5m")})


def describe(event: dict[str, Any], record: Record | None) -> dict[str, Any]:
    assert record is not None
    return {**event, "record_topic": record.topic, "record_key": (record.key or b"").decode()}


(
    app.stream(events, event_time=EventTime("ts"))
    .key_by("user")
    .features(seen)
    .map(describe, with_record=True)
    .to(app.topic(f"{name}-described", partitions=1))
)
