"""Dead-letter and late records: the original bytes plus where they came from and why.

A dead-letter record keeps the original key and value bytes untouched, and carries
its context in headers (as Kafka Connect does), so that any tool can read it and a
fixed pipeline can replay it byte for byte:

    sc.reason      decode | schema | future_timestamp | operator_error | shed | late
    sc.error       the error text
    sc.topic, sc.partition, sc.offset, sc.timestamp   the source record
    sc.time        processing time when it was dead-lettered (epoch ms)
    sc.app, sc.app_version, sc.step                    who dead-lettered it
    sc.replayed_from   when the source record was itself a replayed dead letter: which one
                       (``<dlq topic>@<offset>``), so that `dlq replay` does not send a
                       record that failed again after its replay round and round
"""

from __future__ import annotations

from dataclasses import dataclass

from streamcore.base.records import Headers, Record

LATE_REASON = "late"
REPLAYED_FROM = "sc.replayed_from"


def envelope_headers(
    *,
    reason: str,
    error: str,
    topic: str,
    partition: int,
    offset: int,
    timestamp: int,
    time_ms: int,
    app: str,
    app_version: str,
    step: str,
    replayed_from: bytes | None = None,
) -> Headers:
    lineage = () if replayed_from is None else ((REPLAYED_FROM, replayed_from),)
    return (
        ("sc.reason", reason.encode()),
        ("sc.error", error.encode("utf-8", "replace")),
        ("sc.topic", topic.encode()),
        ("sc.partition", str(partition).encode()),
        ("sc.offset", str(offset).encode()),
        ("sc.timestamp", str(timestamp).encode()),
        ("sc.time", str(time_ms).encode()),
        ("sc.app", app.encode()),
        ("sc.app_version", app_version.encode()),
        ("sc.step", step.encode()),
        *lineage,
    )


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A dead-letter (or late) record read back from its topic."""

    record: Record
    reason: str
    error: str
    source_topic: str
    source_partition: int
    source_offset: int
    source_timestamp: int
    time_ms: int
    app: str
    step: str
    replayed_from: str | None = None
    """The dead letter (``<dlq topic>@<offset>``) whose replay this record failed again after."""

    @classmethod
    def from_record(cls, record: Record) -> DeadLetter:
        h = {k: v.decode("utf-8", "replace") for k, v in record.headers}
        if "sc.reason" not in h:
            raise ValueError(f"record {record.topic}/{record.partition}@{record.offset} is not a dead letter")
        return cls(
            record=record,
            reason=h["sc.reason"],
            error=h.get("sc.error", ""),
            source_topic=h.get("sc.topic", ""),
            source_partition=int(h.get("sc.partition", "-1")),
            source_offset=int(h.get("sc.offset", "-1")),
            source_timestamp=int(h.get("sc.timestamp", "-1")),
            time_ms=int(h.get("sc.time", "0")),
            app=h.get("sc.app", ""),
            step=h.get("sc.step", ""),
            replayed_from=h.get(REPLAYED_FROM),
        )
