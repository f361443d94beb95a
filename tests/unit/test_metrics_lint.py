"""``promtool check metrics`` finds nothing to say about a running worker's ``/metrics``.

promtool is Prometheus' own linter (names, units, ``_total`` on counters, help texts,
histogram buckets); it comes from Debian's ``prometheus`` package, installed by
``tests/tools/install-promtool.sh`` when missing. The Kafka worker's metrics are linted
in ``tests/integration/test_kafka.py``.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path

from debian_tools import promtool_problems
from live import fraud_log, live_worker, stop_worker

ROOT = Path(__file__).parents[2]


def test_promtool_finds_nothing_in_the_fraud_apps_metrics(tmp_path: Path) -> None:
    fraud_log(tmp_path, seed=3, cards=100, ticks=10, per_tick=20, tick_ms=500)
    proc, url = live_worker(str(ROOT / "apps" / "fraud" / "app.py"), tmp_path, "--checkpoint-interval-ms", "300")
    try:
        score = urllib.request.Request(f"{url}/score/fraud", data=b'{"entity": "c1"}', method="POST")
        urllib.request.urlopen(score).read()  # a request-path score too
        with urllib.request.urlopen(f"{url}/metrics") as answer:
            exposition = answer.read()
    finally:
        stop_worker(proc)
    assert (
        b"streamcore_feature_freshness_seconds_bucket" in exposition and b"streamcore_model_score_seconds" in exposition
    )
    assert promtool_problems(exposition) == ""
