"""The input the embedded scenarios use, the worker they run, and how they judge its outputs.

Cards with bursts and pauses, 2 s disorder, a few late and broken records, over the
app `chaos/apps/card_windows.py` (tumbling windows with lateness and session windows);
a run's outputs are compared with an uninterrupted run's on the same input.
"""

from __future__ import annotations

import math
import random
import subprocess
import time
from pathlib import Path
from typing import Any

import orjson

from chaos.suite import Verdict
from streamcore.base.deadletter import DeadLetter
from streamcore.io.log import EmbeddedLog, TopicConfig
from streamcore.testing import cli_command, results_table

APP = Path(__file__).parent / "apps" / "card_windows.py"
OUTPUTS = ("totals", "sessions")


def generate(n: int, seed: int) -> list[bytes]:
    """Cards with bursts and pauses, 2 s disorder, a few late and broken records."""
    rnd = random.Random(seed)
    t = 1_700_000_000_000
    lines = []
    for i in range(n):
        t += rnd.choice((0, 1, 2, 5, 40))
        ts = t - rnd.randrange(2_000)
        if rnd.random() < 0.01:
            ts -= rnd.randrange(3_000, 20_000)  # late, some within allowed lateness
        card = f"c{rnd.randrange(300)}"
        line = orjson.dumps({"card": card, "amount": round(rnd.uniform(1, 300), 2), "ts": ts})
        if rnd.random() < 0.001:
            line = line[: len(line) // 2] if i % 2 else b'{"card": "c1", "ts": "late"}'
        lines.append(line)
    return lines


def prepare(workdir: Path, lines: list[bytes], topic: str = "events", tick_ms: int = 1) -> None:
    """`lines` into `workdir`/log, record i in partition i % 3, stamped i * `tick_ms` (its place in
    the stream). With `tick_ms` 100, every record has an append-time tick of its own, and the
    embedded source reads them in exactly this order."""
    log = EmbeddedLog(workdir / "log")
    log.create_topic(TopicConfig(topic, 3))
    for p in range(3):
        share, stamps = lines[p::3], [i * tick_ms for i in range(p, len(lines), 3)]
        for i in range(0, len(share), 10_000):
            log.writer(topic, p).append(share[i : i + 10_000], stamps[i : i + 10_000])
    log.close()


def worker(workdir: Path, app: Path = APP, interval_ms: int = 150) -> subprocess.Popen[bytes]:
    """Start ``streamcore run APP --until-end`` on `workdir`'s log; its output goes to ``worker.log``."""
    with open(workdir / "worker.log", "ab") as log:
        return subprocess.Popen(
            cli_command(
                "run", str(app), "--until-end", "--log-dir", str(workdir / "log"),
                "--state-dir", str(workdir / "state"), "--checkpoint-interval-ms", str(interval_ms),
                "--progress-every", "3600",
            ),
            stdout=log,
            stderr=log,
        )  # fmt: skip


def finish(proc: subprocess.Popen[bytes], workdir: Path) -> None:
    if proc.wait(timeout=300) != 0:
        raise RuntimeError(f"worker failed ({proc.returncode}): {worker_log(workdir)[-1500:]}")


def worker_log(workdir: Path) -> str:
    return (workdir / "worker.log").read_text(errors="replace")


def uninterrupted(workdir: Path) -> float:
    """Run the worker to the end once; return how long it took (start-up included), in seconds."""
    started = time.monotonic()
    finish(worker(workdir), workdir)
    return time.monotonic() - started


def outcome(workdir: Path) -> dict[str, Any]:
    """The final windows of each output; (step, partition, offset, reason) of each late record and dead letter."""
    log = EmbeddedLog(workdir / "log")
    try:
        result: dict[str, Any] = {name: results_table(log.read_all(name)) for name in OUTPUTS}
        for name in ("late", "dlq"):
            letters = [DeadLetter.from_record(r) for r in log.read_all(f"chaos-{name}")]
            result[name] = {(d.step, d.source_partition, d.source_offset, d.reason) for d in letters}
    finally:
        log.close()
    return result


def differences(expected: dict[str, Any], got: dict[str, Any]) -> list[str]:
    """What differs between two outcomes (revisions aside: a restarted run may revise more often)."""
    problems = []
    for name in OUTPUTS:
        exp, out = expected[name], got[name]
        if exp.keys() != out.keys():
            problems.append(
                f"{name}: windows differ: missing {sorted(exp.keys() - out.keys())[:3]}, "
                f"extra {sorted(out.keys() - exp.keys())[:3]}"
            )
            continue
        for window, value in exp.items():
            other = out[window]
            for field, v in value.items():
                if field == "revision":
                    continue
                w = other.get(field)
                same = math.isclose(v, w, rel_tol=1e-9) if isinstance(v, float) else v == w
                if not same:
                    problems.append(f"{name} {window} {field}: expected {v}, got {w}")
    for name in ("late", "dlq"):
        if expected[name] != got[name]:
            problems.append(
                f"{name}: missing {sorted(expected[name] - got[name])[:3]} "
                f"extra {sorted(got[name] - expected[name])[:3]}"
            )
    return problems


def _output_bytes(workdir: Path) -> int:
    """How many bytes the output topics hold on disk (they grow as the worker processes)."""
    return sum(f.stat().st_size for name in OUTPUTS for f in (workdir / "log" / name).rglob("*") if f.is_file())


def wait_for_progress(proc: subprocess.Popen[bytes], workdir: Path, timeout_s: float) -> None:
    """Until the worker has written outputs since it started (or ended, or `timeout_s` passed)."""
    before = _output_bytes(workdir)
    deadline = time.monotonic() + timeout_s
    while proc.poll() is None and _output_bytes(workdir) == before and time.monotonic() < deadline:
        time.sleep(0.01)


def accounted(workdir: Path) -> tuple[list[int], int, bool]:
    """From the last run's summary: records in per stream, results out in all, and whether it
    said every record was accounted for (for every stream)."""
    summary = worker_log(workdir).rpartition("stopped after")[2]
    lines = summary.splitlines()
    records_in = [int(line.split()[-1].replace(",", "")) for line in lines if line.strip().startswith("records in")]
    out = sum(int(line.split()[-1].replace(",", "")) for line in lines if line.strip().startswith("results out"))
    return records_in, out, len(records_in) > 0 and summary.count("every record accounted for") == len(records_in)


def judge_against(verdict: Verdict, reference: Path, workdir: Path) -> None:
    """The last run in `workdir` accounted for every record, and its outcome equals the
    uninterrupted run's in `reference`."""
    per_stream, verdict.records_out, every = accounted(workdir)
    verdict.records_in = sum(per_stream)
    if not every:
        verdict.problems.append("the last run's summary does not account for every record")
    verdict.problems += differences(outcome(reference), outcome(workdir))
