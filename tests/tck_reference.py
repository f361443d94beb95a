"""The shared TCK (``../shared/tck``) as a test dependency, and its one known defect.

The shared oracle's accumulator adds an event's value into ``sums[field]`` once per
aggregation that reads `field` (`_Acc.add` loops over the aggregations, not the
fields). With the TCK's jobs (sum, min, max and mean all on ``amount``), every
``sum`` and ``mean`` it expects is 4x the sum SEMANTICS.md defines ("Mean is
sum/count"). streamcore follows the page. `corrected_oracle` is the shared oracle
with that one method replaced; `oracle_sum_factor` says by how much the stored
expectations are off for an output, so tests can check the stored values exactly.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

TCK_DIR = Path(__file__).resolve().parents[2] / "shared" / "tck"


def available() -> bool:
    return (TCK_DIR / "oracle.py").is_file() and (TCK_DIR / "cases").is_dir()


def _load(name: str, file: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, TCK_DIR / file)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _add_once_per_field(self: Any, ev: dict[str, Any], aggs: dict[str, list[Any]]) -> None:
    self.n += 1
    for field in dict.fromkeys(spec[1] for spec in aggs.values() if spec[0] != "count"):
        v = ev[field]
        self.sums[field] = self.sums.get(field, 0) + v
        self.mins[field] = min(self.mins.get(field, v), v)
        self.maxs[field] = max(self.maxs.get(field, v), v)


def shared_oracle() -> ModuleType:
    """The oracle exactly as shared."""
    return sys.modules.get("tck_shared_oracle") or _load("tck_shared_oracle", "oracle.py")


def corrected_oracle() -> ModuleType:
    """The oracle with sums counted once per field, as SEMANTICS.md defines them."""
    if "tck_corrected_oracle" not in sys.modules:
        module = _load("tck_corrected_oracle", "oracle.py")
        module._Acc.add = _add_once_per_field
    return sys.modules["tck_corrected_oracle"]


def runner() -> ModuleType:
    """The shared run.py (for its `compare`)."""
    return sys.modules.get("tck_shared_run") or _load("tck_shared_run", "run.py")


def generator() -> ModuleType:
    """The shared gen.py (it imports `oracle` by name, so the TCK directory goes on sys.path)."""
    if str(TCK_DIR) not in sys.path:
        sys.path.insert(0, str(TCK_DIR))
    return sys.modules.get("tck_shared_gen") or _load("tck_shared_gen", "gen.py")


def oracle_sum_factor(job: dict[str, Any], output: str) -> int:
    """How many times the shared oracle counts `output`'s field into its sum (1 = no defect)."""
    op, *field = job["aggs"][output]
    if op not in ("sum", "mean"):
        return 1
    return sum(1 for spec in job["aggs"].values() if spec[0] != "count" and spec[1] == field[0])


def main(argv: list[str] | None = None) -> int:
    """Like ``run.py``, against the corrected oracle: ``python tests/tck_reference.py [--cases DIR]``."""
    import argparse
    import json
    import tempfile

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--cases", type=Path, default=TCK_DIR / "cases")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).parent))
    from tck_adapter import run_case

    passed = failed = 0
    for path in sorted(args.cases.glob("*.json")):
        case = json.loads(path.read_text())
        with tempfile.TemporaryDirectory() as workdir:
            problems = runner().compare(corrected_oracle().expected(case), run_case(case, workdir))
        if problems:
            failed += 1
            print(f"FAIL {path.name}")
            for problem in problems[:6]:
                print(f"     {problem}")
        else:
            passed += 1
            print(f"ok   {path.name}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
