"""Build script: compiles the Cython accelerators when a compiler is present.

Every `.pyx` module has a pure-Python twin that stays the reference
implementation. If Cython or a C compiler is missing, or the build of an
extension fails, the install goes on without it and streamcore runs on the
pure-Python path (``streamcore.accel.ACCELERATED`` says which one is active).
Set ``STREAMCORE_NO_EXTENSIONS=1`` to skip the build on purpose.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).parent


class OptionalBuildExt(build_ext):
    """A build_ext that never fails the install: a failed extension is skipped."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any compiler failure means "no accelerator"
            print(f"streamcore: C extensions not built ({exc}); using pure Python", file=sys.stderr)

    def build_extension(self, ext) -> None:  # type: ignore[no-untyped-def]
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            print(f"streamcore: extension {ext.name} not built ({exc}); using pure Python", file=sys.stderr)


def extensions() -> list:
    if os.environ.get("STREAMCORE_NO_EXTENSIONS"):
        return []
    sources = sorted(str(p.relative_to(HERE)) for p in (HERE / "streamcore").rglob("*.pyx"))
    if not sources:
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("streamcore: Cython not available; using pure Python", file=sys.stderr)
        return []
    return cythonize(sources, language_level=3, quiet=True)


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
