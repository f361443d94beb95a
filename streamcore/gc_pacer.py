"""Keep CPython's cyclic garbage collector from pausing the worker for long.

A full collection scans every tracked object, so with a large in-memory state (windows,
cached entities) it pauses the event loop for tens of milliseconds, which shows up as the
tail latency of requests served on that loop. Long-lived state is not garbage, so the
pacer moves objects that survived a collection into the permanent generation
(``gc.freeze``) about once a second; automatic collections then only scan what was
allocated since. Objects that die later are still freed by reference counting, which is
how engine state goes away; only reference cycles created and left behind within one
freeze interval can outlive it, and each `stop` unfreezes everything so they are
collected then.
"""

from __future__ import annotations

import gc
import time

FREEZE_EVERY_S = 1.0


class GcPacer:
    def __init__(self, every_s: float = FREEZE_EVERY_S) -> None:
        self.every_s = every_s
        self._next = 0.0
        self._running = False

    def start(self) -> None:
        self._running = True
        self._next = time.monotonic() + self.every_s
        gc.collect()
        gc.freeze()

    def tick(self) -> None:
        """Call often (the runner does, when it publishes); freezes survivors when due."""
        if self._running and time.monotonic() >= self._next:
            gc.collect(1)  # young garbage, including short-lived cycles, goes first
            gc.freeze()
            self._next = time.monotonic() + self.every_s

    def stop(self) -> None:
        if self._running:
            self._running = False
            gc.unfreeze()
