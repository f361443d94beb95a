"""A logging filter that lets a client library's repeated message through once per interval.

While its broker is down, aiokafka logs the same connection errors many times a second
(about 200 lines/s here), which buries the worker's own lines ("broker unreachable ...").
`Repeats` passes each message template of the chosen loggers once per `every_s`.
"""

from __future__ import annotations

import logging
import time


class Repeats(logging.Filter):
    """Drop a record of a logger under `prefix` whose message template was let through less than `every_s` ago."""

    def __init__(self, prefix: str = "aiokafka", every_s: float = 10.0) -> None:
        super().__init__()
        self.prefix = prefix
        self.every_s = every_s
        self._last: dict[tuple[str, str], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self.prefix):
            return True
        key = (record.name, str(record.msg))  # the template: a bounded set, unlike the formatted text
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.every_s:
            return False
        self._last[key] = now
        return True
