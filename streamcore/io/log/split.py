"""Cutting a frame body into its records' values and keys: the reference, and the compiled kernel.

`split_values` and `split_keys` are the per-record part of decoding a frame (see
`streamcore.io.log.format.Frame`). `_split.pyx` implements the same two functions in
Cython; it is used when it was built (``pip install`` builds it where a C compiler is
present) unless ``STREAMCORE_PURE_PYTHON=1`` asks for this module's Python, which stays
the reference: ``tests/unit/test_log.py`` checks both on the same frames.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from itertools import accumulate, pairwise

from streamcore.base import kernels


def split_values(body: bytes, pos: int, lengths: array[int]) -> list[bytes]:
    """The values laid out back to back from `pos`, one per length."""
    ends = list(accumulate(lengths, initial=pos))
    return [body[a:b] for a, b in pairwise(ends)]


def split_keys(body: bytes, pos: int, lengths: array[int]) -> tuple[list[bytes | None], int]:
    """The keys from `pos` (length -1: no key) and the position after them."""
    keys: list[bytes | None] = []
    for n in lengths:
        if n < 0:
            keys.append(None)
        else:
            keys.append(body[pos : pos + n])
            pos += n
    return keys, pos


def _load() -> tuple[Callable[..., list[bytes]], Callable[..., tuple[list[bytes | None], int]], bool]:
    compiled = kernels.load("streamcore.io.log._split", "frame decoding")
    if compiled is None:
        return split_values, split_keys, False
    return compiled.split_values, compiled.split_keys, True


fast_split_values, fast_split_keys, COMPILED = _load()
"""What `Frame` calls: the compiled kernel where it is built and not switched off, else the reference."""
