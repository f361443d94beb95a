"""The JSON document behind the live status page (``GET /status``, `streamcore.serving.status_page`).

Built from what the worker keeps anyway (the run status, the metrics' histograms, the
owners directory) when a page asks: an open page costs one small answer per poll and
nothing per event. Counts and positions only, never an entity's features.
"""

from __future__ import annotations

import math
import time
from typing import Any, Protocol

from streamcore.dataflow.app import App
from streamcore.dataflow.graph import describe
from streamcore.dataflow.stream import Pipeline
from streamcore.io.owners import Owner
from streamcore.online.views import OnlineState
from streamcore.runtime.histograms import LoopHistograms
from streamcore.runtime.status import RunStatus, TaskStatus

POLL_MS = 1000
"""How often the page asks for the document."""


class StatusSource(Protocol):
    """What the document reads of the worker (the `Runner`)."""

    @property
    def app(self) -> App: ...

    @property
    def online(self) -> OnlineState: ...

    @property
    def ready(self) -> bool: ...

    @property
    def advertised_url(self) -> str: ...

    @property
    def pipelines(self) -> list[Pipeline]: ...

    def status(self) -> RunStatus: ...

    def partition_owners(self) -> dict[tuple[str, int], Owner]: ...


def status_document(worker: StatusSource, freshness: LoopHistograms, score: LoopHistograms) -> dict[str, Any]:
    """Everything the page shows, as JSON data (see the module docstring)."""
    status = worker.status()
    now_ms = time.time() * 1000
    online = worker.online
    return {
        "app": worker.app.name,
        "worker": worker.advertised_url,
        "ready": worker.ready,
        "elapsed_s": round(status.elapsed_s, 3),
        "now_ms": int(now_ms),
        "poll_ms": POLL_MS,
        "pipelines": [describe(p) for p in worker.pipelines],
        "tasks": [_task(t, status.processing_time_ms, now_ms) for t in status.tasks],
        "views": [
            {
                "name": name,
                "stream": store.stream.name,
                "features": list(store.reader.feature_names),
                "freshness_s": _merged(freshness, name),
            }
            for name, store in sorted(online.views.items())
        ],
        "models": [
            {
                "name": name,
                "view": model.view,
                "scores": model.stats.scores,
                "fallbacks": dict(sorted(model.stats.fallbacks.items())),
                "latency_s": _merged(score, name),
            }
            for name, model in sorted(worker.app.models.items())
        ],
        "snapshots": {
            "pinned": len(online.snapshots),
            "copy_bytes": online.copied_bytes,
            "expired_by_memory": online.expired_by_memory,
        },
        "owners": [
            {"topic": topic, "partition": partition, "url": owner.url, "views": list(owner.views)}
            for (topic, partition), owner in sorted(worker.partition_owners().items())
        ],
    }


def _task(task: TaskStatus, processing_ms: int, now_ms: float) -> dict[str, Any]:
    c = task.counters
    watermark = task.watermark
    return {
        "name": task.name,
        "positions": {str(p): o for p, o in sorted(task.positions.items())},
        "consumer_lag": {str(p): n for p, n in sorted(task.consumer_lag.items())},
        "watermark_ms": watermark if math.isfinite(watermark) else None,
        "watermark": "end of input" if watermark == math.inf else "none yet" if watermark == -math.inf else "",
        "watermark_lag_s": round((processing_ms - watermark) / 1000, 3) if math.isfinite(watermark) else None,
        "idle_s": None if task.idle_s is None else round(task.idle_s, 1),
        "records_in": c.records_in,
        "outputs": c.outputs,
        "late": c.late,
        "filtered": c.filtered,
        "dead_lettered": c.dead_letter_total,
        "dead_letter_reasons": dict(sorted(c.dead_lettered.items())),
        "backpressure_s": round(c.backpressure_s, 3),
        "state_entries": task.state_entries,
        "checkpoints": c.checkpoints,
        "last_checkpoint": None
        if not c.last_checkpoint_at_ms
        else {
            "age_s": round(max(0.0, now_ms - c.last_checkpoint_at_ms) / 1000, 3),
            "duration_ms": round(c.last_checkpoint_ms, 3),
            "bytes": c.last_checkpoint_bytes,
        },
    }


def _merged(family: LoopHistograms, first_label: str) -> dict[str, Any]:
    """The histograms of `family` whose first label is `first_label`, added up: bounds and counts."""
    counts = [0] * (len(family.bounds) + 1)
    total = 0.0
    for labels, child in family.children():
        if labels[0] == first_label:
            counts = [a + b for a, b in zip(counts, child.counts, strict=True)]
            total += child.sum
    return {"bounds": [*family.bounds, None], "counts": counts, "sum": round(total, 6)}
