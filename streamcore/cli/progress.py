"""Human-readable progress lines and the end-of-run summary."""

from __future__ import annotations

import math
import sys
from typing import TextIO

from streamcore.runtime.status import RunStatus


def _watermark_lag(watermark: float, now_ms: int, idle_s: float | None = None) -> str:
    if idle_s is not None:
        return f"idle {idle_s:.0f} s (no input)"
    if watermark == -math.inf:
        return "no watermark yet"
    if watermark == math.inf:
        return "end of input"
    return f"watermark lag {(now_ms - watermark) / 1000:.1f} s"


class ProgressPrinter:
    """Prints one line per progress tick and stream: rate, watermark lag, late and dead letters."""

    def __init__(self, out: TextIO = sys.stdout) -> None:
        self.out = out
        self._last: dict[str, tuple[int, float]] = {}

    def __call__(self, status: RunStatus) -> None:
        for task in status.tasks:
            c = task.counters
            last_in, last_t = self._last.get(task.name, (0, 0.0))
            dt = status.elapsed_s - last_t
            rate = (c.records_in - last_in) / dt if dt > 0 else 0.0
            self._last[task.name] = (c.records_in, status.elapsed_s)
            dlq = c.dead_letter_total
            reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(c.dead_lettered.items()))
            second = (
                f"        {_watermark_lag(task.watermark, status.processing_time_ms, task.idle_s)}  late {c.late:,}  "
                f"dlq {dlq:,}{f' ({reasons})' if reasons else ''}"
            )
            print(  # two lines, each within 80 columns
                f"{status.elapsed_s:6.1f}s  {task.name[:20]:<20} in {c.records_in:>11,} ({rate:>9,.0f}/s)"
                f"  out {c.outputs:,}\n{second if len(second) <= 80 else second[:77] + '...'}",
                file=self.out,
                flush=True,
            )


class ProgressBar:
    """A bounded run's progress against its total: ``[####......] 40% 4,000/10,000  2,100/s  ETA 3 s``."""

    WIDTH = 24

    def __init__(self, total: int, out: TextIO = sys.stderr) -> None:
        self.total = total
        self.out = out

    def line(self, status: RunStatus) -> str:
        done = status.records_in
        share = 1.0 if self.total <= 0 else min(1.0, done / self.total)
        rate = done / status.elapsed_s if status.elapsed_s > 0 else 0.0
        eta = f"ETA {(self.total - done) / rate:,.0f} s" if rate > 0 and done < self.total else "ETA -"
        bar = "#" * round(share * self.WIDTH)
        return f"[{bar:<{self.WIDTH}}] {share:4.0%} {done:,}/{self.total:,}  {rate:,.0f}/s  {eta}"

    def __call__(self, status: RunStatus) -> None:
        print(self.line(status), file=self.out, flush=True)


def print_summary(status: RunStatus, out: TextIO = sys.stdout) -> bool:
    """Print what happened to every record; return True if every record is accounted for."""
    ok = True
    print(f"\nstopped after {status.elapsed_s:.1f} s ({status.stopped_by or 'stopped'})", file=out)
    for task in status.tasks:
        c = task.counters
        balanced = c.accounted == c.records_in
        ok = ok and balanced
        released = "" if task.released_s is None else f" (held until {task.released_s:.1f} s)"
        print(f"  stream {task.name}{released}:", file=out)
        print(f"    records in      {c.records_in:>10,}", file=out)
        print(f"    accepted        {c.accepted:>10,}", file=out)
        print(f"    filtered        {c.filtered:>10,}", file=out)
        print(f"    late            {c.late:>10,}", file=out)
        for reason, n in sorted(c.dead_lettered.items()):
            print(f"    dead-lettered   {n:>10,}  ({reason})", file=out)
        print(f"    results out     {c.outputs:>10,}", file=out)
        print(
            f"    checkpoints     {c.checkpoints:>10,}  (last {c.last_checkpoint_ms:.1f} ms, "
            f"{c.last_checkpoint_bytes:,} bytes)",
            file=out,
        )
        verdict = "every record accounted for" if balanced else f"MISSING {c.records_in - c.accounted}"
        print(f"    {verdict}", file=out)
    return ok
