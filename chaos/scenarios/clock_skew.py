"""``clock-skew``: one producer's clock jumps ahead (inside and beyond the future-skew bound) and behind.

The input is real-time card events (stamped around now, 2 s disorder) on three
partitions, each record in an append-time tick of its own, so the worker reads them in
one known order. Producer 2's clock jumps: some of its events are stamped 30 s ahead
(inside the app's one-minute `max_future_skew`: valid events), some an hour ahead
(beyond it), some an hour behind (beyond the allowed lateness). The verdict is exact,
against `expected`, the contract's rules (``docs/semantics.md``) applied to that order:

- every event an hour ahead is dead-lettered as ``future_timestamp`` at its position,
  changes no watermark, and no window exists near its time (W was not dragged there);
- the late topic holds exactly the events the rules make late: the hour-behind ones,
  and those of producer 2 that its own 30 s jump left behind the watermark (its
  partition no longer held W back, so the others' progress passed them) — the others'
  events are never made late by it;
- every other event is in its window: the final windows equal the rules' count and sum;
- the run's summary accounts for every record.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import orjson

from chaos.suite import Context, Verdict, scenario
from chaos.workload import accounted, prepare, worker, worker_log
from streamcore.base.deadletter import DeadLetter
from streamcore.io.log import EmbeddedLog
from streamcore.testing import results_table

APP = Path(__file__).parents[1] / "apps" / "skew_windows.py"
HOUR_MS = 3_600_000


@scenario("clock-skew", "a producer's clock jumps ahead (inside, beyond the skew bound) and behind", ("embedded",))
def clock_skew(context: Context, verdict: Verdict) -> None:
    rnd = context.rnd
    now = int(time.time() * 1000)
    lines, kinds = [], []
    n = max(3_000, context.events // 10)
    for i in range(n):
        ts = now - 300_000 + i * 250_000 // n - rnd.randrange(2_000)  # the last five minutes, 2 s disorder
        kind = "normal"
        if i % 3 == 2 and rnd.random() < 0.05:  # partition 2's producer, now and then
            kind = rnd.choice(("ahead", "far_ahead", "far_behind"))
            ts += {"ahead": 30_000, "far_ahead": HOUR_MS, "far_behind": -HOUR_MS}[kind]
        lines.append(orjson.dumps({"card": f"c{rnd.randrange(50)}", "amount": rnd.randrange(1, 100), "ts": ts}))
        kinds.append(kind)
    prepare(context.workdir, lines, tick_ms=100)  # record i: partition i % 3, offset i // 3, read i-th
    proc = worker(context.workdir, APP)
    if proc.wait(timeout=300) != 0:
        raise RuntimeError(f"the run failed: {worker_log(context.workdir)[-500:]}")
    per_stream, verdict.records_out, every = accounted(context.workdir)
    verdict.records_in = sum(per_stream)
    if not every:
        verdict.problems.append("the run's summary does not account for every record")
    events = [orjson.loads(line) for line in lines]
    late, windows = expected(events)
    far_ahead = {(i % 3, i // 3) for i, kind in enumerate(kinds) if kind == "far_ahead"}
    found = _set_aside(context.workdir)
    verdict.notes.update({kind: kinds.count(kind) for kind in set(kinds)})
    verdict.notes["late"] = len(late)
    for reason, want in (("future_timestamp", far_ahead), ("late", late)):
        if found.get(reason, set()) != want:
            verdict.problems.append(_diff(f"set aside as {reason}", want, found.get(reason, set())))
    if any(i % 3 != 2 and kind == "normal" for i, kind in enumerate(kinds) if (i % 3, i // 3) in late):
        verdict.problems.append("the rules made another producer's event late: the harness is wrong")
    got = {key: (w["n"], w["total"]) for key, w in _results(context.workdir).items()}
    if got != windows:
        missing = sorted(windows.keys() - got.keys())[:3]
        extra = sorted(got.keys() - windows.keys())[:3]
        wrong = [k for k in windows.keys() & got.keys() if windows[k] != got[k]][:3]
        verdict.problems.append(f"windows differ from the rules': missing {missing}, extra {extra}, wrong {wrong}")
    if any(start > now + 120_000 for _, start in got):
        verdict.problems.append("a window an hour ahead exists: the watermark was dragged")


def expected(events: list[dict[str, Any]]) -> tuple[set[tuple[int, int]], dict[tuple[str, int], tuple[int, int]]]:
    """The contract's rules for this app, over `events` read in order (event i from partition i % 3):
    the (partition, offset) of each late one, and each window's (count, sum). Events an hour
    ahead are left out: they are dead-lettered, and change no window and no watermark."""
    wm, watermark = [-math.inf] * 3, -math.inf
    late: set[tuple[int, int]] = set()
    windows: dict[tuple[str, int], list[int]] = {}
    future = time.time() * 1000 + 60_000  # the skew bound as the run saw it, give or take its start
    for i, e in enumerate(events):
        ts, p = e["ts"], i % 3
        if ts > future + HOUR_MS / 2:
            continue
        start = ts - ts % 10_000
        if watermark >= start + 10_000 + 3_000:
            late.add((p, i // 3))
        else:
            acc = windows.setdefault((e["card"], start), [0, 0])
            acc[0] += 1
            acc[1] += e["amount"]
        wm[p] = max(wm[p], ts - 2_000)
        watermark = max(watermark, min(wm))
    return late, {k: (v[0], v[1]) for k, v in windows.items()}


def _results(workdir: Path) -> dict[tuple[str, int], dict[str, Any]]:
    log = EmbeddedLog(workdir / "log")
    try:
        return {(key, start): w for (key, start, _), w in results_table(log.read_all("totals")).items()}
    finally:
        log.close()


def _set_aside(workdir: Path) -> dict[str, set[tuple[int, int]]]:
    """reason -> the (partition, offset) of each record dead-lettered or set aside as late."""
    log = EmbeddedLog(workdir / "log")
    found: dict[str, set[tuple[int, int]]] = {}
    try:
        for topic in ("skew-dlq", "skew-late"):
            if log.has_topic(topic):
                for d in (DeadLetter.from_record(r) for r in log.read_all(topic)):
                    found.setdefault(d.reason, set()).add((d.source_partition, d.source_offset))
    finally:
        log.close()
    return found


def _diff(what: str, expected: set[tuple[int, int]], got: set[tuple[int, int]]) -> str:
    missing, extra = sorted(expected - got)[:3], sorted(got - expected)[:3]
    return f"{what}: expected {len(expected)}, got {len(got)}; missing {missing}, extra {extra}"
