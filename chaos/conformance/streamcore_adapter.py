"""The conformance adapter: runs a case on streamcore's public API.

State is real (RocksDB under `workdir`); outputs, late records and dead letters are
real topics of the embedded log, read back after the run. The input arrivals are
played by `streamcore.testing.ScriptedSource`, which gives each arrival its own
processing time through a `ManualClock` and places the checkpoint and crash markers.

The window operator under test is `operator(keyed_stream, job)`: by default streamcore's
own (`window_aggregate`); ``python -m chaos tck --operator MODULE:FUNCTION`` runs the same
cases, with the same runtime, state and crashes, on an operator of your own. It imports
nothing but streamcore, so the shared runner can load it by path too:

    python ../shared/tck/run.py --adapter chaos/conformance/streamcore_adapter.py
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from streamcore.operators import window_from_dict

from streamcore import App, Control, EventTime, ManualClock, Runner, RunSettings, SimulatedCrash, Stream
from streamcore.base.deadletter import DeadLetter
from streamcore.io.embedded import EmbeddedBroker
from streamcore.io.log import EmbeddedLog
from streamcore.testing import Arrival, ScriptedBroker, ScriptedSource, results_table

NEVER_MS = 10**12  # no interval checkpoints: only the case's own


Operator = Callable[[Stream, dict[str, Any]], Stream]
"""Applies the operator under test to the keyed input stream: ``operator(keyed, job) -> stream``."""


def window_aggregate(keyed: Stream, job: dict[str, Any]) -> Stream:
    """streamcore's window operator with the job's window, lateness and aggregations."""
    window = window_from_dict(job["window"])
    return keyed.window(window, allowed_lateness=job.get("allowed_lateness_ms", 0)).aggregate(**job["aggs"])


def build_app(job: dict[str, Any], partitions: int, operator: Operator = window_aggregate) -> App:
    app = App("tck")
    source = app.topic("input", partitions=partitions)
    results = app.topic("results")
    event_time = EventTime(
        job["ts"],
        max_out_of_orderness=job.get("max_out_of_orderness_ms", 0),
        idle_timeout=job.get("idle_timeout_ms"),
        max_future_skew=job.get("max_future_skew_ms"),
    )
    keyed = app.stream(source, event_time=event_time).key_by(job["key"])
    operator(keyed, job).to(results)
    return app


def _script(case: dict[str, Any]) -> tuple[list[Arrival | Control], list[Arrival | Control]]:
    """The first run's script (with checkpoint and crash markers) and the rerun's."""
    arrivals = [Arrival(a["p"], a["at"], a["data"].encode()) for a in case["arrivals"]]
    recovery = case.get("recovery")
    if not recovery:
        return list(arrivals), []
    crash_after = recovery["crash_after"]
    checkpoints = {i for i in recovery["checkpoint_after"] if i <= crash_after}
    first: list[Arrival | Control] = []
    for i, arrival in enumerate(arrivals[: crash_after + 1]):
        first.append(arrival)
        if i in checkpoints:
            first.append(Control.CHECKPOINT)
    first.append(Control.CRASH)
    return first, list(arrivals)


async def _run(case: dict[str, Any], workdir: Path, script: list[Arrival | Control], operator: Operator) -> None:
    app = build_app(case["job"], case["partitions"], operator)
    clock = ManualClock(case["arrivals"][0]["at"] if case["arrivals"] else 0)
    source = ScriptedSource("input", case["partitions"], script, clock)
    broker = ScriptedBroker(EmbeddedBroker(EmbeddedLog(workdir / "log")), {"input": source})
    settings = RunSettings(state_dir=workdir / "state", checkpoint_interval_ms=NEVER_MS, until_end=True)
    await Runner(app, settings, broker=broker, clock=clock, handle_signals=False).run()
    await broker.close()


def run_case(case: dict[str, Any], workdir: str, operator: Operator = window_aggregate) -> dict[str, Any]:
    """Run `case` in `workdir` (empty) and read back its results, late records and dead letters."""
    wd = Path(workdir)
    first, rerun = _script(case)
    try:
        asyncio.run(_run(case, wd, first, operator))
    except SimulatedCrash:
        asyncio.run(_run(case, wd, rerun, operator))  # a new engine on the same state directory
    log = EmbeddedLog(wd / "log")
    table = results_table(log.read_all("results"))
    results = [{k: v for k, v in value.items() if k != "revision"} for _, value in sorted(table.items())]
    late = {(d.source_partition, d.source_offset) for d in map(DeadLetter.from_record, log.read_all("tck-late"))}
    dlq = {
        (d.source_partition, d.source_offset, d.reason) for d in map(DeadLetter.from_record, log.read_all("tck-dlq"))
    }
    return {
        "results": results,
        "late": [{"p": p, "offset": o} for p, o in sorted(late)],
        "dlq": [{"p": p, "offset": o, "reason": r} for p, o, r in sorted(dlq)],
    }
