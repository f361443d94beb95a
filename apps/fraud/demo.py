"""`streamcore demo`: card fraud decisions from live features, with freshness you can see.

Four payment terminals append card transactions to the embedded log in real time, and
the fraud app (`apps/fraud/app.py`) runs on them: features per card, a model scored on
every transaction from exactly those features, rules, decisions. Every second you see
the rate, the decisions, the newest declines with their reasons, how fresh the features
were when the model read them (from the arrival of the transaction to readable), and
the watermark lag. The app also serves its HTTP API while it runs (the URL is printed).

At the end: where every input record went, and how many of the injected fraudulent
transactions were declined or sent to review (and how many ordinary ones were declined).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any

import orjson
from streamcore.apps.fraud.app import app, transactions
from streamcore.apps.fraud.generate import SKEW_MS, SKEWED_TERMINAL, TransactionGenerator
from streamcore.apps.workdir import demo_directory

from streamcore import Runner, RunSettings
from streamcore.base.records import RecordBatch
from streamcore.cli.progress import print_summary
from streamcore.io.embedded import EmbeddedSource
from streamcore.io.log import EmbeddedLog, PartitionReader, TopicConfig

TERMINALS = 4
TICK_S = 0.02


class Freshness:
    """Freshness of applied transactions (arrival to readable), from the runner's publish events."""

    def __init__(self) -> None:
        self.recent: deque[float] = deque(maxlen=20_000)
        self.all: list[float] = []

    def __call__(self, published_ms: float, views: list[str], batches: list[RecordBatch]) -> None:
        for batch in batches:
            stamps = batch.timestamps
            for i in range(0, len(stamps), max(1, len(stamps) // 16)):
                ms = max(0.0, published_ms - stamps[i])
                self.recent.append(ms)
                self.all.append(ms)

    @staticmethod
    def quantiles(values: Any, *qs: float) -> list[float]:
        ordered = sorted(values)
        if not ordered:
            return [float("nan")] * len(qs)
        return [ordered[min(len(ordered) - 1, int(q * len(ordered)))] for q in qs]


async def terminals(log: EmbeddedLog, generator: TransactionGenerator, rate: int, seconds: float) -> int:
    producer = log.producer(transactions.name)
    per_tick = max(1, int(rate * TICK_S / TERMINALS))
    sent = 0
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < seconds:
        now_ms = time.time_ns() // 1_000_000
        for terminal in range(TERMINALS):
            skew = SKEW_MS if terminal == SKEWED_TERMINAL and 0.3 * seconds < elapsed < 0.5 * seconds else 0
            batch = generator.batch(now_ms, per_tick, terminal, skew)
            producer.send_many(batch, [now_ms] * len(batch), partition=terminal)
            sent += len(batch)
        await asyncio.sleep(TICK_S)
    return sent


def read_new(reader: PartitionReader) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while (batch := reader.read(10_000)) is not None:
        out.extend(orjson.loads(v) for v in batch.values)
    return out


async def run_demo(workdir: Path, rate: int, seconds: float, seed: int) -> int:
    log = EmbeddedLog(workdir / "log")
    for spec in app.topics:  # the terminals start first: make sure the topics exist
        log.create_topic(TopicConfig(spec.name, spec.partitions))
    settings = RunSettings(
        state_dir=workdir / "state",
        broker=f"embedded:{workdir / 'log'}",
        checkpoint_interval_ms=2_000,
        http="127.0.0.1:0",
    )
    runner = Runner(app, settings, handle_signals=False)
    freshness = Freshness()
    runner.on_publish(freshness)
    generator = TransactionGenerator(seed=seed)
    running = asyncio.create_task(runner.run())
    while runner.server is None:  # noqa: ASYNC110 - waits for the runner to come up
        await asyncio.sleep(0.01)
    base = f"http://127.0.0.1:{runner.server.port}"
    print(f"HTTP API while it runs:\n  curl -s {base}/features/c42")
    print(f'  curl -s -X POST {base}/score/fraud -d \'{{"entity": "c42"}}\'\n')
    producing = asyncio.create_task(terminals(log, generator, rate, seconds))
    interrupted = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, interrupted.set)  # Ctrl-C: the summary so far
    reader = log.reader("decisions", 0)
    decisions: Counter[str] = Counter()
    all_decisions: dict[str, str] = {}
    last_in, last_t = 0, time.monotonic()
    while not producing.done() and not interrupted.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(interrupted.wait(), 1.0)
        fresh = read_new(reader)
        for d in fresh:
            decisions[d["decision"]] += 1
            all_decisions[d["tx"]] = d["decision"]
        status = runner.status()
        task = status.tasks[0]
        now = time.monotonic()
        rate_now = (task.counters.records_in - last_in) / (now - last_t)
        last_in, last_t = task.counters.records_in, now
        p50, p99 = freshness.quantiles(freshness.recent, 0.5, 0.99)
        lag = (status.processing_time_ms - task.watermark) / 1000 if task.watermark > 0 else float("nan")
        c = task.counters
        print(  # two lines of at most 80 columns
            f"{status.elapsed_s:5.1f}s  in {c.records_in:>8,} ({rate_now:>6,.0f}/s)  approve {decisions['approve']:>7,}"
            f"  review {decisions['review']:>4,}  decline {decisions['decline']:>4,}\n"
            f"       freshness p50 {p50:4.1f} ms p99 {p99:5.1f} ms  watermark lag {lag:4.1f} s"
            f"  late {c.late}  dlq {c.dead_letter_total}"
        )
        for d in [d for d in fresh if d["decision"] == "decline"][-2:]:
            reasons = "; ".join(d["reasons"])[:34]
            print(f"       decline {d['card']:<7} {d['amount']:>8.2f} at {d['merchant']:<5} {d['score']:.2f} {reasons}")
    if interrupted.is_set():
        producing.cancel()
        runner.stop("interrupted")
        sent = generator_sent(log)
    else:
        sent = await producing
        for source in runner.sources:
            if isinstance(source, EmbeddedSource):
                source.stop_at_current_end()
    status = await running
    for d in read_new(reader):
        decisions[d["decision"]] += 1
        all_decisions[d["tx"]] = d["decision"]
    reader.close()
    ok = print_summary(status)
    fraud = [all_decisions.get(tx) for tx in generator.fraud_tx]
    legit = [v for tx, v in all_decisions.items() if tx not in generator.fraud_tx]
    caught = sum(v in ("decline", "review") for v in fraud)
    p50, p99, p999 = freshness.quantiles(freshness.all, 0.5, 0.99, 0.999)
    print(
        f"\ndecisions: {decisions['approve']:,} approved, {decisions['review']:,} reviewed, "
        f"{decisions['decline']:,} declined"
    )
    print(
        f"injected fraud: {len(fraud)} transactions, {caught} declined or reviewed "
        f"({100 * caught / max(1, len(fraud)):.0f}%)\nordinary transactions declined: "
        f"{sum(v == 'decline' for v in legit)} of {len(legit):,}"
    )
    print(f"feature freshness (arrival to readable): p50 {p50:.1f} ms, p99 {p99:.1f} ms,\n  p99.9 {p999:.1f} ms")
    model = app.models["fraud"]
    fallbacks = ", ".join(f"{n:,} {reason}" for reason, n in sorted(model.stats.fallbacks.items())) or "none"
    print(f"model: {model.stats.scores:,} scores; fallbacks: {fallbacks}")
    print(f"\nterminals appended {sent:,} records" + (" (interrupted)" if interrupted.is_set() else ""))
    log.close()
    return 0 if ok and (interrupted.is_set() or status.records_in == sent) else 1


def generator_sent(log: EmbeddedLog) -> int:
    """How many transactions the terminals appended before an interruption."""
    return sum(log.end_offsets("transactions").values())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="streamcore demo [fraud]", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rate", type=int, default=4_000, help="transactions per second (default 4000)")
    ap.add_argument("--seconds", type=float, default=20.0, help="how long the terminals send (default 20)")
    ap.add_argument("--dir", type=Path, help="the log and state go here (default: a new temporary directory)")
    ap.add_argument("--keep", action="store_true", help="keep the demo's directory (default: removed at the end)")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    print(f"streamcore demo: card fraud, {args.rate:,} transactions/s for {args.seconds:.0f} s")
    with demo_directory(args.dir, args.keep, "streamcore-fraud-") as workdir:
        return asyncio.run(run_demo(workdir, args.rate, args.seconds, args.seed))


if __name__ == "__main__":
    sys.exit(main())
