"""``streamcore reset``: start an app over from a chosen point of its input (see `streamcore.runtime.reset`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from streamcore.base.clock import SystemClock
from streamcore.cli.loader import load_app
from streamcore.io.admin import TopicAdmin
from streamcore.runtime.reset import apply_reset, plan_reset


def add_parser(sub: Any, common: argparse.ArgumentParser, run: Any) -> None:
    """Add ``reset``; `run(args)` opens the broker and awaits ``args.handler(args, admin)``."""
    p = sub.add_parser(
        "reset",
        parents=[common],
        help="move an app's input positions and drop its derived state (no worker may be running)",
        description=(
            "Move an app's input positions, drop its local state and (Kafka) its changelogs and unread "
            "repartitioned records, so that the next run starts at --to. Refused while a worker is alive."
        ),
    )
    p.add_argument("app", help="path/to/app.py, package.module, or either with :attribute")
    p.add_argument(
        "--to",
        required=True,
        help="earliest, latest, an ISO datetime with time zone (2026-12-01T10:00:00Z), or -DURATION (-1h)",
    )
    p.add_argument("--state-dir", type=Path, help="the app's local state (default: $STREAMCORE_STATE_DIR)")
    p.add_argument("--dry-run", action="store_true", help="say what would change, change nothing")
    p.add_argument(
        "--force",
        action="store_true",
        help="you know no worker runs: skip the consumer group check (for brokers that keep departed "
        "members listed, as Tansu does); a locked local state is still refused",
    )
    p.set_defaults(handler=reset_command, func=run)


DASH_VALUES = ("--to", "--from", "--output-suffix")
"""Options whose values may begin with a dash (``-1h``, ``-replay``)."""


def joined_dash_values(argv: list[str]) -> list[str]:
    """``reset ... --to -1h`` as ``--to=-1h``, ``replay ... --output-suffix -r`` as ``--output-suffix=-r``:
    argparse would take such a value for an option."""
    if not argv or argv[0] not in ("reset", "replay"):
        return argv
    out: list[str] = []
    i = 0
    while i < len(argv):
        value = argv[i + 1] if i + 1 < len(argv) else ""
        if argv[i] in DASH_VALUES and value.startswith("-") and not value.startswith("--"):
            out.append(f"{argv[i]}={value}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


async def reset_command(args: argparse.Namespace, admin: TopicAdmin) -> int:
    app = load_app(args.app)
    state_dir = Path(args.state_dir) if args.state_dir else args.settings.state_dir
    plan = await plan_reset(app, admin, state_dir, args.to, SystemClock().now_ms(), check_group=not args.force)
    verb = "would reset" if args.dry_run else "reset"
    print(f"{verb} app {app.name!r} on {admin.where} to {args.to}:", file=sys.stdout)
    for line in plan.lines():
        print(f"  {line}")
    if not args.dry_run:
        await apply_reset(app, admin, state_dir, plan)
        print("done: the next run starts there")
    return 0
