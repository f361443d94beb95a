"""Shared test setup: the tests directory is importable (tck_adapter, tck_shared, helpers)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))  # chaos/ tools
