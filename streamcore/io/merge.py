"""The embedded source's merge order: which runs of which partitions come next.

`plan_runs` is the reference; `_merge.pyx` implements the same function in Cython and
is used where it was built (see `streamcore.base.kernels`): at 16 partitions a run is a
handful of records, and deciding each one in Python cost more than applying it.

Of the partitions with records in hand, the next run comes from the one whose next
record has the smallest ``(append time // tick, partition)``, and runs until another
partition's next record would come first. Planning stops after `max_records` records,
or when the partition just read from has nothing left in hand: its next record decides
what comes next, so it must be read first.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Sequence
from typing import Any

from streamcore.base import kernels

Run = tuple[Any, int, int]
"""(label, start, stop): records ``start .. stop - 1`` of the read-ahead labelled so."""


def plan_runs(
    stamps: Sequence[Sequence[int] | None], cursors: list[int], tick: int, max_records: int, labels: Sequence[Any]
) -> list[Run]:
    """The next runs; `stamps[i]` is partition i's read-ahead (append times), `cursors[i]`
    the first record not handed out yet, `labels[i]` what names it in a run (the source
    passes the read-ahead batch itself). Moves the cursors past the runs it returns."""
    runs: list[Run] = []
    left = max_records
    while left > 0:
        first = second = None
        for i, times in enumerate(stamps):
            if times is None or cursors[i] >= len(times):
                continue
            key = (times[cursors[i]] // tick, i)
            if first is None or key < first:
                first, second = key, first
            elif second is None or key < second:
                second = key
        if first is None:
            break
        i = first[1]
        times = stamps[i]
        assert times is not None
        start = cursors[i]
        stop = min(len(times), start + left)
        if second is not None:  # stop where the other partition's next record comes first
            bound = (second[0] + 1 if i < second[1] else second[0]) * tick
            stop = max(start + 1, bisect_left(times, bound, start, stop))
        runs.append((labels[i], start, stop))
        cursors[i] = stop
        left -= stop - start
        if stop == len(times):
            break  # its next record is not in hand: read it before deciding more
    return runs


def _load() -> tuple[Callable[..., list[Run]], bool]:
    compiled = kernels.load("streamcore.io._merge", "partition merge")
    if compiled is None:
        return plan_runs, False
    return compiled.plan_runs, True


fast_plan_runs, COMPILED = _load()
"""What the embedded source calls: the compiled planner where it is built, else the reference."""
