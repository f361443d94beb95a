"""The compiled kernels: really loaded where they must be, and equal to their Python references."""

from __future__ import annotations

import os
import subprocess
import sys
from array import array

import pytest
from helpers import RecordingContext
from hypothesis import given
from hypothesis import strategies as st
from streamcore.operators import Count, Tumbling, compiled_windows, features

from streamcore.io import merge
from streamcore.io.log import split

REQUIRED = os.environ.get("STREAMCORE_REQUIRE_EXTENSIONS") in ("1", "true", "yes") or os.environ.get("CI") == "true"


def test_the_compiled_kernels_are_loaded() -> None:
    """CI installs with STREAMCORE_REQUIRE_EXTENSIONS=1: the fast path must be the one running."""
    if not split.COMPILED and not REQUIRED:
        pytest.skip("the kernels were not built here (no C compiler?); `streamcore --version` says so")
    assert split.COMPILED, "installed with STREAMCORE_REQUIRE_EXTENSIONS=1, yet streamcore.io.log._split did not load"
    assert split.fast_split_values is not split.split_values
    assert compiled_windows.COMPILED, "streamcore.operators._fixed_kernel did not load"
    operator = (
        Tumbling(10).aggregate_operator({"n": Count()}, allowed_lateness_ms=0, name="w").build(RecordingContext())
    )
    assert type(operator).__name__ == "FixedKernel", "tumbling windows do not run on the kernel"
    assert features._kernel is not None, "streamcore.operators._feature_kernel did not load"


def test_version_says_which_path_is_active() -> None:
    out = subprocess.run([sys.executable, "-m", "streamcore.cli.main", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("streamcore 0.1.0")
    assert (
        "compiled kernels: feature views, frame decoding, partition merge, windows" if split.COMPILED else "pure Python"
    ) in out.stdout
    pure = subprocess.run(
        [sys.executable, "-m", "streamcore.cli.main", "--version"],
        capture_output=True,
        text=True,
        env={**os.environ, "STREAMCORE_PURE_PYTHON": "1"},
    )
    assert "pure Python" in pure.stdout


records = st.lists(st.one_of(st.none(), st.binary(max_size=40)), max_size=40)


@pytest.mark.skipif(not split.COMPILED, reason="the compiled kernel is not built here")
@given(values=records, prefix=st.binary(max_size=8))
def test_the_compiled_split_equals_the_reference(values: list[bytes | None], prefix: bytes) -> None:
    from streamcore.io.log import _split  # type: ignore[attr-defined]

    body = prefix + b"".join(v for v in values if v is not None) * 2
    value_lens = array("I", [len(v or b"") for v in values])
    key_lens = array("i", [-1 if v is None else len(v) for v in values])
    start = len(prefix)
    assert _split.split_values(body, start, value_lens) == split.split_values(body, start, value_lens)
    assert _split.split_keys(body, start, key_lens) == split.split_keys(body, start, key_lens)


@pytest.mark.skipif(not split.COMPILED, reason="the compiled kernel is not built here")
def test_the_compiled_split_refuses_lengths_past_the_body() -> None:
    from streamcore.io.log import _split  # type: ignore[attr-defined]

    with pytest.raises(ValueError, match="past the end"):
        _split.split_values(b"abc", 0, array("I", [2, 2]))


@pytest.mark.skipif(not merge.COMPILED, reason="the compiled merge planner is not built here")
@given(
    heads=st.lists(
        st.one_of(st.none(), st.lists(st.integers(-(2**40), 2**40), max_size=12).map(sorted)), min_size=1, max_size=6
    ),
    tick=st.integers(1, 300),
    max_records=st.integers(1, 40),
    data=st.data(),
)
def test_the_compiled_merge_plans_the_runs_of_the_reference(
    heads: list[list[int] | None], tick: int, max_records: int, data: st.DataObject
) -> None:
    from streamcore.io import _merge  # type: ignore[attr-defined]

    cursors = [0 if h is None else data.draw(st.integers(0, len(h))) for h in heads]
    stamps = [None if h is None else array("q", h) for h in heads]
    reference_cursors, compiled_cursors = list(cursors), list(cursors)
    labels = [f"partition {i}" for i in range(len(heads))]
    expected = merge.plan_runs(stamps, reference_cursors, tick, max_records, labels)
    assert _merge.plan_runs(stamps, compiled_cursors, tick, max_records, labels) == expected
    assert compiled_cursors == reference_cursors
