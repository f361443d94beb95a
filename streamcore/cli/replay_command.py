"""``streamcore replay``: an app over a range of its input, into fresh state and suffixed outputs."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from streamcore.base.clock import SystemClock
from streamcore.cli.loader import load_app
from streamcore.cli.progress import ProgressBar, print_summary
from streamcore.io.admin import TopicAdmin
from streamcore.runtime.replay import plan_replay, run_replay


def add_parser(sub: Any, common: argparse.ArgumentParser, run: Any) -> None:
    """Add ``replay``; `run(args)` opens the broker and awaits ``args.handler(args, admin)``."""
    p = sub.add_parser(
        "replay",
        parents=[common],
        help="run an app over a range of its input into fresh state and suffixed output topics",
        description=(
            "Run the app's definitions over each input partition from --from up to --to (captured at start), "
            "writing to <topic><suffix> (results, dead letters, late records), with state in --state-dir. "
            "Bounds: earliest, latest, an ISO datetime with time zone, -DURATION, or offsets P:O,P:O."
        ),
    )
    p.add_argument("app", help="path/to/app.py, package.module, or either with :attribute")
    p.add_argument("--from", dest="start", default="earliest", help="where each partition starts")
    p.add_argument(
        "--to", dest="end", default="latest", help="where each partition ends (latest: its end as the replay starts)"
    )
    p.add_argument("--output-suffix", required=True, help="appended to every output topic, e.g. -replay")
    p.add_argument(
        "--state-dir",
        type=Path,
        default=Path(".streamcore/replay"),
        help="where the replay keeps its state (it must not hold the app's yet)",
    )
    p.add_argument("--progress-every", type=float, default=1.0, help="seconds between progress lines")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(handler=replay_command, func=run)


async def replay_command(args: argparse.Namespace, admin: TopicAdmin) -> int:
    app = load_app(args.app)
    plan = await plan_replay(app, admin, args.start, args.end, SystemClock().now_ms())
    for topic, parts in plan.ranges.items():
        ranges = ", ".join(f"{p}: {first}..{end}" for p, (first, end) in sorted(parts.items()))
        streams = sum(1 for pipeline in app.pipelines if pipeline.source == topic)
        read_by = f", read by {streams} streams" if streams > 1 else ""
        print(
            f"replay {topic} [{ranges}] into *{args.output_suffix}: {plan.records(topic):,} records{read_by}",
            file=sys.stderr,
        )
    settings = replace(args.settings, state_dir=args.state_dir)
    progress = None if args.quiet else ProgressBar(plan.total, sys.stderr)
    status = await run_replay(plan, args.output_suffix, admin, settings, progress, args.progress_every)
    if progress is not None:
        progress(status)
    return 0 if print_summary(status, sys.stderr) else 1
