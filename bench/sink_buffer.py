"""Benchmark: buffering a sink's outputs as a list of bytes objects, or packed as a frame holds them.

    python bench/sink_buffer.py [--records N]

N window results (the window benchmark's shape) are encoded with orjson and buffered
until one flush, twice in one run: (a) each result kept as its own bytes object in a
list, as the embedded sink did, and (b) copied into one `PackedValues` buffer and freed
at once. Both must encode the same frame. The last line is JSON
``{"list_ns_per_record": ..., "packed_ns_per_record": ..., "speedup": ...}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import orjson

from streamcore.io.log.format import PackedValues, encode_frame


def buffer(n: int, packed: bool) -> tuple[float, list[bytes] | PackedValues]:
    values: list[bytes] | PackedValues = PackedValues() if packed else []
    add = values.append
    dumps = orjson.dumps
    out = {"key": "c1234", "start": 1_700_000_000_000, "end": 1_700_000_060_000, "n": 0, "total": 0.0, "revision": 0}
    started = time.perf_counter()
    for i in range(n):
        out["n"] = i
        out["total"] = i * 1.5
        add(dumps(out))
    return time.perf_counter() - started, values


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=200_000)
    args = ap.parse_args()
    listed_s, listed = buffer(args.records, packed=False)
    packed_s, packed = buffer(args.records, packed=True)
    stamps = list(range(args.records))
    if encode_frame(0, listed, stamps) != encode_frame(0, packed, stamps):
        print("MISMATCH: the two buffers encode different frames", file=sys.stderr)
        return 1
    list_ns, packed_ns = listed_s / args.records * 1e9, packed_s / args.records * 1e9
    print(f"list of bytes: {list_ns:.0f} ns/record   packed: {packed_ns:.0f} ns/record (identical frames)")
    print(
        json.dumps(
            {
                "list_ns_per_record": round(list_ns),
                "packed_ns_per_record": round(packed_ns),
                "speedup": round(list_ns / packed_ns, 2),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
