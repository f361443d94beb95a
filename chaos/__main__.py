"""The chaos suite: real processes, real faults, an exact verdict for every run.

    python -m chaos list
    python -m chaos run SCENARIO... | all  [--broker embedded|kafka|both] [--runs N] [--seed S]
                                           [--events N] [--report DIR] [--dir DIR]
    python -m chaos tck [--cases DIR] [--random N] [--seed S] [--adapter FILE | --operator MODULE:FUNCTION]
    python -m chaos tck --write DIR [--random N] [--seed S]
    python -m chaos mutants [NAME...] [--runs N] [--seed S]

Each run of a scenario drives real ``streamcore`` processes on its own input, injects
its fault, lets the system recover and judges the final state exactly (see each
scenario's description: ``python -m chaos list``). ``--broker kafka`` starts a
Kafka-protocol broker (Tansu, from the test extra) on a free loopback port for the
suite. The report (``--report``, default ``chaos-report/``) has every run as JSON, a
Markdown table and a plot. The exit status is 0 only when every run passed.

``tck`` runs the event-time contract's conformance cases (``chaos/conformance/cases``,
and ``--random N`` more from the generator) against streamcore, or against your
operator inside streamcore's runtime (``--operator``), or any adapter (``--adapter``);
``--write`` stores the hand-shaped cases and N random ones, with their expectations.

``mutants`` runs deliberately broken builds (``chaos/mutants.py``) through the scenarios
that must catch them; the exit status is 0 only when every one was caught.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
from pathlib import Path

import chaos.scenarios  # noqa: F401 - registers the scenarios
from chaos import report
from chaos.suite import SCENARIOS, Context, Verdict, run_one


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m chaos", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the scenarios and what each checks")
    run = sub.add_parser("run", help="run scenarios")
    run.add_argument("scenarios", nargs="+", metavar="SCENARIO", help=f"{', '.join(SCENARIOS)}, or all")
    run.add_argument("--broker", choices=("embedded", "kafka", "both"), default="both")
    run.add_argument("--runs", type=int, default=1, help="runs of each scenario (default 1)")
    run.add_argument("--seed", type=int, default=1, help="the first run's seed; run k uses seed + k")
    run.add_argument("--events", type=int, default=100_000, help="input size (each scenario scales it)")
    run.add_argument("--report", type=Path, default=Path("chaos-report"))
    run.add_argument("--dir", type=Path, help="where runs keep their data (default: a temporary directory, removed)")
    tck = sub.add_parser("tck", help="run the conformance cases of the event-time contract")
    tck.add_argument("--cases", type=Path, help="a directory of cases (default: chaos/conformance/cases)")
    tck.add_argument("--random", type=int, default=0, metavar="N", help="N random cases more, from the generator")
    tck.add_argument("--seed", type=int, default=1)
    tck.add_argument("--max-arrivals", type=int, default=300, help="largest random case (default 300)")
    judged = tck.add_mutually_exclusive_group()
    judged.add_argument("--adapter", type=Path, help="a Python file defining run_case(case, workdir)")
    judged.add_argument("--operator", metavar="MODULE:FUNCTION", help="your operator: function(keyed, job) -> stream")
    tck.add_argument("--write", type=Path, metavar="DIR", help="store the hand-shaped and N random cases, and stop")
    tck.add_argument("-v", "--verbose", action="store_true", help="a line for every case, every difference")
    mutants = sub.add_parser("mutants", help="check that the scenarios catch deliberately broken builds")
    mutants.add_argument("names", nargs="*", metavar="NAME", help="which mutants (default: all)")
    mutants.add_argument("--runs", type=int, default=2, help="runs of each of a mutant's scenarios (default 2)")
    mutants.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    if args.command == "mutants":
        from chaos import mutants as broken_builds

        return broken_builds.main(args.names, args.runs, args.seed)
    if args.command == "tck":
        return conformance(args)
    if args.command == "list":
        for s in SCENARIOS.values():
            print(f"{s.name:<14} [{', '.join(s.brokers)}]  {s.description}")
        return 0
    names = list(SCENARIOS) if args.scenarios == ["all"] else args.scenarios
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        ap.error(f"no scenario {unknown}; choose from {', '.join(SCENARIOS)} or all")
    brokers = ("embedded", "kafka") if args.broker == "both" else (args.broker,)
    with tempfile.TemporaryDirectory(prefix="streamcore-chaos-") as tmp:
        verdicts = run_all(names, brokers, args, args.dir or Path(tmp))
    report.write(verdicts, args.report)
    failed = [v for v in verdicts if not v.passed]
    print(f"{len(verdicts) - len(failed)} of {len(verdicts)} runs passed; report in {args.report}/report.md")
    return 1 if failed or not verdicts else 0


def run_all(names: list[str], brokers: tuple[str, ...], args: argparse.Namespace, root: Path) -> list[Verdict]:
    verdicts = []
    for broker in brokers:
        chosen = [SCENARIOS[n] for n in names if broker in SCENARIOS[n].brokers]
        if not chosen:
            continue
        with _broker(broker) as (where, pid):
            for s in chosen:
                for k in range(args.runs):
                    context = Context(root / f"{s.name}-{broker}-{k}", args.seed + k, args.events, where, pid)
                    verdict = run_one(s, context, k)
                    verdicts.append(verdict)
                    status = "passed" if verdict.passed else "FAILED: " + "; ".join(verdict.problems)[:300]
                    if verdict.skipped:
                        status = f"skipped: {verdict.skipped}"
                    print(f"{s.name} [{broker}] run {k} (seed {context.seed}): {status}  ({verdict.seconds:.1f} s)")
                    sys.stdout.flush()
    return verdicts


def conformance(args: argparse.Namespace) -> int:
    from chaos.conformance import harness
    from chaos.conformance.named import named_cases

    random_cases = harness.random_cases(args.random, args.seed, args.max_arrivals)
    if args.write:
        count = harness.write(args.write, itertools.chain(named_cases(), random_cases))
        print(f"{count} cases written to {args.write}")
        return 0
    stored = harness.stored_cases(args.cases or harness.CASES_DIR)
    run_case = harness.load_adapter(args.adapter, args.operator)
    return harness.run(run_case, itertools.chain(stored, random_cases), args.verbose)


class _broker:
    """``embedded`` as is; ``kafka``: a Tansu broker on a free loopback port, stopped afterwards."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._proc = None

    def __enter__(self) -> tuple[str, int | None]:
        if self.kind == "embedded":
            return "embedded", None
        from streamcore.testing import start_tansu

        self._proc, address = start_tansu()
        return f"kafka://{address}", self._proc.pid

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(10)


if __name__ == "__main__":
    sys.exit(main())
