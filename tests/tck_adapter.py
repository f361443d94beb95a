"""The adapter for the shared TCK's runner: streamcore's conformance adapter, as the tests use it.

    python ../shared/tck/run.py --adapter tests/tck_adapter.py

The adapter itself is ``chaos/conformance/streamcore_adapter.py`` (``python -m chaos tck``
runs the project's own conformance cases through it); the runner puts only this file's
directory on the path, so the repository's root is added here.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chaos.conformance.streamcore_adapter import run_case

__all__ = ["run_case"]
