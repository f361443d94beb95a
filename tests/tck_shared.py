"""The shared TCK (``../shared/tck``) as a test dependency: its oracle, runner and generator.

The modules are loaded from the shared directory exactly as they are, so the tests
judge streamcore by the contract's own reference model.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

TCK_DIR = Path(__file__).resolve().parents[2] / "shared" / "tck"


def available() -> bool:
    return (TCK_DIR / "oracle.py").is_file() and (TCK_DIR / "cases").is_dir()


def _load(name: str, file: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, TCK_DIR / file)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def oracle() -> ModuleType:
    """The shared oracle.py (`oracle().expected(case)`)."""
    return _load("tck_shared_oracle", "oracle.py")


def runner() -> ModuleType:
    """The shared run.py (for its `compare`)."""
    return _load("tck_shared_run", "run.py")


def generator() -> ModuleType:
    """The shared gen.py (it imports `oracle` by name, so the TCK directory goes on sys.path)."""
    if str(TCK_DIR) not in sys.path:
        sys.path.insert(0, str(TCK_DIR))
    return _load("tck_shared_gen", "gen.py")
