"""Benchmark: a keyed windowed count and sum, plain Python loop vs the engine.

    python bench/window.py [--job tumbling|hopping|session] [--events N] [--partitions P]
                           [--appends-per-ms K] [--keep DIR]

Jobs: ``tumbling`` 60 s windows; ``hopping`` 60 s windows every 10 s (each event in six);
``session`` windows per card closed after a 30 s gap.

The workload is the peers' (``../shared/bench/peers/gen.py``): 10,000 cards chosen
uniformly, amount uniform in 1..500, event i at ``T0 + i - d`` with d uniform in
0..5000 ms, so 5 s of bounded disorder and about 1 ms of event time per event. The log
gets the same append time (one record per ms) unless ``--appends-per-ms K`` packs K
records into each ms, as a busy topic (or a backlog written fast) would: the embedded
source merges partitions by append time, in 100 ms ticks.

Both contenders run in this process, one after the other, on the same bytes:

(a) plain: a hand-written loop over the JSON-lines file with orjson and a dict per
    window start, firing windows as the watermark (max ts - 5 s) passes their end,
    as in the peers' baseline;
(b) engine: streamcore reading the same records from the embedded log
    (``until_end``), with RocksDB state, checkpoints, and window results written
    to an output topic.

Both must produce the same windows (count and sum); the last line is JSON
``{"job": ..., "partitions": ..., "plain_eps": ..., "engine_eps": ..., "ratio": ...}``.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import orjson

from streamcore import App, Count, EventTime, Runner, RunSettings, Session, Sliding, Sum, Tumbling
from streamcore.io.log import EmbeddedLog, TopicConfig
from streamcore.testing import results_table

T0 = 1_700_000_000_000
CARDS = 10_000
DISORDER_MS = 5_000
WINDOW_MS = 60_000
HOP_MS = 10_000
GAP_MS = 30_000
Windows = dict[tuple[str, int], tuple[int, float]]


def generate(n: int, seed: int = 42) -> list[bytes]:
    rnd = random.Random(seed)
    lines = []
    for i in range(n):
        card = rnd.randrange(CARDS)
        merchant = rnd.randrange(1_000)
        amount = round(rnd.uniform(1.0, 500.0), 2)
        ts = T0 + i - rnd.randrange(DISORDER_MS + 1)
        lines.append(b'{"card":"c%d","merchant":"m%d","amount":%r,"ts":%d}' % (card, merchant, amount, ts))
    return lines


def plain_tumbling(path: Path) -> Windows:
    """The reference: what a careful engineer would write by hand for this one job."""
    loads = orjson.loads
    buckets: dict[int, dict[str, list]] = {}
    starts: list[int] = []
    out: dict[tuple[str, int], tuple[int, float]] = {}
    max_ts = -(1 << 62)
    next_end = 1 << 62
    with open(path, "rb") as f:
        for line in f:
            e = loads(line)
            ts = e["ts"]
            s = ts - ts % WINDOW_MS
            if s + WINDOW_MS > max_ts - DISORDER_MS:
                b = buckets.get(s)
                if b is None:
                    b = buckets[s] = {}
                    heapq.heappush(starts, s)
                    next_end = min(next_end, s + WINDOW_MS)
                st = b.get(e["card"])
                if st is None:
                    b[e["card"]] = [1, e["amount"]]
                else:
                    st[0] += 1
                    st[1] += e["amount"]
            if ts > max_ts:
                max_ts = ts
                while max_ts - DISORDER_MS >= next_end:
                    s0 = heapq.heappop(starts)
                    for card, (cnt, total) in buckets.pop(s0).items():
                        out[(card, s0)] = (cnt, total)
                    next_end = starts[0] + WINDOW_MS if starts else 1 << 62
    while starts:
        s0 = heapq.heappop(starts)
        for card, (cnt, total) in buckets.pop(s0).items():
            out[(card, s0)] = (cnt, total)
    return out


def plain_hopping(path: Path) -> Windows:
    """Hopping windows by hand: each event adds to the six windows that contain it."""
    loads = orjson.loads
    buckets: dict[int, dict[str, list]] = {}
    starts: list[int] = []
    out: Windows = {}
    max_ts = -(1 << 62)
    next_end = 1 << 62
    with open(path, "rb") as f:
        for line in f:
            e = loads(line)
            ts, card, amount = e["ts"], e["card"], e["amount"]
            s = ts - ts % HOP_MS
            while s > ts - WINDOW_MS and s >= 0:
                b = buckets.get(s)
                if b is None:
                    b = buckets[s] = {}
                    heapq.heappush(starts, s)
                    next_end = min(next_end, s + WINDOW_MS)
                st = b.get(card)
                if st is None:
                    b[card] = [1, amount]
                else:
                    st[0] += 1
                    st[1] += amount
                s -= HOP_MS
            if ts > max_ts:
                max_ts = ts
                while max_ts - DISORDER_MS >= next_end:
                    s0 = heapq.heappop(starts)
                    for c, (cnt, total) in buckets.pop(s0).items():
                        out[(c, s0)] = (cnt, total)
                    next_end = starts[0] + WINDOW_MS if starts else 1 << 62
    for s0, b in buckets.items():
        for c, (cnt, total) in b.items():
            out[(c, s0)] = (cnt, total)
    return out


def plain_session(path: Path) -> Windows:
    """Session windows by hand: per card, open sessions merge while events overlap them."""
    loads = orjson.loads
    sessions: dict[str, list[list]] = {}  # card -> [[start, end, n, total], ...]
    ends: list[tuple[int, str, int]] = []  # (end, card, start): candidates to close
    out: Windows = {}
    max_ts = -(1 << 62)
    with open(path, "rb") as f:
        for line in f:
            e = loads(line)
            ts, card, amount = e["ts"], e["card"], e["amount"]
            start, end, n, total = ts, ts + GAP_MS, 1, amount
            mine = sessions.get(card)
            if mine is None:
                mine = sessions[card] = []
            keep = []
            for ses in mine:
                if ses[0] < end and start < ses[1]:
                    start, end, n, total = min(start, ses[0]), max(end, ses[1]), n + ses[2], total + ses[3]
                else:
                    keep.append(ses)
            keep.append([start, end, n, total])
            sessions[card] = keep
            heapq.heappush(ends, (end, card, start))
            if ts > max_ts:
                max_ts = ts
                while ends and ends[0][0] <= max_ts - DISORDER_MS:
                    end0, c, start0 = heapq.heappop(ends)
                    for ses in sessions.get(c, ()):
                        if ses[0] == start0 and ses[1] == end0:
                            out[(c, start0)] = (ses[2], ses[3])
                            sessions[c].remove(ses)
                            break
    for c, mine in sessions.items():
        for ses in mine:
            out[(c, ses[0])] = (ses[2], ses[3])
    return out


JOBS = {
    "tumbling": (lambda: Tumbling(WINDOW_MS), plain_tumbling),
    "hopping": (lambda: Sliding(WINDOW_MS, HOP_MS), plain_hopping),
    "session": (lambda: Session(GAP_MS), plain_session),
}


def build_app(partitions: int, job: str = "tumbling") -> App:
    app = App("bench")
    events = app.topic("events", partitions=partitions, key="card")  # produced keyed by card (Kafka: no repartition)
    totals = app.topic("totals")
    (
        app.stream(events, event_time=EventTime("ts", max_out_of_orderness=DISORDER_MS))
        .key_by("card")
        .window(JOBS[job][0]())
        .aggregate(n=Count(), total=Sum("amount"))
        .to(totals)
    )
    return app


def engine(workdir: Path, partitions: int = 1, job: str = "tumbling") -> tuple[float, Windows]:
    settings = RunSettings(state_dir=workdir / "state", broker=f"embedded:{workdir / 'log'}", until_end=True)
    started = time.perf_counter()
    status = asyncio.run(Runner(build_app(partitions, job), settings, handle_signals=False).run())
    seconds = time.perf_counter() - started
    table = results_table(EmbeddedLog(workdir / "log").read_all("totals"))
    assert status.tasks[0].counters.late == 0, "the workload has no late events"
    return seconds, {(k, s): (v["n"], v["total"]) for (k, s, _), v in table.items()}


def same_results(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    return all(a[k][0] == b[k][0] and abs(a[k][1] - b[k][1]) <= 1e-6 * max(1.0, abs(a[k][1])) for k in a)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--job", choices=sorted(JOBS), default="tumbling")
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--partitions", type=int, default=1)
    ap.add_argument(
        "--appends-per-ms",
        type=int,
        default=1,
        help="records appended per ms of append time (1: one per ms, as the events' own times; "
        "a busy topic appends many, which is what the embedded source merges partitions by)",
    )
    ap.add_argument("--keep", help="keep the work directory here")
    args = ap.parse_args()
    workdir = Path(args.keep or tempfile.mkdtemp(prefix="streamcore-bench-"))
    try:
        lines = generate(args.events)
        jsonl = workdir / "events.jsonl"
        jsonl.write_bytes(b"\n".join(lines) + b"\n")
        log = EmbeddedLog(workdir / "log")
        log.create_topic(TopicConfig("events", partitions=args.partitions))
        producer = log.producer("events")
        for i in range(0, len(lines), 50_000):  # keyed by card; append time = place in the stream
            chunk = lines[i : i + 50_000]
            keys = [line[9 : line.index(b'"', 9)] for line in chunk]
            producer.send_many(chunk, [j // args.appends_per_ms for j in range(i, i + len(chunk))], keys)
        log.close()
        del lines

        started = time.perf_counter()
        expected = JOBS[args.job][1](jsonl)
        plain_s = time.perf_counter() - started
        engine_s, got = engine(workdir, args.partitions, args.job)
        if not same_results(expected, got):
            print(f"MISMATCH: plain {len(expected)} windows, engine {len(got)}", file=sys.stderr)
            return 1
        plain_eps, engine_eps = args.events / plain_s, args.events / engine_s
        print(f"windows: {len(expected)} (identical in both)")
        print(f"plain loop: {plain_s:.2f} s  {plain_eps:,.0f} events/s")
        print(f"engine:     {engine_s:.2f} s  {engine_eps:,.0f} events/s  ({args.partitions} partition(s))")
        print(
            json.dumps(
                {
                    "job": args.job,
                    "partitions": args.partitions,
                    "plain_eps": round(plain_eps),
                    "engine_eps": round(engine_eps),
                    "ratio": round(engine_eps / plain_eps, 3),
                }
            )
        )
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
