"""Tools some tests need from Debian (chromium, promtool): found on PATH, or installed by the project's script.

`require(command, script)` returns the command's path, installing it first with
``tests/tools/<script>`` (apt; needs root) when it is missing. Where that cannot be done
the test is skipped with the reason, except under CI (``CI`` set): there it fails,
because CI must run every test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest

TOOLS = Path(__file__).parent / "tools"


@cache
def _installed(command: str, script: str) -> str | None:
    found = shutil.which(command)
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        done = subprocess.run(["bash", str(TOOLS / script)], capture_output=True, text=True, timeout=900, check=False)
        found = shutil.which(command) if done.returncode == 0 else None
    return found


def require(command: str, script: str) -> str:
    found = _installed(command, script)
    if found is None:
        reason = f"no {command} on PATH, and {TOOLS / script} could not install it (it needs root and apt-get)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def promtool_problems(exposition: bytes) -> str:
    """What ``promtool check metrics`` says about a Prometheus text exposition (empty: nothing)."""
    checked = subprocess.run(
        [require("promtool", "install-promtool.sh"), "check", "metrics"], input=exposition, capture_output=True
    )
    return (checked.stdout + checked.stderr).decode().strip() if checked.returncode else ""
