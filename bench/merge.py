"""Benchmark: the embedded source merging partitions, the Python planner against the compiled one.

    python bench/merge.py [--records N] [--partitions P]

The window benchmark's N records (300,000) are appended to a P-partition log (16), one
per ms of append time, keyed by card; then the log is read to its end through
`EmbeddedSource` twice in one run, planning the merge with `streamcore.io.merge`'s Python
`plan_runs` and with the compiled `_merge` kernel. Both must hand out the same runs. The
last line is JSON ``{"partitions": ..., "runs": ..., "python_s": ..., "compiled_s": ..., "speedup": ...}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from window import generate

from streamcore.base.records import Batches, RecordBatch
from streamcore.io import embedded, merge
from streamcore.io.embedded import EmbeddedSource
from streamcore.io.log import EmbeddedLog, TopicConfig


async def read_all(log: EmbeddedLog) -> tuple[float, list[tuple[int, int, int]]]:
    source = EmbeddedSource(log, "events", until_end=True)
    await source.start({})
    runs = []
    started = time.perf_counter()
    while isinstance(fetched := await source.fetch(4096), RecordBatch | Batches):
        spans = fetched.spans if isinstance(fetched, Batches) else [(fetched, 0, len(fetched))]
        runs.extend((batch.partition, batch.base_offset + start, stop - start) for batch, start, stop in spans)
    seconds = time.perf_counter() - started
    await source.close()
    return seconds, runs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=300_000)
    ap.add_argument("--partitions", type=int, default=16)
    args = ap.parse_args()
    if not merge.COMPILED:
        print("the compiled planner is not built here: nothing to compare", file=sys.stderr)
        return 1
    workdir = Path(tempfile.mkdtemp(prefix="streamcore-merge-bench-"))
    try:
        log = EmbeddedLog(workdir / "log")
        log.create_topic(TopicConfig("events", partitions=args.partitions))
        lines = generate(args.records)
        keys = [line[9 : line.index(b'"', 9)] for line in lines]
        log.producer("events").send_many(lines, list(range(len(lines))), keys)
        results = {}
        for name, planner in (("python", merge.plan_runs), ("compiled", merge.fast_plan_runs)):
            embedded.fast_plan_runs = planner
            results[name] = min((asyncio.run(read_all(log)) for _ in range(3)), key=lambda r: r[0])
        embedded.fast_plan_runs = merge.fast_plan_runs
        log.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    (python_s, python_runs), (compiled_s, compiled_runs) = results["python"], results["compiled"]
    if python_runs != compiled_runs:
        print("MISMATCH: the planners handed out different runs", file=sys.stderr)
        return 1
    print(f"{len(python_runs):,} runs (identical): python {python_s:.3f} s, compiled {compiled_s:.3f} s (best of 3)")
    result = {"partitions": args.partitions, "runs": len(python_runs), "python_s": round(python_s, 3)}
    print(json.dumps({**result, "compiled_s": round(compiled_s, 3), "speedup": round(python_s / compiled_s, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
