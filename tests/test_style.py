"""The code base passes the linter (ruff) and the type checker (mypy --strict), configured in pyproject.toml."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_is_clean() -> None:
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    result = subprocess.run([ruff, "check", str(ROOT)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean(tmp_path: Path) -> None:
    """The package as it installs (streamcore, with streamcore.operators and streamcore.apps)
    type-checks under mypy --strict (settings in pyproject.toml)."""
    from test_readme_types import mypy_on_the_installed_layout

    result = mypy_on_the_installed_layout(tmp_path, "--config-file", str(ROOT / "pyproject.toml"), "-p", "streamcore")
    assert result.returncode == 0, result.stdout + result.stderr
