"""Histograms observed on the worker's event loop, exported when Prometheus scrapes.

prometheus-client's `Histogram.observe` takes a lock and walks its buckets, about 1.5 µs;
the fraud app observes a score latency per transaction and a freshness per feature per
publish, which came to about 6% of its time. Those observations all happen on the
worker's event loop (one thread, as do scrapes), so a `LoopHistogram` needs no lock: one
bisect into the bucket bounds and two additions. `LoopHistograms` is a labelled family
of them, exported in the exposition format of a Prometheus histogram (cumulative
``_bucket`` lines up to ``+Inf``, ``_count``, ``_sum``).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString


class LoopHistogram:
    """One labelled histogram: observation counts per bucket (the last one is +Inf) and their sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Count `value` in the first bucket whose upper bound is at least `value` (Prometheus' ``le``)."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value


class LoopHistograms(Collector):
    """A histogram metric with labels, observed on the event loop only (see the module docstring)."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        buckets: Sequence[float],
        registry: CollectorRegistry,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self.bounds = tuple(sorted(float(b) for b in buckets))
        self._children: dict[tuple[str, ...], LoopHistogram] = {}
        registry.register(self)

    def labels(self, *values: str) -> LoopHistogram:
        """The histogram of these label values (created empty on first use)."""
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {values!r}")
        key = tuple(str(v) for v in values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = LoopHistogram(self.bounds)
        return child

    def children(self) -> list[tuple[tuple[str, ...], LoopHistogram]]:
        """Each labelled histogram with its label values."""
        return list(self._children.items())

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child in self._children.items():
            cumulative, buckets = 0, []
            for bound, count in zip((*self.bounds, float("inf")), child.counts, strict=True):
                cumulative += count
                buckets.append((floatToGoString(bound), cumulative))  # type: ignore[no-untyped-call]
            family.add_metric(list(values), buckets, child.sum)
        yield family

    def describe(self) -> Iterator[Metric]:
        yield HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
