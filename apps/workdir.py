"""Where a demo keeps its log and state: a directory of its own, removed at the end unless asked to keep it."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def demo_directory(
    given: Path | None, keep: bool, prefix: str, kept: Callable[[Path], None] | None = None
) -> Iterator[Path]:
    """`given`, or a new temporary directory; afterwards it is removed, unless it was `given`
    or `keep` is set: then `kept(directory)` says where it is (the default prints the path)."""
    workdir = given or Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield workdir
    finally:
        if keep or given:
            (kept or (lambda d: print(f"the log and state are in {d}")))(workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
