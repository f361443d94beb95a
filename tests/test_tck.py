"""The event-time contract: every shared TCK case, and generated ones, on the public API.

Expectations come from the shared oracle exactly as shared (``../shared/tck``).
Skipped with a message when ``../shared/tck`` is not beside the repository.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import tck_shared as tck
from helpers import use_python_references
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tck_adapter import run_case

from streamcore import ConfigError

pytestmark = pytest.mark.skipif(not tck.available(), reason=f"the shared TCK is not at {tck.TCK_DIR}")

CASES = sorted((tck.TCK_DIR / "cases").glob("*.json")) if tck.available() else []
GENERATED = int(os.environ.get("STREAMCORE_TCK_GENERATED", "200"))
"""Generated cases of an untuned seed per run (``STREAMCORE_TCK_GENERATED=1000`` for a long run)."""


def _load(path: Path) -> dict[str, Any]:
    return orjson.loads(path.read_bytes())


def _check(case: dict[str, Any], workdir: Path, expected: dict[str, Any] | None = None) -> None:
    """The case runs as the contract says: refused when built, or with the oracle's outputs."""
    if "refused" in case:
        with pytest.raises(ConfigError) as refused:
            run_case(case, str(workdir))
        assert case["refused"] in str(refused.value)
        return
    want = expected if expected is not None else case.get("expected") or tck.oracle().expected(case)
    problems = tck.runner().compare(want, run_case(case, str(workdir)))
    assert not problems, f"{case.get('name')}:\n" + "\n".join(problems)


def _check_generated(rng: random.Random, count: int, tmp_path: Path) -> None:
    """`count` random cases of the generator, each in its own work directory."""
    gen = tck.generator()
    for i in range(count):
        workdir = tmp_path / f"case{i}"
        workdir.mkdir()
        _check(gen.random_case(rng, i, 400), workdir)


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_public_case_matches_stored_expectations(path: Path, tmp_path: Path) -> None:
    _check(_load(path), tmp_path)


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_public_case_matches_the_oracle(path: Path, tmp_path: Path) -> None:
    """The stored expectations are the oracle's: recomputing them here changes nothing."""
    case = _load(path)
    if "refused" not in case:
        assert tck.oracle().expected(case) == case["expected"]
    _check(case, tmp_path)


def test_generated_cases_of_an_untuned_seed(tmp_path: Path) -> None:
    """`GENERATED` random cases of a seed drawn for this run (printed, to rerun a failure)."""
    seed = int(os.environ.get("STREAMCORE_TCK_SEED", time.time_ns() % 2**32))
    print(f"generated TCK cases: seed {seed} (STREAMCORE_TCK_SEED={seed} reruns them)")
    _check_generated(random.Random(seed), GENERATED, tmp_path)


@pytest.mark.parametrize("seed", [3, 17])
def test_generated_cases(seed: int, tmp_path: Path) -> None:
    """Forty random cases per fixed seed, all shapes the generator knows."""
    _check_generated(random.Random(seed), 40, tmp_path)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(min_value=0, max_value=2**32 - 1), max_arrivals=st.sampled_from([60, 200, 700]))
def test_random_cases_property(seed: int, max_arrivals: int, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Hypothesis picks seeds and sizes; every random case must agree with the oracle."""
    case = tck.generator().random_case(random.Random(seed), 0, max_arrivals)
    _check(case, tmp_path_factory.mktemp("prop"))


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_public_case_on_the_generic_aggregation_path(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The generated (fused) window code and the generic create/add/merge/result path agree."""
    monkeypatch.setenv("STREAMCORE_GENERIC_AGGREGATIONS", "1")
    _check(_load(path), tmp_path)


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_public_case_on_the_pure_python_kernels(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The compiled kernels' Python references give the same results (as ``STREAMCORE_PURE_PYTHON=1``)."""
    use_python_references(monkeypatch)
    _check(_load(path), tmp_path)


def test_generated_cases_on_the_generic_aggregation_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMCORE_GENERIC_AGGREGATIONS", "1")
    _check_generated(random.Random(99), 40, tmp_path)


def test_generated_cases_on_the_python_references(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Forty random cases on the compiled kernels' Python references (the other tests run the kernels)."""
    use_python_references(monkeypatch)
    _check_generated(random.Random(5), 40, tmp_path)
