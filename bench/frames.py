"""Benchmark: decoding the embedded log's frames, the Python reference against the compiled kernel.

    python bench/frames.py [--records N]

Frames of 8,192 keyed records of the window benchmark's shape (about 70-byte JSON values,
5-byte keys) are decoded with `Frame` twice in one run: once with `streamcore.io.log.split`'s
Python functions, once with the compiled `_split` kernel. Both must give the same values and
keys. The last line is JSON ``{"python_ns_per_record": ..., "compiled_ns_per_record": ..., "speedup": ...}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from window import generate

from streamcore.io.log import format as frame_format
from streamcore.io.log import split
from streamcore.io.log.format import Frame, encode_frame

FRAME_RECORDS = 8192


def decode_all(bodies: list[bytes]) -> tuple[float, list[Frame]]:
    started = time.perf_counter()
    frames = [Frame(body) for body in bodies]
    return time.perf_counter() - started, frames


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000)
    args = ap.parse_args()
    if not split.COMPILED:
        print("the compiled kernel is not built here: nothing to compare", file=sys.stderr)
        return 1
    lines = generate(args.records)
    bodies = []
    for i in range(0, len(lines), FRAME_RECORDS):
        chunk = lines[i : i + FRAME_RECORDS]
        keys = [line[9 : line.index(b'"', 9)] for line in chunk]
        bodies.append(encode_frame(i, chunk, list(range(i, i + len(chunk))), keys)[12:])
    compiled = split.fast_split_values, split.fast_split_keys
    results = {}
    for name, functions in (("python", (split.split_values, split.split_keys)), ("compiled", compiled)):
        frame_format.fast_split_values, frame_format.fast_split_keys = functions
        best = min(decode_all(bodies)[0] for _ in range(3))
        results[name] = (best, decode_all(bodies)[1])
    frame_format.fast_split_values, frame_format.fast_split_keys = compiled
    python_frames, compiled_frames = results["python"][1], results["compiled"][1]
    if any(a.values != b.values or a.keys != b.keys for a, b in zip(python_frames, compiled_frames, strict=True)):
        print("MISMATCH between the reference and the kernel", file=sys.stderr)
        return 1
    python_ns = results["python"][0] / args.records * 1e9
    compiled_ns = results["compiled"][0] / args.records * 1e9
    print(f"python:   {python_ns:.0f} ns/record   compiled: {compiled_ns:.0f} ns/record (best of 3, identical frames)")
    print(
        json.dumps(
            {
                "python_ns_per_record": round(python_ns),
                "compiled_ns_per_record": round(compiled_ns),
                "speedup": round(python_ns / compiled_ns, 2),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
