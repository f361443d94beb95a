"""``streamcore backfill``: a feature view's values as of given times, point-in-time correct, for training data.

    streamcore backfill apps/fraud/app.py --view card --at rows.csv --out features.csv

`rows.csv` (or ``.jsonl``, or ``.parquet``) has a column for the view's entity (its name,
e.g. ``card``, or ``entity``) and one for the time (``ts`` or ``timestamp``: epoch ms, an
ISO datetime with zone, or a Parquet timestamp); see `streamcore.cli.row_files`.
The app runs over its whole input once, as a replay would (fresh state, outputs to
``*-backfill`` topics), so the view sees exactly the events it sees live, including what
upstream steps and models made of them. The events that reach the view for the rows'
entities are kept; each row's features are then the view's own definitions over that
entity's events stamped at or before the row's time (`FeatureView.as_of`): no later
event leaks in. The output has the row's columns, then one per feature (CSV, JSON lines
for a ``.jsonl`` path, Parquet for ``.parquet``).

``--parity URL`` checks that the live worker serves what the definitions give: it pins a
snapshot there, replays the log up to the snapshot's positions, and compares every
entity's features with what the worker serves under that snapshot, printing each
mismatch (exit 1 if there is one). On Kafka a worker owns some of the partitions: only
those are replayed and compared (run it against each worker to cover them all).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from streamcore.base.clock import SystemClock
from streamcore.base.errors import ConfigError
from streamcore.cli.loader import load_app
from streamcore.cli.progress import ProgressBar
from streamcore.cli.row_files import read_rows, write_rows
from streamcore.dataflow.app import App
from streamcore.dataflow.operator import Operator, OperatorContext
from streamcore.dataflow.stream import FunctionSink, OperatorStep, Pipeline, TopicSink
from streamcore.io.admin import TopicAdmin
from streamcore.operators import FeatureView
from streamcore.runtime.replay import ReplayPlan, plan_replay, run_replay

Events = dict[str, list[tuple[Any, int]]]
"""entity -> the events that reached the view, with their event times, in arrival order."""


def add_parser(sub: Any, common: argparse.ArgumentParser, run: Any) -> None:
    """Add ``backfill``; `run(args)` opens the broker and awaits ``args.handler(args, admin)``."""
    p = sub.add_parser(
        "backfill",
        parents=[common],
        help="a feature view's values as of given (entity, time) rows, point-in-time correct",
    )
    p.add_argument("app", help="path/to/app.py, package.module, or either with :attribute")
    p.add_argument("--view", required=True, help="the feature view")
    p.add_argument("--at", type=Path, help="rows (.csv, .jsonl, .parquet): the entity column and ts (or timestamp)")
    p.add_argument("--out", type=Path, help="where the rows with their features go (.csv, .jsonl, .parquet)")
    p.add_argument(
        "--parity",
        metavar="URL",
        help="instead: replay to what the live worker at URL has applied, and compare every entity's features",
    )
    p.add_argument("--http-token", help="the live worker's token ($STREAMCORE_HTTP_TOKEN)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(handler=backfill_command, func=run)


async def backfill_command(args: argparse.Namespace, admin: TopicAdmin) -> int:
    app = load_app(args.app)
    view, pipeline = _view(app, args.view)
    if args.parity:
        return await parity(args, admin, app, view, pipeline)
    if args.at is None or args.out is None:
        raise ConfigError("--at", "give the rows (--at rows.csv) and where they go (--out), or --parity URL")
    rows = read_rows(args.at, view.entity)
    events: Events = {str(row[view.entity]): [] for row in rows}
    await _replayed(args, admin, app, view, events, "latest")
    out = [{**row, **view.as_of(events[str(row[view.entity])], row["_at_ms"])} for row in rows]
    write_rows(args.out, out)
    print(f"{len(out):,} rows of {len(view.features)} features of view {view.name!r} written to {args.out}")
    return 0


async def _replayed(
    args: argparse.Namespace, admin: TopicAdmin, app: App, view: FeatureView, events: Events, end: str
) -> None:
    """Run `app` over its input up to `end`, keeping in `events` what reaches `view`."""
    recording = _recording_app(app, view, events)
    plan = await plan_replay(recording, admin, "earliest", end, SystemClock().now_ms())
    with tempfile.TemporaryDirectory(prefix="streamcore-backfill-") as state_dir:
        settings = replace(args.settings, state_dir=Path(state_dir))
        progress = None if args.quiet else ProgressBar(plan.total, sys.stderr)
        await run_replay(ReplayPlan(recording, plan.ranges), "-backfill", admin, settings, progress)


async def parity(args: argparse.Namespace, admin: TopicAdmin, app: App, view: FeatureView, pipeline: Pipeline) -> int:
    """Pin a snapshot on the live worker, replay to its positions, compare every entity's features."""
    token = args.http_token or os.environ.get("STREAMCORE_HTTP_TOKEN", "")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = args.parity.rstrip("/")
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.post(f"{url}/snapshots", json={"ttl_ms": 600_000}) as response:
            pinned = await response.json()
            if response.status != 201:
                raise ConfigError("--parity", f"{url} refused a snapshot: {pinned}")
        positions = {int(p): int(o) for p, o in pinned["positions"].get(pipeline.name, {}).items()}
        if not positions:
            await http.delete(f"{url}/snapshots/{pinned['id']}")
            raise ConfigError(
                "--parity",
                f"{url} keeps no partition of stream {pipeline.name!r} (on Kafka, ask a worker that owns some; "
                "a stream read from a repartition topic cannot be replayed to its position)",
            )
        # partitions the worker does not own (Kafka) replay nothing: their entities are served elsewhere
        partitions = (await admin.topic(pipeline.source)).partitions
        end = ",".join(f"{p}:{positions.get(p, 0)}" for p in range(partitions))
        events: Events = defaultdict(list)
        await _replayed(args, admin, app, view, events, end)
        now = max((ts for kept in events.values() for _, ts in kept), default=0)
        mismatches = 0
        for entity, kept in sorted(events.items()):
            replayed = view.as_of(kept, now)
            query = {"view": view.name, "snapshot": pinned["id"]}
            async with http.get(f"{url}/features/{quote(entity, safe='')}", params=query) as response:
                body = await response.json()
            if response.status != 200:
                mismatches += 1
                print(f"MISMATCH {entity}: live answered {response.status}: {body.get('error')}")
                continue
            live = {name: f["value"] for name, f in body["views"][0]["features"].items()}
            for name, value in replayed.items():
                if live.get(name) != value or type(live.get(name)) is not type(value):
                    mismatches += 1
                    print(f"MISMATCH {entity} {name}: live {live.get(name)!r}, replayed {value!r}")
        await http.delete(f"{url}/snapshots/{pinned['id']}")
    print(
        f"parity of view {view.name!r} at {pipeline.source} {positions}: {len(events):,} entities, "
        f"{len(view.features)} features each, {mismatches} mismatches"
    )
    return 0 if mismatches == 0 else 1


def _view(app: App, name: str) -> tuple[FeatureView, Pipeline]:
    """The feature view `name` and the pipeline that keeps it."""
    for pipeline in app.pipelines:
        for step in pipeline.steps:
            if isinstance(step, OperatorStep) and isinstance(step.spec, FeatureView) and step.spec.name == name:
                return step.spec, pipeline
    raise ConfigError("--view", f"app {app.name!r} keeps no feature view {name!r}")


class _Recorded:
    """The view, built as usual, whose operator also keeps the events it applied for `events`' entities."""

    def __init__(self, view: FeatureView, events: Events) -> None:
        self.view = view
        self.events = events
        self.name, self.state_version, self.needs_event_time = view.name, view.state_version, view.needs_event_time

    def checker(self) -> Callable[[Any], None]:
        check: Callable[[Any], None] = self.view.checker()
        return check

    def build(self, context: OperatorContext) -> Operator:
        operator: Operator = self.view.build(context)
        apply, events = operator.process, self.events

        def process(key: Any, event: Any, ts: int) -> Any:
            kept = events[key] if isinstance(events, defaultdict) else events.get(key)
            seen = dict(event) if kept is not None and type(event) is dict else event  # later steps may add fields
            result = apply(key, event, ts)  # raises for an event the view refuses: not kept
            if kept is not None:
                kept.append((seen, ts))
            return result

        operator.process = process  # type: ignore[method-assign,assignment]
        return operator


def _recording_app(app: App, view: FeatureView, events: Events) -> App:
    """`app` with `view` recorded and results discarded (dead letters still go to ``*-backfill`` topics)."""

    def recorded(pipeline: Pipeline) -> Pipeline:
        steps = tuple(
            OperatorStep(_Recorded(view, events)) if isinstance(s, OperatorStep) and s.spec is view else s
            for s in pipeline.steps
        )
        sink = FunctionSink(_discard, "discarded") if isinstance(pipeline.sink, TopicSink) else pipeline.sink
        return replace(pipeline, steps=steps, sink=sink)

    return app.with_output_suffix("", recorded)


def _discard(values: list[Any]) -> None:
    return None
