"""Random conformance cases: jobs across the contract's settings, inputs that probe its edges.

    random_case(rng, index, max_arrivals) -> case (with "expected", or "refused")

Besides disorder, lateness, idle and silent partitions, future timestamps and crashes,
the input carries the edges the contract decides: keys that differ only in Unicode
normalization, astral and empty keys, escaped surrogate pairs (valid) and unpaired
surrogates (not), Unicode field names, integers at the signed 64-bit limits whose sums
must stay exact, floats whose sums overflow, ``1e400``, non-JSON constants, a byte-order
mark, and event times at and past ``2^62``. Every case's expectation is the reference
model's (`chaos.conformance.reference`).
"""

from __future__ import annotations

import json
import random
from typing import Any

from chaos.conformance.records import valid_unicode
from chaos.conformance.reference import expected
from chaos.conformance.settings import Refused, check_job

KEYS = ("k0", "k1", "k2", "k3", "café", "cafe\u0301", "😀", "日本", "", "a b")
INT64 = 2**63 - 1
PLACEHOLDER = "<literal>"

MALFORMED = (
    "{not json", "", "[1, 2]", "null", '"text"', "{'key': 'k0'}", '{"key": "k0",}', "NaN",
)  # fmt: skip


def _job(rng: random.Random) -> dict[str, Any]:
    kind = rng.choice(("tumbling", "sliding", "session"))
    if kind == "tumbling":
        window: dict[str, Any] = {"type": "tumbling", "size_ms": rng.choice((1, 7, 100, 1000, 5000))}
    elif kind == "sliding":
        slide = rng.choice((1, 50, 250, 1000))
        window = {"type": "sliding", "size_ms": slide * rng.randint(1, 5), "slide_ms": slide}
    else:
        window = {"type": "session", "gap_ms": rng.choice((1, 100, 700, 3000))}
    key, ts, amount = rng.choice((("key", "ts", "amount"), ("ключ", "時刻", "金額"), ("k", "t", "v")))
    aggs: dict[str, list[str]] = {"n": ["count"]}
    for op in rng.sample(("sum", "min", "max", "mean"), rng.randint(1, 4)):
        aggs[f"{op}_{rng.choice(('a', 'é'))}"] = [op, amount]
    if rng.random() < 0.3:
        aggs["qty"] = ["sum", "qty"]
    job = {
        "key": key, "ts": ts, "aggs": aggs, "window": window,
        "max_out_of_orderness_ms": rng.choice((0, 0, 50, 300, 2000)),
        "allowed_lateness_ms": rng.choice((0, 0, 100, 1000, 5000)),
    }  # fmt: skip
    if rng.random() < 0.35:
        job["idle_timeout_ms"] = rng.choice((1, 200, 1500))
    if rng.random() < 0.35:
        job["max_future_skew_ms"] = rng.choice((0, 50, 2000))
    if rng.random() < 0.05:
        _break_a_setting(rng, job)
    return job


def _break_a_setting(rng: random.Random, job: dict[str, Any]) -> None:
    """Put one setting just outside the contract's ranges: the job must be refused."""
    window = job["window"]
    size = next(name for name in ("size_ms", "gap_ms") if name in window)
    choice = rng.randrange(6)
    if choice == 0:
        window[size] = rng.choice((0, -1, 2**40 + 1))
    elif choice == 1:
        job[rng.choice(("max_out_of_orderness_ms", "allowed_lateness_ms"))] = rng.choice((-1, 2**40 + 1))
    elif choice == 2:
        job["idle_timeout_ms"] = rng.choice((0, 2**40 + 1))
    elif choice == 3:
        job["max_future_skew_ms"] = -1
    elif choice == 4:
        job["aggs"][rng.choice(("key", "start", "end"))] = ["count"]
    else:
        job["window"] = {"type": "sliding", "size_ms": 1000, "slide_ms": 300}


def _amount(rng: random.Random) -> Any:
    r = rng.random()
    if r < 0.04:
        return rng.choice((INT64, -INT64 - 1, 8 * 10**18, INT64 - 1))  # sums must stay exact
    if r < 0.06:
        return rng.choice((1e308, -1e308, 1.7e308))  # sums overflow to null
    if r < 0.5:
        return rng.randint(-1000, 1000)
    return round(rng.uniform(-50, 500), rng.choice((0, 2, 6)))


def _text(rng: random.Random, job: dict[str, Any], key: str, ts: int, amount: Any) -> str:
    """One record's text: usually a valid event, sometimes an edge the contract rules on."""
    fields = {job["key"]: key, job["ts"]: ts, _amount_field(job): amount, "qty": rng.randint(0, 9)}
    r = rng.random()
    if r < 0.03:
        return rng.choice(MALFORMED)
    if r < 0.045:
        return "\ufeff" + json.dumps(fields)  # a byte-order mark is not JSON
    if r < 0.07:  # JavaScript's constants are not JSON; 1e400 is JSON, but not finite (schema)
        fields[_amount_field(job)] = PLACEHOLDER
        literal = rng.choice(("NaN", "Infinity", "-Infinity", "1e400", "-1e400"))
        return json.dumps(fields).replace(json.dumps(PLACEHOLDER), literal)
    if r < 0.08:
        fields[job["key"]] = "\ud800" + key  # an unpaired surrogate: schema
    elif r < 0.09:
        fields[job["key"]] = "\ud83d\ude00"  # an escaped surrogate pair: the key 😀
    elif r < 0.1:
        fields["note"] = "\udfff"  # an unpaired surrogate outside key and aggregated fields: valid
    elif r < 0.11:
        fields[job["ts"]] = rng.choice((True, float(ts), str(ts), -1, 2**62 + 1, None))
    elif r < 0.115:
        fields[job["ts"]] = 2**62  # the largest event time the contract admits
    elif r < 0.125:
        fields[_amount_field(job)] = rng.choice((True, "7", None, [1]))
    elif r < 0.13:
        del fields[job["key"]]
    raw = json.dumps(fields, ensure_ascii=False)
    return raw if rng.random() < 0.5 and valid_unicode(raw) else json.dumps(fields)  # or escaped, \\uXXXX


def _amount_field(job: dict[str, Any]) -> str:
    return next(spec[1] for spec in job["aggs"].values() if spec[0] != "count" and spec[1] != "qty")


def _arrivals(rng: random.Random, job: dict[str, Any], partitions: int, n: int) -> list[dict[str, Any]]:
    silent = {rng.randrange(partitions)} if partitions > 1 and rng.random() < 0.2 else set()
    live = [p for p in range(partitions) if p not in silent]
    step = rng.choice((1, 20, 200))
    disorder = rng.choice((0, 100, 1500))
    t = at = rng.choice((0, 1_000_000, 1_700_000_000_000))
    arrivals = []
    for _ in range(n):
        t += rng.randint(0, 2 * step)
        at = max(at + rng.choice((0, 1, 5)), t) + (rng.choice((500, 3000)) if rng.random() < 0.02 else 0)
        ts = max(0, t - rng.randint(0, disorder))
        r = rng.random()
        if r < 0.05:
            ts = max(0, ts - rng.randint(1000, 20_000))  # late, or within the allowed lateness
        elif r < 0.08:
            ts += rng.choice((0, 1, 49, 50, 51, 5000))  # around the future-skew bound
        key = KEYS[min(int(rng.paretovariate(1.0)) - 1, len(KEYS) - 1)] if rng.random() < 0.9 else rng.choice(KEYS)
        arrivals.append({"p": rng.choice(live), "at": at, "data": _text(rng, job, key, ts, _amount(rng))})
    return arrivals


def random_case(rng: random.Random, index: int, max_arrivals: int = 300) -> dict[str, Any]:
    """A random case, named by `index`: its expectation, or the setting it is refused for."""
    job = _job(rng)
    partitions = rng.randint(1, 4)
    arrivals = _arrivals(rng, job, partitions, rng.randint(0, max_arrivals))
    case: dict[str, Any] = {"name": f"random_{index:04d}", "job": job, "partitions": partitions, "arrivals": arrivals}
    if arrivals and rng.random() < 0.25:
        crash_after = rng.randrange(len(arrivals))
        checkpoints = sorted(rng.sample(range(crash_after + 1), min(crash_after + 1, rng.randint(0, 4))))
        case["recovery"] = {"checkpoint_after": checkpoints, "crash_after": crash_after}
    try:
        check_job(job)
    except Refused as refused:
        case["refused"] = refused.setting
        case["expected"] = {"results": [], "late": [], "dlq": []}
    else:
        case["expected"] = expected(case)
    return case
