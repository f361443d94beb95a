"""Deliberately broken builds, and the scenarios that must catch them: the suite tested by its own faults.

    python -m chaos mutants [NAME...] [--runs N]    (default: every mutant of MUTANTS)

Each mutant is one small change to the runtime that breaks a promise the engine makes
(state restored exactly, a zombie fenced, outputs durable before positions). For each,
the runtime and the suite are copied to a temporary directory, the change is applied
there (the repository is never touched), and the mutant's scenarios run against the
copy. A mutant is caught when a run fails; the exit status is 0 only when every mutant
was caught. A change that no longer applies (its code moved) is an error, not a pass.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutant:
    name: str
    breaks: str
    file: str
    """Under the repository's root."""
    old: str
    new: str
    scenarios: tuple[str, ...]
    broker: str


MUTANTS = (
    Mutant(
        "restore-from-the-start",
        "a restarted task keeps its restored state but reads its input again from offset 0",
        "streamcore/runtime/task.py",
        'self.positions = {int(p): off for p, off in meta["positions"].items()}',
        'self.positions = {int(p): 0 for p, off in meta["positions"].items()}',
        ("kill9",),
        "embedded",
    ),
    Mutant(
        "positions-before-outputs",
        "a checkpoint's positions are written without flushing the outputs first (they may die with the process)",
        "streamcore/runtime/task_run.py",
        "        await self.flush()\n        self._checkpoint_started",
        "        self._checkpoint_started",
        ("kill9",),
        "embedded",
    ),
)


SOMETIMES = (
    Mutant(
        "watermark-not-restored",
        "a restarted task starts its watermark from nothing, so it accepts what was late before the crash",
        "streamcore/runtime/task.py",
        'self.tracker.restore(meta["watermark"])',
        "pass",
        ("kill9",),  # 2 of 8 runs: only a late record in the first few after a restart shows it (the TCK's
        "embedded",  # 12_crash_and_recover catches it every time, in the tests)
    ),
    Mutant(
        "no-zombie-guards",
        "a worker evicted from the group still replicates its checkpoints to the changelog, and the new owner"
        " does not overwrite them",
        "streamcore/io/kafka_changelog.py",
        "        if self.fence is not None and not await self.fence():",
        "        self._next = None  # no repair either\n        if False:",
        ("stalled-disk",),  # `zombie` rarely catches it: its freeze seldom lands between fence and send
        "kafka",
    ),
)
"""Mutants a scenario catches in some runs only (run them by name, with more runs): the
default set, which CI runs, holds only those caught every time so far."""


def _copy(directory: Path) -> None:
    """The runtime (with its built kernels) and the suite, beside each other in `directory`."""
    for package in ("streamcore", "chaos"):
        shutil.copytree(ROOT / package, directory / package, ignore=shutil.ignore_patterns("__pycache__"))


def _apply(mutant: Mutant, directory: Path) -> None:
    path = directory / mutant.file
    text = path.read_text()
    if text.count(mutant.old) != 1:
        raise SystemExit(f"mutant {mutant.name}: its change no longer applies to {mutant.file} (the code moved)")
    path.write_text(text.replace(mutant.old, mutant.new))


def run_mutant(mutant: Mutant, runs: int, seed: int) -> tuple[bool, str]:
    """Whether a run of the mutant's scenarios failed (it was caught), and the first reason."""
    with tempfile.TemporaryDirectory(prefix=f"streamcore-mutant-{mutant.name}-") as tmp:
        directory = Path(tmp)
        _copy(directory)
        _apply(mutant, directory)
        report = directory / "report"
        command = [sys.executable, "-m", "chaos", "run", *mutant.scenarios, "--broker", mutant.broker]
        command += ["--runs", str(runs), "--seed", str(seed), "--report", str(report)]
        # run from the copy: `python -m` puts the working directory first on the path
        ran = subprocess.run(command, cwd=directory, capture_output=True, text=True, check=False, timeout=3600)
        lines = (report / "runs.jsonl").read_bytes().splitlines() if (report / "runs.jsonl").exists() else []
        failed = [run for run in map(orjson.loads, lines) if not run["passed"]]
        if failed:
            return True, f"{failed[0]['scenario']} run {failed[0]['run']}: {failed[0]['problems'][0][:200]}"
        if ran.returncode != 0:
            raise SystemExit(f"mutant {mutant.name}: the suite did not run: {ran.stderr[-1500:]}")
        return False, f"{len(lines)} runs of {', '.join(mutant.scenarios)} passed"


def main(names: list[str], runs: int, seed: int) -> int:
    known = MUTANTS + SOMETIMES
    chosen = [m for m in known if m.name in names] if names else list(MUTANTS)
    unknown = set(names) - {m.name for m in known}
    if unknown:
        raise SystemExit(f"no mutant {sorted(unknown)}; known: {', '.join(m.name for m in known)}")
    missed = 0
    for mutant in chosen:
        caught, why = run_mutant(mutant, runs, seed)
        missed += not caught
        print(f"{mutant.name:<24} {'caught' if caught else 'NOT CAUGHT'}: {why}\n{'':<24} ({mutant.breaks})")
        sys.stdout.flush()
    print(f"{len(chosen) - missed} of {len(chosen)} mutants caught")
    return 1 if missed else 0
