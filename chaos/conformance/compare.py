"""How a run's outputs are judged against a case's expectation (``SEMANTICS.md``, "Outputs").

Results are matched by window ``(key, start, end)``; each aggregate compares with a
relative tolerance of 1e-9 (and an absolute one of 1e-9, for a float sum that cancels
to about zero), ``null`` only with ``null``, a boolean only with itself. Late records and
dead letters compare as sets.
"""

from __future__ import annotations

import math
from typing import Any

SHOWN = 5
"""Differences listed per kind, so that one broken rule does not bury the rest."""


def _same(expected: Any, got: Any) -> bool:
    numbers = (int, float)
    if isinstance(expected, bool) or isinstance(got, bool):
        return expected is got
    if isinstance(expected, numbers) and isinstance(got, numbers):
        return math.isclose(expected, got, rel_tol=1e-9, abs_tol=1e-9)
    return bool(expected == got)


def _windows(rows: list[dict[str, Any]], problems: list[str]) -> dict[tuple[Any, ...], dict[str, Any]]:
    table: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        window = (row.get("key"), row.get("start"), row.get("end"))
        if window in table:
            problems.append(f"window {window} is in the results twice")
        table[window] = row
    return table


def differences(expected: dict[str, Any], got: dict[str, Any]) -> list[str]:
    """Every way `got` differs from `expected`, a few of each kind; empty when they agree."""
    problems: list[str] = []
    want, have = _windows(expected["results"], problems), _windows(got.get("results", []), problems)
    missing, extra = sorted(want.keys() - have.keys(), key=repr), sorted(have.keys() - want.keys(), key=repr)
    problems += [f"missing window {w}: expected {want[w]}" for w in missing[:SHOWN]]
    problems += [f"unexpected window {w}: {have[w]}" for w in extra[:SHOWN]]
    wrong = 0
    for window in sorted(want.keys() & have.keys(), key=repr):
        bad = {f: (v, have[window].get(f)) for f, v in want[window].items() if not _same(v, have[window].get(f))}
        if bad:
            wrong += 1
            if wrong <= SHOWN:
                problems.append(f"window {window}, (expected, got): {bad}")
    for kind, fields in (("late", ("p", "offset")), ("dlq", ("p", "offset", "reason"))):
        want_set = {tuple(x[f] for f in fields) for x in expected[kind]}
        have_set = {tuple(x.get(f) for f in fields) for x in got.get(kind, [])}
        if want_set != have_set:
            missing_records, unexpected = sorted(want_set - have_set), sorted(have_set - want_set)
            problems.append(f"{kind}: missing {missing_records[:SHOWN]}, unexpected {unexpected[:SHOWN]}")
    return problems
