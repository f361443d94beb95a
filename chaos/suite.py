"""The chaos suite's parts: a scenario, the verdict of one run of it, and the registry.

A scenario drives real processes (``streamcore run`` / ``streamcore worker``, a
producer, a broker), injects its fault, lets the system recover and judges the final
state exactly. `run_scenarios` runs the chosen ones `runs` times each and returns every
verdict; `chaos.report` writes them down.
"""

from __future__ import annotations

import random
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Verdict:
    """What one run of a scenario found. `problems` empty means it passed."""

    scenario: str
    broker: str
    run: int
    seed: int
    problems: list[str] = field(default_factory=list)
    records_in: int = 0
    records_out: int = 0
    recovery_s: float | None = None
    """From the fault's end to the system having caught up again (where the scenario measures it)."""
    peak_rss_kib: int | None = None
    seconds: float = 0.0
    skipped: str = ""
    """Why the scenario could not run here (it then counts as passed, and the report says so)."""
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


@dataclass(frozen=True)
class Context:
    """What a scenario run gets: its own directory, its seed, the input size, and the broker."""

    workdir: Path
    seed: int
    events: int
    broker: str
    """``embedded``, or ``kafka://host:port`` of a running Kafka-protocol broker."""
    broker_pid: int | None = None
    """The broker's process (Kafka): for scenarios that stop it."""

    @property
    def rnd(self) -> random.Random:
        return random.Random(self.seed)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    brokers: tuple[str, ...]
    """Which brokers it runs on: ``embedded``, ``kafka``, or both."""
    run: Callable[[Context, Verdict], None]
    """Runs the scenario, adding to the verdict what it finds."""


SCENARIOS: dict[str, Scenario] = {}


Run = Callable[[Context, Verdict], None]


def scenario(name: str, description: str, brokers: tuple[str, ...]) -> Callable[[Run], Run]:
    """Register the decorated function as scenario `name`."""

    def register(fn: Run) -> Run:
        SCENARIOS[name] = Scenario(name, description, brokers, fn)
        return fn

    return register


def run_one(chosen: Scenario, context: Context, run: int) -> Verdict:
    """One run; an exception in the harness or the system is a failed run with its reason."""
    verdict = Verdict(chosen.name, context.broker.split(":")[0], run, context.seed)
    started = time.monotonic()
    context.workdir.mkdir(parents=True, exist_ok=True)
    try:
        chosen.run(context, verdict)
    except Exception as exc:  # noqa: BLE001 - whatever broke, the run failed: say how, go on with the next
        verdict.problems.append(f"{type(exc).__name__}: {exc}")
        verdict.notes["traceback"] = traceback.format_exc(limit=5)
    verdict.seconds = round(time.monotonic() - started, 2)
    return verdict
