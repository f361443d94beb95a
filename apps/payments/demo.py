"""`streamcore demo`: the payments app over a live, imperfect stream.

Four payment terminals append to the four partitions of ``payments`` in real time
while the app runs:

* events arrive up to 1.5 s out of order (within the app's 2 s bound);
* now and then a terminal flushes a buffer of payments two minutes old (late events);
* terminal 3's clock jumps ten minutes ahead for a while (quarantined as
  ``future_timestamp`` instead of dragging the watermark forward);
* a few records are broken: not JSON, a missing field, an amount that is a string.

The app runs until the terminals stop and it has caught up, then fires every window
and prints where each input record went.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path

import orjson
from streamcore.apps.payments.app import app, payments
from streamcore.apps.workdir import demo_directory

from streamcore import Runner, RunSettings
from streamcore.cli.progress import ProgressPrinter, print_summary
from streamcore.io.embedded import EmbeddedSource
from streamcore.io.log import EmbeddedLog, TopicConfig
from streamcore.testing import results_table

TERMINALS = 4
SKEWED_TERMINAL = 3
SKEW_MS = 600_000


def make_payment(rnd: random.Random, now_ms: int, terminal: int, seconds_in: float, duration: float) -> bytes:
    ts = now_ms - rnd.randrange(1_500)
    if terminal == SKEWED_TERMINAL and duration * 0.3 < seconds_in < duration * 0.6:
        ts += SKEW_MS  # this terminal's clock is ten minutes fast for a while
    card = f"c{int(rnd.paretovariate(1.1)) % 500}"
    doc = {"card": card, "merchant": f"m{rnd.randrange(40)}", "amount": round(rnd.uniform(1, 400), 2), "ts": ts}
    roll = rnd.random()
    if roll < 0.0004:
        return b'{"card": "c1", "amount": 12.0, "ts": '  # cut off: not JSON
    if roll < 0.0008:
        del doc["merchant"]
    elif roll < 0.0012:
        doc["amount"] = "twelve"
    return orjson.dumps(doc)


async def terminals(log: EmbeddedLog, rate: int, duration: float, seed: int) -> int:
    """Append `rate` payments per second across the terminals for `duration` seconds."""
    rnd = random.Random(seed)
    producer = log.producer(payments.name)
    tick = 0.05
    per_tick = int(rate * tick / TERMINALS)
    sent = 0
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < duration:
        now_ms = time.time_ns() // 1_000_000
        for terminal in range(TERMINALS):
            batch = [make_payment(rnd, now_ms, terminal, elapsed, duration) for _ in range(per_tick)]
            if rnd.random() < 0.02:  # a buffered batch from two minutes ago: late
                batch += [orjson.dumps({"card": "c7", "merchant": "m1", "amount": 5.0, "ts": now_ms - 120_000})] * 3
            producer.send_many(batch, [now_ms] * len(batch), partition=terminal)
            sent += len(batch)
        await asyncio.sleep(tick)
    return sent


async def run_demo(workdir: Path, rate: int, duration: float, seed: int) -> int:
    log = EmbeddedLog(workdir / "log")
    settings = RunSettings(
        state_dir=workdir / "state", broker=f"embedded:{workdir / 'log'}", checkpoint_interval_ms=2_000
    )
    runner = Runner(app, settings, progress=ProgressPrinter(), progress_interval_s=1.0)
    for spec in app.topics:  # the terminals start before the app: make sure the topics exist
        log.create_topic(TopicConfig(spec.name, spec.partitions))
    running = asyncio.create_task(runner.run())
    sent = await terminals(log, rate, duration, seed)
    for source in runner.sources:  # the terminals are done: run to the end of what they wrote
        if isinstance(source, EmbeddedSource):
            source.stop_at_current_end()
    status = await running
    ok = print_summary(status)
    card_windows = results_table(log.read_all("card-spend"))
    biggest = sorted(card_windows.values(), key=lambda w: -w["total"])[:3]
    print(f"\nterminals appended {sent:,} records; {len(card_windows):,} card windows, the three biggest:")
    for w in biggest:
        print(f"  card {w['key']:<5} [{w['start']}, {w['end']})  {w['payments']} payments, total {w['total']:.2f}")
    log.close()
    return 0 if ok and status.records_in == 2 * sent else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="streamcore demo payments", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rate", type=int, default=20_000, help="payments per second (default 20000)")
    ap.add_argument("--seconds", type=float, default=15.0, help="how long the terminals send (default 15)")
    ap.add_argument("--dir", type=Path, help="the log and state go here (default: a new temporary directory)")
    ap.add_argument("--keep", action="store_true", help="keep the demo's directory (default: removed at the end)")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    print(f"streamcore demo: {args.rate:,} payments/s for {args.seconds:.0f} s")
    with demo_directory(args.dir, args.keep, "streamcore-demo-", _hints) as workdir:
        return asyncio.run(run_demo(workdir, args.rate, args.seconds, args.seed))


def _hints(workdir: Path) -> None:
    print(f"\nthe log and state are in {workdir}; look with, for example:")
    print(f"  cd {workdir}")  # the one line that carries the path, so the others fit 80 columns
    print("  streamcore log tail card-spend --log-dir log --limit 5")
    print("  streamcore dlq list --log-dir log")


if __name__ == "__main__":
    sys.exit(main())
