"""Running conformance cases against an adapter, one line per case, as ``python -m chaos tck`` prints them.

An adapter is ``run_case(case, workdir) -> {"results", "late", "dlq"}`` (the shape of
``SEMANTICS.md``): streamcore's own by default, or any Python file that defines one
(``--adapter``), or streamcore's runtime around an operator of yours (``--operator``).
A case with ``"refused": NAME`` passes when `run_case` raises an error naming NAME.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import random
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

from chaos.conformance.compare import differences
from chaos.conformance.generator import random_case

CASES_DIR = Path(__file__).parent / "cases"
RunCase = Callable[[dict[str, Any], str], dict[str, Any]]


def load_adapter(adapter: Path | None = None, operator: str | None = None) -> RunCase:
    """The `run_case` to judge: from the file `adapter`, or streamcore's around `operator`
    (``MODULE:FUNCTION``, a function ``(keyed_stream, job) -> stream``), or streamcore's own."""
    if adapter is not None:
        spec = importlib.util.spec_from_file_location("conformance_adapter", adapter)
        if spec is None or spec.loader is None:
            raise SystemExit(f"cannot load an adapter from {adapter}")
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(adapter.resolve().parent))
        spec.loader.exec_module(module)
        return module.run_case  # type: ignore[no-any-return]
    from chaos.conformance import streamcore_adapter

    if operator is None:
        return streamcore_adapter.run_case
    module_name, _, function = operator.partition(":")
    if not function:
        raise SystemExit(f"--operator wants MODULE:FUNCTION, got {operator!r}")
    return partial(streamcore_adapter.run_case, operator=getattr(importlib.import_module(module_name), function))


def stored_cases(directory: Path = CASES_DIR) -> Iterator[dict[str, Any]]:
    paths = sorted(directory.glob("*.json"))
    if not paths:
        raise SystemExit(f"no cases (*.json) in {directory}")
    for path in paths:
        yield json.loads(path.read_text(encoding="utf-8"))  # not orjson: sums past 64 bits are in them


def random_cases(count: int, seed: int, max_arrivals: int = 300) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    for i in range(count):
        yield random_case(rng, i, max_arrivals)


def judge(run_case: RunCase, case: dict[str, Any]) -> list[str]:
    """What is wrong with `run_case`'s outputs for `case`; empty when it conforms."""
    with tempfile.TemporaryDirectory(prefix="streamcore-tck-") as workdir:
        try:
            got = run_case(case, workdir)
        except Exception as exc:  # noqa: BLE001 - an adapter's failure is a verdict, not a crash
            if "refused" in case:
                named = case["refused"] in str(exc)
                return [] if named else [f"refused, but the error does not name {case['refused']!r}: {exc}"]
            return ["the adapter raised:\n" + traceback.format_exc(limit=6)]
    if "refused" in case:
        return [f"the job should be refused when built (setting {case['refused']!r}); it ran"]
    return differences(case["expected"], got)


def run(run_case: RunCase, cases: Iterable[dict[str, Any]], verbose: bool = False) -> int:
    """Judge every case, print a line each and ``N passed, N failed``; 1 if any failed (or none ran)."""
    if not verbose:  # the engine's warnings about a case's odd input (1970 event times) are not verdicts
        logging.getLogger("streamcore").setLevel(logging.ERROR)
    passed = failed = 0
    for case in cases:
        started = time.perf_counter()
        problems = judge(run_case, case)
        ms = (time.perf_counter() - started) * 1000
        if problems:
            failed += 1
            print(f"FAIL {case['name']} ({ms:.0f} ms)")
            for problem in problems if verbose else problems[:6]:
                print("     " + problem)
        else:
            passed += 1
            if verbose:
                print(f"ok   {case['name']} ({ms:.0f} ms)")
        sys.stdout.flush()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


def write(directory: Path, cases: Iterable[dict[str, Any]]) -> int:
    """Store `cases` as ``NAME.json`` files in `directory`; return how many."""
    directory.mkdir(parents=True, exist_ok=True)
    names = []
    for case in cases:
        text = _dump(case)
        (directory / f"{case['name']}.json").write_text(text, encoding="utf-8")
        names.append(case["name"])
    return len(names)


def _dump(case: dict[str, Any]) -> str:
    """A case as JSON text with a line per arrival, result, late record and dead letter."""

    def value(v: Any, indent: str) -> str:
        if isinstance(v, list) and v:
            inner = indent + "  "
            return "[\n" + ",\n".join(inner + json.dumps(x, ensure_ascii=False) for x in v) + "\n" + indent + "]"
        if isinstance(v, dict) and any(isinstance(x, list) for x in v.values()):
            inner = indent + "  "
            fields = (f"{inner}{json.dumps(k)}: {value(x, inner)}" for k, x in v.items())
            return "{\n" + ",\n".join(fields) + "\n" + indent + "}"
        return json.dumps(v, ensure_ascii=False)

    return value(case, "") + "\n"
