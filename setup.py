"""Build script: compiles the Cython kernels (every ``.pyx`` under ``streamcore/`` and ``operators/``).

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

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).parent
PACKAGES = {"streamcore": "streamcore", "streamcore.operators": "operators"}
"""Where each package's sources live (as in pyproject's package-dir): a kernel's module name."""


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


def _module_name(package: str, relative: Path) -> str:
    """``streamcore.operators._fixed_kernel`` for ``_fixed_kernel.pyx`` in the operators folder."""
    return ".".join((package, *relative.with_suffix("").parts))


def extensions() -> list:
    if os.environ.get("STREAMCORE_NO_EXTENSIONS"):
        return []
    kernels = [
        Extension(_module_name(package, pyx.relative_to(HERE / folder)), [str(pyx.relative_to(HERE))])
        for package, folder in PACKAGES.items()
        for pyx in sorted((HERE / folder).rglob("*.pyx"))
    ]
    if not kernels:
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        if REQUIRED:
            raise
        print("streamcore: WARNING: Cython not available; running on pure Python", file=sys.stderr)
        return []
    return cythonize(kernels, language_level=3, quiet=True)


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
