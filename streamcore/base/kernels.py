"""The compiled kernels: loading each one, and the switch back to the Python references.

Every Cython module has a pure-Python twin that stays the reference. `load` returns the
compiled module where it was built, unless ``STREAMCORE_PURE_PYTHON=1`` asks for the
references; it remembers what it loaded, so that ``streamcore --version`` can say which
path runs (`active`).
"""

from __future__ import annotations

import os
from importlib import import_module
from types import ModuleType

_loaded: dict[str, bool] = {}


def pure_python_requested() -> bool:
    """True if ``STREAMCORE_PURE_PYTHON`` asks for the Python references."""
    return os.environ.get("STREAMCORE_PURE_PYTHON", "") in ("1", "true", "yes")


def load(module: str, label: str) -> ModuleType | None:
    """The compiled `module` (named `label` for people), or None: use the Python reference."""
    compiled: ModuleType | None = None
    if not pure_python_requested():
        try:
            compiled = import_module(module)
        except ImportError:
            compiled = None
    _loaded[label] = compiled is not None
    return compiled


def active() -> dict[str, bool]:
    """Each kernel loaded so far, and whether its compiled module is the one running."""
    return dict(_loaded)
