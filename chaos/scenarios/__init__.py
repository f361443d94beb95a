"""The scenarios; importing this package registers them all (`chaos.suite.SCENARIOS`)."""

from chaos.scenarios import (
    broker_pause,
    clock_skew,
    disk_full,
    http_partition,
    kill9,
    log_damage,
    partition,
    rebalance_storm,
    slow_sink,
    stalled_disk,
    zombie,
)

__all__ = [
    "broker_pause",
    "clock_skew",
    "disk_full",
    "http_partition",
    "kill9",
    "log_damage",
    "partition",
    "rebalance_storm",
    "slow_sink",
    "stalled_disk",
    "zombie",
]
