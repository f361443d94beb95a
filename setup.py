"""Build script: compiles the Cython kernels (every ``.pyx`` under ``streamcore/``).

Every `.pyx` module has a pure-Python twin that stays the reference
implementation. If Cython or a C compiler is missing, or the build of an
extension fails, a plain install goes on without it, says so once, and
streamcore runs on the pure-Python path (``streamcore --version`` says which path
is active). ``STREAMCORE_REQUIRE_EXTENSIONS=1`` (set by CI and the Dockerfile)
makes any such failure fail the install instead. ``STREAMCORE_NO_EXTENSIONS=1``
skips the build on purpose.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).parent


REQUIRED = os.environ.get("STREAMCORE_REQUIRE_EXTENSIONS", "") in ("1", "true", "yes")


class OptionalBuildExt(build_ext):
    """A build_ext that skips a failed extension with a warning, unless they are required."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:
            if REQUIRED:
                raise
            print(f"streamcore: WARNING: C extensions not built ({exc}); running on pure Python", file=sys.stderr)

    def build_extension(self, ext) -> None:  # type: ignore[no-untyped-def]
        try:
            super().build_extension(ext)
        except Exception as exc:
            if REQUIRED:
                raise
            print(f"streamcore: WARNING: {ext.name} not built ({exc}); running on pure Python", file=sys.stderr)


def extensions() -> list:
    if os.environ.get("STREAMCORE_NO_EXTENSIONS"):
        return []
    sources = sorted(str(p.relative_to(HERE)) for p in (HERE / "streamcore").rglob("*.pyx"))
    if not sources:
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        if REQUIRED:
            raise
        print("streamcore: WARNING: Cython not available; running on pure Python", file=sys.stderr)
        return []
    return cythonize(sources, language_level=3, quiet=True)


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
