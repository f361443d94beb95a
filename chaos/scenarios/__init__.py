"""The scenarios; importing this package registers them all (`chaos.suite.SCENARIOS`)."""

from chaos.scenarios import broker_pause, clock_skew, kill9, log_damage, zombie

__all__ = ["broker_pause", "clock_skew", "kill9", "log_damage", "zombie"]
