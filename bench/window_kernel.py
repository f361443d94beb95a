"""Benchmark: a window operator alone, its generated (fused) path against the generic reference.

    python bench/window_kernel.py [--job tumbling|hopping|session] [--events N]

The window benchmark's events (``bench/window.py``), decoded beforehand, go straight into
one window operator (count and sum per card), with the watermark moved every second of
event time: no log, no decoding, no sinks. The operator is built twice in one run, with
``STREAMCORE_GENERIC_AGGREGATIONS=1`` (the reference) and without (the generated code),
and both must emit the same results. Garbage collection is frozen, as the engine's pacer
keeps it out of the hot loop. The last line is JSON
``{"job": ..., "generic_ns_per_event": ..., "fused_ns_per_event": ..., "speedup": ...}``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).parent))

from streamcore.operators import Count, Sum
from streamcore.operators.window_operator import WindowAggregateSpec
from window import DISORDER_MS, GAP_MS, HOP_MS, WINDOW_MS, generate

from streamcore.dataflow.operator import admit_any

SHAPES = {
    "tumbling": {"kind": "tumbling", "size": WINDOW_MS, "slide": WINDOW_MS},
    "hopping": {"kind": "sliding", "size": WINDOW_MS, "slide": HOP_MS},
    "session": {"kind": "session", "gap": GAP_MS},
}


class Collect:
    """The operator's context: results are kept to compare the two paths."""

    admit = staticmethod(admit_any)

    def __init__(self) -> None:
        self.results: list[tuple[Any, Any]] = []

    def emit(self, key: Any, value: Any, ts: int) -> None:
        self.results.append((key, value))

    def fail_output(self, *args: Any) -> None:
        raise AssertionError(args)


def run(job: str, events: list[dict[str, Any]], generic: bool) -> tuple[float, list[tuple[Any, Any]]]:
    os.environ["STREAMCORE_GENERIC_AGGREGATIONS"] = "1" if generic else "0"
    shape = dict(SHAPES[job])
    kind = shape.pop("kind")
    context = Collect()
    spec = WindowAggregateSpec("w", kind, {"n": Count(), "total": Sum("amount")}, 0, **shape)
    operator = spec.build(context)  # type: ignore[arg-type]
    process, watermark = operator.process, -1
    started = time.perf_counter()
    for event in events:
        ts = event["ts"]
        process(event["card"], event, ts)
        if ts - DISORDER_MS > watermark + 1000:
            watermark = ts - DISORDER_MS
            operator.on_watermark(watermark)
    operator.on_end_of_input()
    return (time.perf_counter() - started) / len(events) * 1e9, context.results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--job", choices=sorted(SHAPES), default="hopping")
    ap.add_argument("--events", type=int, default=300_000)
    args = ap.parse_args()
    events = [orjson.loads(line) for line in generate(args.events)]
    gc.freeze()
    generic_ns, generic_results = run(args.job, events, generic=True)
    fused_ns, fused_results = run(args.job, events, generic=False)
    if generic_results != fused_results:
        print("MISMATCH between the generic and the fused path", file=sys.stderr)
        return 1
    print(
        f"generic: {generic_ns:,.0f} ns/event   fused: {fused_ns:,.0f} ns/event   ({len(fused_results):,} results each)"
    )
    speedup = round(generic_ns / fused_ns, 2)
    print(
        json.dumps(
            {
                "job": args.job,
                "generic_ns_per_event": round(generic_ns),
                "fused_ns_per_event": round(fused_ns),
                "speedup": speedup,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
