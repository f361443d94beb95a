"""The chaos suite's harness, as a user runs it: ``python -m chaos list`` and ``run``.

The short profile (every scenario once on both brokers, about two minutes) is not part
of this test command: ``.ci/run`` runs it after the tests (``python -m chaos run all``).
Here one quick scenario and one that cannot pass without its broker run through the
real command line, and the report's three files are checked.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import orjson
import pytest

import chaos.scenarios  # noqa: F401 - registers the scenarios
from chaos.mutants import MUTANTS, SOMETIMES, Mutant
from chaos.stalling_disk import StallingDisk
from chaos.suite import SCENARIOS, Verdict

pytestmark = pytest.mark.slow
ROOT = Path(__file__).parents[2]


def test_a_run_reports_each_verdict_and_its_status_says_whether_all_passed(tmp_path: Path) -> None:
    report = tmp_path / "report"
    ran = subprocess.run(
        [sys.executable, "-m", "chaos", "run", "clock-skew", "kill9", "--broker", "embedded", "--runs", "2",
         "--events", "100000", "--report", str(report)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr[-3000:]
    runs = [orjson.loads(line) for line in (report / "runs.jsonl").read_bytes().splitlines()]
    assert [(r["scenario"], r["run"], r["seed"]) for r in runs] == [
        ("clock-skew", 0, 1), ("clock-skew", 1, 2), ("kill9", 0, 1), ("kill9", 1, 2)
    ]  # fmt: skip
    assert all(r["passed"] and r["records_in"] > 0 for r in runs)
    table = (report / "report.md").read_text()
    assert "| clock-skew | embedded | 2 | 2 | 0 |" in table and "| kill9 | embedded | 2 | 2 | 0 |" in table
    assert (report / "report.svg").read_text().startswith("<svg")

    unknown = subprocess.run([sys.executable, "-m", "chaos", "run", "nope"], cwd=ROOT, capture_output=True, text=True)
    assert unknown.returncode == 2 and "no scenario ['nope']" in unknown.stderr


def test_list_describes_each_scenario() -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "chaos", "list"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert [line.split()[0] for line in listed.stdout.splitlines()] == list(SCENARIOS)


def test_the_stalling_disk_holds_writes_until_released_and_passes_reads(tmp_path: Path) -> None:
    """The stalled-disk scenario's filesystem: a write blocks in the kernel while stalled, reads do not."""
    verdict = Verdict("stalled-disk", "embedded", 0, 0)
    with StallingDisk.mounted(tmp_path, verdict) as disk:
        if disk is None:
            pytest.skip(verdict.skipped)
        (disk.mount / "old").write_bytes(b"before")
        disk.stall()
        writer = threading.Thread(target=(disk.mount / "new").write_bytes, args=(b"during",))
        writer.start()
        writer.join(0.5)
        assert writer.is_alive() and disk.hits >= 1  # held, not failed
        assert (disk.mount / "old").read_bytes() == b"before"  # reads go on
        disk.release()
        writer.join(5)
        assert not writer.is_alive() and (disk.backing / "new").read_bytes() == b"during"
    assert not verdict.problems


@pytest.mark.parametrize("mutant", MUTANTS + SOMETIMES, ids=[m.name for m in MUTANTS + SOMETIMES])
def test_every_mutant_still_applies_to_the_code(mutant: Mutant) -> None:
    """A mutant whose code moved would test nothing: its change must find its place exactly once."""
    assert (ROOT / mutant.file).read_text().count(mutant.old) == 1


def test_a_broken_build_is_caught_by_its_scenario() -> None:
    ran = subprocess.run(
        [sys.executable, "-m", "chaos", "mutants", "restore-from-the-start", "--runs", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr[-2000:]
    assert "restore-from-the-start   caught: kill9 run 0: totals" in ran.stdout
    assert ran.stdout.strip().endswith("1 of 1 mutants caught")
