"""Kill a worker with SIGKILL mid-stream, restart it, and compare with an uninterrupted run.

    python -m chaos.kill_restart [--events N] [--kills K] [--seed S]

Both runs read the same generated input from their own embedded log; the chaotic
one runs ``streamcore run chaos/apps/card_windows.py --until-end`` as a real
subprocess, killed K times at random moments and restarted from its last
checkpoint. Exit status 0 when the final window results, late records and
dead letters are the same as the uninterrupted run's.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

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


def prepare(workdir: Path, lines: list[bytes]) -> None:
    log = EmbeddedLog(workdir / "log")
    log.create_topic(TopicConfig("events", 3))
    for p in range(3):  # each partition gets its share, stamped with its place in the stream as append time
        share, stamps = lines[p::3], list(range(p, len(lines), 3))
        for i in range(0, len(share), 10_000):
            log.writer("events", p).append(share[i : i + 10_000], stamps[i : i + 10_000])
    log.close()


def worker(workdir: Path) -> subprocess.Popen[bytes]:
    """Start ``streamcore run`` on the chaos app; its output goes to ``worker.log``."""
    with open(workdir / "worker.log", "ab") as log:
        return subprocess.Popen(
            cli_command(
                "run",
                str(APP),
                "--until-end",
                "--quiet",
                "--log-dir",
                str(workdir / "log"),
                "--state-dir",
                str(workdir / "state"),
                "--checkpoint-interval-ms",
                "150",
            ),
            stdout=log,
            stderr=log,
        )


def uninterrupted(workdir: Path) -> float:
    """Run the worker to the end once; return how long it took (start-up included), in seconds."""
    started = time.monotonic()
    finish(worker(workdir), workdir)
    return time.monotonic() - started


def finish(proc: subprocess.Popen[bytes], workdir: Path) -> None:
    if proc.wait(timeout=300) != 0:
        tail = (workdir / "worker.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"worker failed ({proc.returncode}): {tail}")


def outcome(workdir: Path) -> dict[str, Any]:
    log = EmbeddedLog(workdir / "log")
    result: dict[str, Any] = {name: results_table(log.read_all(name)) for name in OUTPUTS}
    for name in ("late", "dlq"):
        letters = [DeadLetter.from_record(r) for r in log.read_all(f"chaos-{name}")]
        result[name] = {(d.step, d.source_partition, d.source_offset, d.reason) for d in letters}
    return result


def differences(expected: dict[str, Any], got: dict[str, Any]) -> list[str]:
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


def _wait_for_progress(proc: subprocess.Popen[bytes], workdir: Path, timeout_s: float) -> None:
    """Until the worker has written outputs since it started (or ended, or `timeout_s` passed)."""
    before = _output_bytes(workdir)
    deadline = time.monotonic() + timeout_s
    while proc.poll() is None and _output_bytes(workdir) == before and time.monotonic() < deadline:
        time.sleep(0.01)


def run_with_kills(workdir: Path, kills: int, rnd: random.Random, run_s: float) -> int:
    """Run to completion, killing the worker `kills` times; return how many kills landed mid-stream.

    Each kill comes once the worker is processing (it has written outputs since it
    started), after a random further part of a quarter of `run_s`, the time an
    uninterrupted run took here: mid-stream however fast the worker is. A restarted
    worker has less left to do, so a later kill may find it finished.
    """
    landed = 0
    for _ in range(kills):
        proc = worker(workdir)
        _wait_for_progress(proc, workdir, timeout_s=60)
        time.sleep(rnd.uniform(0, 0.25) * run_s)
        if proc.poll() is not None:
            break  # it finished before we could kill it
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        landed += 1
    finish(worker(workdir), workdir)
    return landed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--kills", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dir", type=Path, default=Path("chaos-run"))
    args = ap.parse_args(argv)
    lines = generate(args.events, args.seed)
    reference, chaotic = args.dir / "reference", args.dir / "chaotic"
    for d in (reference, chaotic):
        prepare(d, lines)
    run_s = uninterrupted(reference)
    landed = run_with_kills(chaotic, args.kills, random.Random(args.seed), run_s)
    problems = differences(outcome(reference), outcome(chaotic))
    print(f"{landed} kills landed mid-stream; {len(problems)} differences")
    for p in problems[:20]:
        print("  " + p)
    return 1 if problems or landed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
