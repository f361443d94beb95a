"""Kafka client settings (``STREAMCORE_KAFKA_*``) and the partitioner Kafka's clients use."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from aiokafka.partitioner import murmur2

from streamcore.base.errors import ConfigError

ENV_PREFIX = "STREAMCORE_KAFKA_"


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    """Client settings; each field can be set with ``STREAMCORE_KAFKA_<FIELD>``.

    For latency keep ``linger_ms`` at 0-5 and ``fetch_max_wait_ms`` low; for throughput
    raise ``linger_ms`` (10-50), ``max_batch_size`` and use ``compression_type`` lz4 or
    zstd. ``create_topics`` creates missing app topics (otherwise a missing topic is an
    error); internal topics (state changelogs) are always created, compacted.
    """

    bootstrap_servers: str = "127.0.0.1:9092"
    group_id: str = ""
    """Consumer group of the app's workers; default: the app's name."""
    client_id: str = "streamcore"
    create_topics: bool = False
    replication_factor: int = 1
    linger_ms: int = 2
    max_batch_size: int = 256 * 1024
    compression_type: str = ""
    acks: str = "all"
    fetch_max_wait_ms: int = 50
    fetch_min_bytes: int = 1
    max_partition_fetch_bytes: int = 1 << 20
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000
    max_poll_interval_ms: int = 300_000

    @classmethod
    def from_url(cls, url: str, env: Mapping[str, str] | None = None) -> KafkaSettings:
        """``kafka://host:port[,host:port]``, then ``STREAMCORE_KAFKA_*`` variables."""
        if not url.startswith("kafka://") or not url.removeprefix("kafka://"):
            raise ConfigError("broker", f"expected kafka://host:port, got {url!r}")
        env = os.environ if env is None else env
        servers = url.removeprefix("kafka://").rstrip("/")
        for server in servers.split(","):
            host, _, port = server.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                what = "has no port" if not host else f"has port {port!r}, not a number from 1 to 65535"
                raise ConfigError("broker", f"{server!r} in {url!r} {what} (expected kafka://host:port)")
        values: dict[str, Any] = {"bootstrap_servers": servers}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is None or f.name == "bootstrap_servers":
                continue
            if f.type in ("int", int):
                try:
                    values[f.name] = int(raw)
                except ValueError:
                    raise ConfigError(ENV_PREFIX + f.name.upper(), f"expected an integer, got {raw!r}") from None
            elif f.type in ("bool", bool):
                values[f.name] = raw.lower() in ("1", "true", "yes")
            else:
                values[f.name] = raw
        return replace(cls(), **values)

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap_servers}"


def kafka_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives a keyed record (murmur2)."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions
