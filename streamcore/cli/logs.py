"""How `streamcore run` and `streamcore worker` log: level, format, and aiokafka's repeats.

``--log-level`` (``$STREAMCORE_LOG_LEVEL``; default ``info`` for a worker, whose log says
which partitions it gained, lost and restored, and ``warning`` for ``run``) and
``--log-format text|json`` (``$STREAMCORE_LOG_FORMAT``). The JSON format is one object
per line, ``{"time", "level", "logger", "message"}`` (plus ``"error"`` with a traceback),
for log collectors that parse lines.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys

import orjson

from streamcore.base.errors import ConfigError
from streamcore.cli.log_repeats import Repeats

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonLines(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            doc["error"] = self.formatException(record.exc_info)
        return orjson.dumps(doc).decode()


def configure(level: str, log_format: str) -> None:
    """Log to stderr at `level` in `log_format`; aiokafka's repeated messages once per 10 s."""
    if level not in LEVELS:
        raise ConfigError("--log-level", f"expected one of {', '.join(LEVELS)}, got {level!r}")
    if log_format not in FORMATS:
        raise ConfigError("--log-format", f"expected one of {', '.join(FORMATS)}, got {log_format!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(Repeats("aiokafka", every_s=10.0))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))
