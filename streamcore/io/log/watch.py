"""Wake-ups on appends made by other processes, so that a live reader need not poll.

A producer in another process appends to a partition's segment files; the reader's
process hears of it through Linux inotify on the partition directories: the kernel
reports each write, and the event loop wakes the waiting reader at once. Where inotify
is not available (not Linux, or out of watches) `DirectoryWatch.start` returns None and
readers poll, as before.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

log = logging.getLogger("streamcore.log")

_IN_NONBLOCK = 0o4000
_IN_CLOEXEC = 0o2000000
_IN_MODIFY = 0x002
_IN_MOVED_TO = 0x080
_IN_CREATE = 0x100
_MASK = _IN_MODIFY | _IN_CREATE | _IN_MOVED_TO
"""A segment written, or a new one created: both mean there may be records to read."""


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.inotify_init1  # noqa: B018 - present?
    except (OSError, AttributeError):
        return None
    return libc


class DirectoryWatch:
    """Calls `callback` on the event loop whenever a file in one of the directories is written."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int, callback: Callable[[], None]) -> None:
        self._loop = loop
        self._fd = fd
        self._callback = callback
        loop.add_reader(fd, self._on_events)

    @classmethod
    def start(cls, directories: Sequence[Path], callback: Callable[[], None]) -> DirectoryWatch | None:
        """Watch `directories` (from a running event loop); None where inotify is unavailable."""
        libc = _libc()
        if libc is None:
            return None
        fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            log.info("inotify unavailable (%s): readers poll for appends", os.strerror(ctypes.get_errno()))
            return None
        for directory in directories:
            if libc.inotify_add_watch(fd, os.fsencode(directory), _MASK) < 0:
                log.info("cannot watch %s (%s): readers poll for appends", directory, os.strerror(ctypes.get_errno()))
                os.close(fd)
                return None
        return cls(asyncio.get_running_loop(), fd, callback)

    def _on_events(self) -> None:
        try:
            while os.read(self._fd, 65536):  # the events themselves do not matter, only that there were some
                pass
        except BlockingIOError:
            pass
        self._callback()

    def close(self) -> None:
        if self._fd >= 0:
            self._loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = -1
