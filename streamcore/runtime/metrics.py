"""Prometheus metrics of a running app, registered in an injected `CollectorRegistry`.

Counters the engine keeps anyway (records in per partition, outputs, late records,
dead letters by reason, checkpoints, state size, model fallbacks, snapshots) are read
when Prometheus scrapes, so they cost nothing per event. Histograms are observed at
cheap moments: feature freshness when applied events are published (a few sampled
records per batch), batch processing time per batch, checkpoint duration per
checkpoint, score latency per scoring; the first, second and last of these are
`LoopHistograms`, which take no lock. Labels are bounded: stream, partition, view,
feature, model, reason; never an entity key.

    streamcore_records_in_total{stream,partition}       streamcore_records_out_total{stream}
    streamcore_late_records_total{stream}               streamcore_dead_letters_total{stream,reason}
    streamcore_filtered_records_total{stream}           streamcore_watermark_lag_seconds{stream}
    streamcore_state_entries{stream}                    streamcore_checkpoints_total{stream}
    streamcore_checkpoint_size_bytes{stream}            streamcore_checkpoint_duration_seconds{stream}
    streamcore_batch_processing_seconds{stream}         streamcore_backpressure_seconds_total{stream}
    streamcore_feature_freshness_seconds{view,feature}  streamcore_model_score_seconds{model,path}
    streamcore_model_scores_total{model}                streamcore_model_fallbacks_total{model,reason}
    streamcore_snapshots_pinned                         streamcore_snapshot_copy_bytes
    streamcore_snapshots_expired_by_memory_total        streamcore_duplicates_skipped_total{stream}
    streamcore_stream_idle_seconds{stream}              streamcore_consumer_lag_records{stream,partition}

``stream`` is the stream's name, also on Kafka where each partition is a task of its own
(the partition has its own label). Counters add up every task of the stream the worker
ran, those whose partitions a rebalance moved away too, so they never go back; gauges
are of the tasks it runs now. A stream with no input for a while (`task_run.IDLE_AFTER_S`) reports
how long in ``streamcore_stream_idle_seconds`` and no watermark lag, which would only grow
with the clock.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from streamcore.base.records import RecordBatch
from streamcore.online.models import Model, Score
from streamcore.runtime.histograms import LoopHistograms
from streamcore.runtime.status import RunStatus, TaskStatus
from streamcore.runtime.status_document import StatusSource, status_document


class MetricsSource(StatusSource, Protocol):
    """What the metrics read at scrape time (the `Runner`): its status, models and online state,
    and for the status page its pipelines and the partitions' owners."""

    @property
    def released_tasks(self) -> list[TaskStatus]: ...


FRESHNESS_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
SAMPLES_PER_PUBLISH = 8


class Metrics:
    """The metrics of one runner."""

    def __init__(self, runner: MetricsSource, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.runner = runner
        r = self.registry
        self.freshness = LoopHistograms(
            "streamcore_feature_freshness_seconds",
            "From the arrival of an event to the moment the features it changed became readable.",
            ["view", "feature"],
            buckets=FRESHNESS_BUCKETS,
            registry=r,
        )
        self.batch = LoopHistograms(
            "streamcore_batch_processing_seconds",
            "Time to process one fetched batch.",
            ["stream"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.checkpoint = Histogram(
            "streamcore_checkpoint_duration_seconds",
            "Time to flush outputs and commit one checkpoint.",
            ["stream"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.score = LoopHistograms(
            "streamcore_model_score_seconds",
            "Time to score one entity.",
            ["model", "path"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.restore_records = Counter(
            "streamcore_restore_records",
            "State changelog records replayed when a partition was gained.",
            ["stream"],
            registry=r,
        )
        self.restore = Histogram(
            "streamcore_restore_duration_seconds",
            "Time to restore a gained partition's state (local checkpoint plus changelog tail).",
            ["stream"],
            buckets=(0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0),
            registry=r,
        )
        r.register(_EngineCollector(runner))

    def document(self) -> dict[str, Any]:
        """The live status page's JSON (`streamcore.runtime.status_document`)."""
        return status_document(self.runner, self.freshness, self.score)

    def observe_restore(self, stream: str, records: int, seconds: float) -> None:
        self.restore_records.labels(stream).inc(records)
        self.restore.labels(stream).observe(seconds)

    def watch_models(self, models: Sequence[Model]) -> None:
        for model in models:
            model.on_score = self._score_observer(model.name)

    def _score_observer(self, name: str) -> Callable[[Score, str], None]:
        by_path = {path: self.score.labels(name, path) for path in ("stream", "request")}

        def observe(score: Score, path: str) -> None:
            by_path[path].observe(score.latency_ms / 1000)

        return observe

    def observe_freshness(
        self, view: str, features: Sequence[str], batches: Sequence[RecordBatch], published_ms: float
    ) -> None:
        """Freshness of records sampled evenly from `batches`, all published at `published_ms`.

        At most `SAMPLES_PER_PUBLISH` records per publish (always the oldest and the
        newest), so the cost does not grow with the rate.
        """
        stamps = [ts for batch in batches for ts in (batch.timestamps[0], batch.timestamps[-1])]
        step = max(1, len(stamps) // SAMPLES_PER_PUBLISH)
        picked = stamps[::step] if len(stamps) > SAMPLES_PER_PUBLISH else stamps
        samples = [max(0.0, (published_ms - ts) / 1000) for ts in picked]
        for feature in features:
            histogram = self.freshness.labels(view, feature)
            for seconds in samples:
                histogram.observe(seconds)


class _EngineCollector(Collector):
    """Counters and gauges read from the runner at scrape time."""

    def __init__(self, runner: MetricsSource) -> None:
        self.runner = runner

    @staticmethod
    def _gauges(status: RunStatus, *families: GaugeMetricFamily) -> None:
        """Per stream, of the tasks running now: the largest watermark lag of those with input (an
        idle stream reports how long it has been idle instead), state entries, checkpoint bytes."""
        lag, idle, entries, size, consumer = families
        streams: dict[str, list[TaskStatus]] = {}
        for task in status.tasks:
            streams.setdefault(task.stream or task.name, []).append(task)
            for partition, n in task.consumer_lag.items():
                consumer.add_metric([task.stream or task.name, str(partition)], n)
        for stream, tasks in sorted(streams.items()):
            active = [t for t in tasks if t.idle_s is None]
            lags = [(status.processing_time_ms - t.watermark) / 1000 for t in active if math.isfinite(t.watermark)]
            if lags:
                lag.add_metric([stream], max(0.0, *lags))
            idle.add_metric([stream], 0.0 if active else min(t.idle_s or 0.0 for t in tasks))
            entries.add_metric([stream], sum(t.state_entries for t in tasks))
            size.add_metric([stream], sum(t.counters.last_checkpoint_bytes for t in tasks))

    def collect(self) -> Iterator[Metric]:
        runner = self.runner
        status = runner.status()
        records_in = CounterMetricFamily("streamcore_records_in", "Records read.", labels=["stream", "partition"])
        out = CounterMetricFamily("streamcore_records_out", "Records written to the output.", labels=["stream"])
        late = CounterMetricFamily("streamcore_late_records", "Records sent to the late output.", labels=["stream"])
        filtered = CounterMetricFamily("streamcore_filtered_records", "Records a filter dropped.", labels=["stream"])
        duplicates = CounterMetricFamily(
            "streamcore_duplicates_skipped",
            "Repartitioned records a restarted producer wrote again, skipped (already applied).",
            labels=["stream"],
        )
        dead = CounterMetricFamily("streamcore_dead_letters", "Records dead-lettered.", labels=["stream", "reason"])
        checkpoints = CounterMetricFamily("streamcore_checkpoints", "Checkpoints committed.", labels=["stream"])
        backpressure = CounterMetricFamily(
            "streamcore_backpressure_seconds", "Time spent waiting for sinks and checkpoints.", labels=["stream"]
        )
        lag = GaugeMetricFamily(
            "streamcore_watermark_lag_seconds", "Processing time minus the watermark.", labels=["stream"]
        )
        entries = GaugeMetricFamily("streamcore_state_entries", "State entries held in memory.", labels=["stream"])
        size = GaugeMetricFamily(
            "streamcore_checkpoint_size_bytes", "Bytes written by the last checkpoint.", labels=["stream"]
        )
        consumer_lag = GaugeMetricFamily(
            "streamcore_consumer_lag_records",
            "Kafka: records of a partition not processed yet.",
            labels=["stream", "partition"],
        )
        idle = GaugeMetricFamily(
            "streamcore_stream_idle_seconds",
            "Seconds without input of a caught-up stream (its watermark lag is not reported then); 0 while active.",
            labels=["stream"],
        )
        # Counters add up every task of a stream this worker ran, those whose partitions moved
        # away too: a rebalance never makes a counter go back. Gauges are of the tasks it runs now.
        totals: dict[str, list[float]] = {}
        by_partition: dict[tuple[str, int], int] = {}
        reasons: dict[tuple[str, str], int] = {}
        for task in [*runner.released_tasks, *status.tasks]:
            stream, c = task.stream or task.name, task.counters
            sums = totals.setdefault(stream, [0, 0, 0, 0, 0, 0.0])
            for i, n in enumerate((c.outputs, c.late, c.filtered, c.duplicates, c.checkpoints, c.backpressure_s)):
                sums[i] += n
            for partition, n in c.records_in_by_partition.items():
                by_partition[stream, partition] = by_partition.get((stream, partition), 0) + n
            for reason, n in c.dead_lettered.items():
                reasons[stream, reason] = reasons.get((stream, reason), 0) + n
        for stream, sums in sorted(totals.items()):
            for family, value in zip((out, late, filtered, duplicates, checkpoints, backpressure), sums, strict=True):
                family.add_metric([stream], value)
        for (stream, partition), n in sorted(by_partition.items()):
            records_in.add_metric([stream, str(partition)], n)
        for (stream, reason), n in sorted(reasons.items()):
            dead.add_metric([stream, reason], n)
        self._gauges(status, lag, idle, entries, size, consumer_lag)
        yield from (
            records_in,
            out,
            late,
            filtered,
            duplicates,
            dead,
            checkpoints,
            backpressure,
            lag,
            idle,
            entries,
            size,
        )
        yield consumer_lag

        scores = CounterMetricFamily("streamcore_model_scores", "Scorings.", labels=["model"])
        fallbacks = CounterMetricFamily(
            "streamcore_model_fallbacks", "Scorings that used the fallback.", labels=["model", "reason"]
        )
        for model in runner.app.models.values():
            scores.add_metric([model.name], model.stats.scores)
            for reason, n in sorted(model.stats.fallbacks.items()):
                fallbacks.add_metric([model.name, reason], n)
        yield from (scores, fallbacks)

        online = runner.online
        yield GaugeMetricFamily(
            "streamcore_snapshots_pinned", "Snapshots currently pinned.", value=len(online.snapshots)
        )
        yield GaugeMetricFamily(
            "streamcore_snapshot_copy_bytes", "Bytes of entity state kept for snapshots.", value=online.copied_bytes
        )
        yield CounterMetricFamily(
            "streamcore_snapshots_expired_by_memory",
            "Snapshots ended early because their copies exceeded the memory cap.",
            value=online.expired_by_memory,
        )
