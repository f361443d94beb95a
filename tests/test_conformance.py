"""The project's own conformance kit (``chaos/conformance``, ``python -m chaos tck``).

Its reference model and cases are written here, from ``SEMANTICS.md``; where the shared
TCK is beside the repository they are held to it: the reference model must give every
shared case's stored expectation and agree with the shared oracle on random cases of both
generators, and the shared oracle must give the project's cases their expectations.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import tck_shared as tck

from chaos.conformance import harness
from chaos.conformance.compare import differences
from chaos.conformance.generator import random_case
from chaos.conformance.named import named_cases
from chaos.conformance.reference import expected
from chaos.conformance.settings import Refused

ROOT = Path(__file__).parents[1]
STORED_RANDOM = {"count": 8, "seed": 1, "max_arrivals": 200}
"""How ``chaos/conformance/cases`` was written: ``python -m chaos tck --write DIR --random 8 --max-arrivals 200``."""
shared = pytest.mark.skipif(not tck.available(), reason=f"the shared TCK is not at {tck.TCK_DIR}")


def _tck(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chaos", "tck", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False, env=env,
    )  # fmt: skip


def test_the_stored_cases_are_exactly_what_the_code_makes() -> None:
    made = [*named_cases(), *harness.random_cases(**STORED_RANDOM)]
    stored = {case["name"]: case for case in harness.stored_cases()}
    assert sorted(stored) == sorted(case["name"] for case in made)
    for case in made:
        assert stored[case["name"]] == case, case["name"]


def test_streamcore_passes_the_stored_cases_and_random_ones() -> None:
    ran = _tck("--random", "40", "--seed", "7")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert ran.stdout.strip().endswith(f"{len(list(harness.stored_cases())) + 40} passed, 0 failed")


def test_the_pure_python_path_passes_them_too() -> None:
    env = {**os.environ, "STREAMCORE_PURE_PYTHON": "1"}
    ran = _tck("--random", "20", "--seed", "8", env=env)
    assert ran.returncode == 0, ran.stdout + ran.stderr


def test_an_operator_of_your_own_runs_through_the_same_harness() -> None:
    """``--operator`` puts a user's operator in streamcore's runtime: a broken one fails, by name."""
    fixtures = "tests.fixtures.conformance_operators"
    good = _tck("--operator", f"{fixtures}:windows_as_documented")
    assert good.returncode == 0, good.stdout + good.stderr
    broken = _tck("--operator", f"{fixtures}:windows_without_lateness")
    assert broken.returncode == 1
    assert "FAIL sessions_bridge_and_judge_lateness_first" in broken.stdout
    assert "late: missing" in broken.stdout


def test_an_adapter_file_runs_through_it(tmp_path: Path) -> None:
    wrong = tmp_path / "adapter.py"
    wrong.write_text("def run_case(case, workdir):\n    return {'results': [], 'late': [], 'dlq': []}\n")
    ran = _tck("--adapter", str(wrong))
    assert ran.returncode == 1 and "FAIL exact_integers" in ran.stdout and "missing window" in ran.stdout
    assert _tck("--adapter", "tests/tck_adapter.py").returncode == 0


def test_write_stores_cases_that_run(tmp_path: Path) -> None:
    assert _tck("--write", str(tmp_path), "--random", "3", "--seed", "4").returncode == 0
    ran = _tck("--cases", str(tmp_path), "-v")
    assert ran.returncode == 0 and ran.stdout.count("ok   ") == len(named_cases()) + 3


def test_the_reference_model_refuses_settings_by_name() -> None:
    case = {"job": {**named_cases()[0]["job"], "idle_timeout_ms": 0}, "partitions": 1, "arrivals": []}
    with pytest.raises(Refused, match="idle_timeout"):
        expected(case)


def _agree(one: dict[str, Any], other: dict[str, Any]) -> list[str]:
    return differences(one, other) + differences(other, one)


@shared
def test_the_reference_model_gives_every_shared_case_its_expectation() -> None:
    for path in sorted((tck.TCK_DIR / "cases").glob("*.json")):
        case = json.loads(path.read_text())
        if "refused" in case:
            with pytest.raises(Refused) as refused:
                expected(case)
            assert refused.value.setting == case["refused"], path.name
        else:
            assert not _agree(case["expected"], expected(case)), path.name


@shared
def test_the_shared_oracle_gives_the_project_cases_their_expectations() -> None:
    for case in harness.stored_cases():
        if "refused" not in case:
            assert not _agree(case["expected"], tck.oracle().expected(case)), case["name"]


@shared
@pytest.mark.parametrize("seed", [11, 12])
def test_the_two_models_agree_on_random_cases_of_both_generators(seed: int) -> None:
    ours, theirs = random.Random(seed), random.Random(seed)
    for i in range(150):
        case = random_case(ours, i, 300)
        if "refused" not in case:
            assert not _agree(case["expected"], tck.oracle().expected(case)), (seed, i)
        case = tck.generator().random_case(theirs, i, 300)
        if "refused" not in case:
            assert not _agree(tck.oracle().expected(case), expected(case)), (seed, i)
