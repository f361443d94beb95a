"""The README's examples are code: run together, in order, they type-check under mypy --strict.

mypy cannot follow an editable install's import hook, so the test lays out the package
as it installs (``streamcore/`` with ``operators/`` and ``apps/`` inside, as
``package-dir`` maps them) out of symbolic links in a temporary directory.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def installed_layout(into: Path) -> Path:
    """`into`/streamcore: links to every entry of streamcore/, plus operators/ and apps/ under their installed names."""
    package = into / "streamcore"
    package.mkdir(parents=True)
    for entry in (ROOT / "streamcore").iterdir():
        if entry.name != "__pycache__":
            (package / entry.name).symlink_to(entry)
    (package / "operators").symlink_to(ROOT / "operators")
    (package / "apps").symlink_to(ROOT / "apps")
    return into


def readme_examples() -> str:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    assert len(blocks) >= 2, "the README's Python examples went missing"
    return "\n".join(blocks)


def mypy_on_the_installed_layout(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """mypy ARGS in `tmp_path`, with streamcore found as it installs (skips if mypy is missing)."""
    mypy = shutil.which("mypy") or str(Path(sys.executable).parent / "mypy")
    if not Path(mypy).exists():
        pytest.skip("mypy is not installed (pip install -e '.[test]')")
    layout = installed_layout(tmp_path / "site")
    return subprocess.run(
        [mypy, "--no-incremental", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env={"MYPYPATH": str(layout), "PATH": str(Path(sys.executable).parent)},
    )


def test_the_readme_examples_pass_mypy_strict(tmp_path: Path) -> None:
    example = tmp_path / "readme_examples.py"
    example.write_text(readme_examples())
    result = mypy_on_the_installed_layout(tmp_path, "--strict", "--follow-imports=silent", str(example))
    assert result.returncode == 0, result.stdout + result.stderr
