"""Run settings: one frozen object, every field also readable from a ``STREAMCORE_*`` variable."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from streamcore.base.durations import to_ms
from streamcore.base.errors import ConfigError
from streamcore.serving.guards import LOOPBACK_HOSTS

ENV_PREFIX = "STREAMCORE_"


@dataclass(frozen=True, slots=True)
class RunSettings:
    """How a worker runs an app (not what the app computes).

    state_dir: RocksDB state, one database per task (``STREAMCORE_STATE_DIR``).
    broker: ``embedded:<dir>`` (the default, on local disk) or ``kafka://host:port``.
    checkpoint_interval_ms: processing time between checkpoints.
    max_batch_records: records per batch; bounds how long the loop is busy between yields.
    until_end: stop once every source partition is exhausted (fires all windows).
    fsync: ``never``: log appends and checkpoints survive kill -9 (they are in the OS page
        cache); ``always``: they are synced to disk as well, and survive power loss.
    http: ``host:port`` to serve features, scores, snapshots, health and metrics on ("" = off).
    advertise: the URL other Kafka workers send this worker's entity requests to
        (``STREAMCORE_ADVERTISE``; default ``http://<http host, or this host's name>:<port>``).
    http_token: when set, every HTTP endpoint but ``/health`` and ``/metrics`` needs
        ``Authorization: Bearer <token>`` (``STREAMCORE_HTTP_TOKEN``; set it wherever the port
        is reachable by others, as the deploy files do).
    mcp: serve the app's features and models as MCP tools on the HTTP port, at ``/mcp``
        (``STREAMCORE_MCP``; off unless asked; see `streamcore.serving.agent_tools`).
    mcp_token: the bearer token ``/mcp`` needs (``STREAMCORE_MCP_TOKEN``); required when
        the HTTP port listens beyond loopback. Without it, ``/mcp`` takes the `http_token`.
    offset_reset: what to do when a checkpointed position is past the end of its embedded
        log partition (its tail was lost): ``none`` stops with `OffsetOutOfRange`; ``latest``
        goes on from the partition's end (``STREAMCORE_OFFSET_RESET``).
    """

    state_dir: Path = Path(".streamcore/state")
    broker: str = "embedded:.streamcore/log"
    checkpoint_interval_ms: int = 5_000
    max_batch_records: int = 2_000
    until_end: bool = False
    fsync: str = "never"
    http: str = ""
    advertise: str = ""
    http_token: str = ""
    mcp: bool = False
    mcp_token: str = ""
    offset_reset: str = "none"

    def __post_init__(self) -> None:
        if self.max_batch_records < 1:
            raise ConfigError("max_batch_records", f"must be >= 1, got {self.max_batch_records}")
        if self.checkpoint_interval_ms < 1:
            raise ConfigError("checkpoint_interval_ms", f"must be > 0, got {self.checkpoint_interval_ms}")
        if self.offset_reset not in ("none", "latest"):
            raise ConfigError("offset_reset", f"must be 'none' or 'latest', got {self.offset_reset!r}")
        if self.fsync not in ("never", "always"):
            raise ConfigError("fsync", f"must be 'never' or 'always', got {self.fsync!r}")
        if self.http:
            self.http_address  # noqa: B018 - validate
        if self.mcp:
            self._check_mcp()
        if self.advertise and not self.advertise.startswith(("http://", "https://")):
            raise ConfigError("advertise", f"expected http://host:port, got {self.advertise!r}")
        if not (self.broker.startswith("embedded:") or self.broker.startswith("kafka://")):
            raise ConfigError("broker", f"expected embedded:<dir> or kafka://host:port, got {self.broker!r}")

    def _check_mcp(self) -> None:
        if not self.http:
            raise ConfigError("mcp", "MCP is served on the worker's HTTP port: give --http HOST:PORT too")
        host = self.http_address[0]
        if host not in LOOPBACK_HOSTS and not self.mcp_token:
            raise ConfigError(
                "mcp_token",
                f"MCP on {host}, beyond loopback, needs a token: set --mcp-token / STREAMCORE_MCP_TOKEN",
            )

    @property
    def http_address(self) -> tuple[str, int]:
        host, _, port = self.http.rpartition(":")
        if not host or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ConfigError("http", f"expected host:port, got {self.http!r}")
        return host, int(port)

    @property
    def embedded_log_dir(self) -> Path:
        if not self.broker.startswith("embedded:"):
            raise ConfigError("broker", f"{self.broker!r} is not the embedded log")
        return Path(self.broker.removeprefix("embedded:"))

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> RunSettings:
        """Defaults, then ``STREAMCORE_<FIELD>`` variables, then explicit `overrides` (None = unset)."""
        env = dict(os.environ) if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is not None:
                values[f.name] = _parse(f.name, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "state_dir" in values:
            values["state_dir"] = Path(values["state_dir"])
        return replace(cls(), **values)


def _parse(name: str, raw: str) -> Any:
    if name in ("checkpoint_interval_ms",):
        return to_ms(raw if not raw.isdigit() else int(raw), ENV_PREFIX + name.upper())
    if name == "max_batch_records":
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(ENV_PREFIX + name.upper(), f"expected an integer, got {raw!r}") from None
    if name in ("until_end", "mcp"):
        return raw.lower() in ("1", "true", "yes")
    return raw
