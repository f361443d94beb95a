"""`LoopHistograms` against prometheus-client's `Histogram`: the same observations scrape the same."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from streamcore.runtime.histograms import LoopHistograms

BUCKETS = (0.0001, 0.001, 0.005, 0.01, 0.25, 1.0, 30.0)


def _scraped(registry: CollectorRegistry) -> list[str]:
    """The exposition lines, without prometheus-client's ``_created`` timestamps."""
    return [line for line in generate_latest(registry).decode().splitlines() if "_created" not in line]


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "é"]),
            st.one_of(st.sampled_from(BUCKETS), st.floats(0, 100, allow_nan=False), st.just(0.0)),
        ),
        max_size=60,
    )
)
def test_a_loop_histogram_scrapes_as_a_prometheus_histogram(observations: list[tuple[str, float]]) -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    loop = LoopHistograms("x_seconds", "Some latency.", ["view"], BUCKETS, ours)
    reference = Histogram("x_seconds", "Some latency.", ["view"], buckets=BUCKETS, registry=theirs)
    for label, value in observations:
        loop.labels(label).observe(value)
        reference.labels(label).observe(value)
    assert _scraped(ours) == _scraped(theirs)
