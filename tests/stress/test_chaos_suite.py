"""The chaos suite's short profile: every scenario once, on both brokers, with a small input.

``python -m chaos run all --runs 1`` as a user runs it: real worker processes, a real
broker, real faults. The suite's exit status says every run passed; the report has a
JSON record per run, the Markdown table and the plot.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

import chaos.scenarios  # noqa: F401 - registers the scenarios
from chaos.suite import SCENARIOS

pytestmark = pytest.mark.slow
ROOT = Path(__file__).parents[2]


def test_every_scenario_passes_once_on_both_brokers(tmp_path: Path) -> None:
    report = tmp_path / "report"
    ran = subprocess.run(
        [sys.executable, "-m", "chaos", "run", "all", "--events", "30000", "--report", str(report)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr[-3000:]
    runs = [orjson.loads(line) for line in (report / "runs.jsonl").read_bytes().splitlines()]
    expected = {(s.name, broker) for s in SCENARIOS.values() for broker in s.brokers}
    assert {(r["scenario"], r["broker"]) for r in runs} == expected and all(r["passed"] for r in runs)
    table = (report / "report.md").read_text()
    assert all(f"| {name} |" in table for name in SCENARIOS)
    assert (report / "report.svg").read_text().startswith("<svg")


def test_list_describes_each_scenario() -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "chaos", "list"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert [line.split()[0] for line in listed.stdout.splitlines()] == list(SCENARIOS)
