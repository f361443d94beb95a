"""SIGINT and SIGTERM as a graceful stop: finish the batch, checkpoint, stop."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def stop_on_signals(stop: Callable[[str], None], *, install: bool = True) -> Iterator[None]:
    """While inside, SIGINT and SIGTERM call ``stop(signal name)`` (only in the main thread)."""
    loop = asyncio.get_running_loop()
    installed = []
    if install:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop, sig.name)
                installed.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass  # not the main thread: the embedding program handles signals
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
