"""``streamcore``: run apps, the demo, and tools for the embedded log and dead letters.

streamcore run APP [--until-end]     run an app file or module
streamcore worker APP --broker kafka://HOST:PORT   one worker of the app's Kafka consumer group
streamcore demo [fraud|payments]     a bundled demo on a generated live stream
streamcore log topics|produce|tail   topics (embedded or --broker kafka://...)
streamcore dlq list|show|replay      dead-lettered records
streamcore reset APP --to WHEN       start an app over from a point of its input
streamcore replay APP --output-suffix S [--from ..] [--to ..]   a range again, into suffixed topics
streamcore backfill APP --view V --at rows.csv --out F          features as of given times (or --parity URL)
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import importlib
import logging
import os
import sys
from pathlib import Path

from streamcore.base.errors import ConfigError, StreamcoreError
from streamcore.cli import (
    backfill_command,
    dlq_commands,
    log_commands,
    logs,
    mcp_command,
    replay_command,
    reset_command,
)
from streamcore.cli.loader import load_app
from streamcore.cli.progress import ProgressPrinter, print_summary
from streamcore.io.admin import open_admin
from streamcore.runtime.env_check import unknown_variables
from streamcore.runtime.runner import Runner
from streamcore.runtime.settings import RunSettings
from streamcore.runtime.status import RunStatus

DEMOS = {"fraud": "streamcore.apps.fraud.demo", "payments": "streamcore.apps.payments.demo"}
"""`streamcore demo [NAME]`: the bundled demos (imported by name: the runtime does not import apps)."""


def _kernels() -> dict[str, bool]:
    """Each compiled kernel, and whether it is the one running (importing a module loads its kernel)."""
    from streamcore.base import kernels
    from streamcore.io import merge  # noqa: F401
    from streamcore.io.log import split  # noqa: F401
    from streamcore.operators import compiled_windows, features  # noqa: F401

    return dict(sorted(kernels.active().items()))


def _version() -> str:
    """The version, and which path runs: the compiled kernels, or pure Python (and why)."""
    from importlib.metadata import version

    __version__ = version("streamcore")
    active = _kernels()
    compiled = [label for label, on in active.items() if on]
    if compiled and len(compiled) == len(active):
        return f"streamcore {__version__} (compiled kernels: {', '.join(compiled)})"
    reason = "STREAMCORE_PURE_PYTHON is set" if os.environ.get("STREAMCORE_PURE_PYTHON") else "kernels not built"
    missing = ", ".join(label for label, on in active.items() if not on)
    return f"streamcore {__version__} (pure Python: {reason}: {missing})"


def _warn_if_pure_python() -> None:
    """One clear line when the compiled kernels were not built (a plain install without a C compiler)."""
    if not all(_kernels().values()) and not os.environ.get("STREAMCORE_PURE_PYTHON"):
        print(
            "streamcore: running on pure Python: the compiled kernels were not built "
            "(install a C compiler, e.g. gcc, and reinstall streamcore)",
            file=sys.stderr,
        )


def _settings(args: argparse.Namespace, **extra: object) -> RunSettings:
    broker = f"embedded:{args.log_dir}" if getattr(args, "log_dir", None) else getattr(args, "broker", None)
    return RunSettings.from_env(broker=broker, **extra)  # type: ignore[arg-type]


def run_command(args: argparse.Namespace) -> int:
    app = load_app(args.app)
    settings = _settings(
        args,
        state_dir=args.state_dir,
        until_end=getattr(args, "until_end", False) or None,
        checkpoint_interval_ms=args.checkpoint_interval_ms,
        http=args.http,
        advertise=getattr(args, "advertise", None),
        offset_reset=args.offset_reset,
        http_token=args.http_token,
        mcp=args.mcp or None,
        mcp_token=args.mcp_token,
        fsync=args.fsync,
    )
    if args.command == "worker" and not settings.broker.startswith("kafka://"):
        raise ConfigError("broker", "a worker joins a Kafka group: pass --broker kafka://HOST:PORT")
    # a worker's partitions gained and lost, restores and their rates: what an operator wants in the log
    default_level = "info" if args.command == "worker" else "warning"
    logs.configure(
        args.log_level or os.environ.get("STREAMCORE_LOG_LEVEL", default_level),
        args.log_format or os.environ.get("STREAMCORE_LOG_FORMAT", "text"),
    )
    for warning in unknown_variables(os.environ):
        logging.getLogger("streamcore").warning(warning)
    _warn_if_pure_python()
    progress = None if args.quiet else ProgressPrinter(sys.stderr)
    runner = Runner(app, settings, progress=progress, progress_interval_s=args.progress_every)
    status = asyncio.run(_run_saying_where_it_listens(runner))
    return 0 if print_summary(status, sys.stderr) else 1


async def _run_saying_where_it_listens(runner: Runner) -> RunStatus:
    """Run; with ``--http``, print the address once the server listens (the port may have been 0)."""
    running = asyncio.create_task(runner.run())
    if runner.settings.http:
        while runner.server is None and not running.done():  # noqa: ASYNC110 - the runner sets it once bound
            await asyncio.sleep(0.02)
        if runner.server is not None:
            url = f"http://{runner.server.host}:{runner.server.port}"
            print(f"HTTP on {url}: the status page is {url}/, features {url}/features/ID", file=sys.stderr)
    return await running


def demo_command(args: argparse.Namespace) -> int:
    rest = list(args.demo_args)
    name = rest.pop(0) if rest and not rest[0].startswith("-") else "fraud"
    if name not in DEMOS:
        print(f"streamcore: error: no demo {name!r}; choose one of {', '.join(DEMOS)}", file=sys.stderr)
        return 2
    demo = importlib.import_module(DEMOS[name])
    return int(demo.main(rest))


def _tool_command(args: argparse.Namespace) -> int:
    """A tool (``log``, ``dlq``, ``reset``, ``replay``, ``backfill``): its handler with the broker's `TopicAdmin`."""
    args.settings = _settings(args)
    broker = args.settings.broker

    async def with_admin() -> int:
        admin = await open_admin(broker)
        try:
            return int(await args.handler(args, admin))
        finally:
            await admin.close()

    return asyncio.run(with_admin())


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--log-dir", help="embedded log directory (default: $STREAMCORE_BROKER or .streamcore/log)")
    tools = argparse.ArgumentParser(add_help=False, parents=[common])
    tools.add_argument("--broker", help="embedded:<dir> or kafka://host:port instead ($STREAMCORE_BROKER)")
    parser = argparse.ArgumentParser(
        prog="streamcore", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", parents=[common], help="run an app file or module")
    run.add_argument("--until-end", action="store_true", help="stop once the sources are exhausted")
    worker = sub.add_parser(
        "worker", help="run an app as one worker of its Kafka consumer group (state follows its partitions)"
    )
    worker.add_argument(
        "--advertise", metavar="URL", help="URL other workers forward this worker's entities to ($STREAMCORE_ADVERTISE)"
    )
    for command in (run, worker):
        command.add_argument("app", help="path/to/app.py, package.module, or either with :attribute")
        command.add_argument("--state-dir", type=Path, help="RocksDB state (default: $STREAMCORE_STATE_DIR)")
        command.add_argument("--broker", help="embedded:<dir> (default) or kafka://host:port ($STREAMCORE_BROKER)")
        command.add_argument("--checkpoint-interval-ms", type=int, help="milliseconds between checkpoints")
        command.add_argument(
            "--fsync",
            choices=("never", "always"),
            help="always: sync the log's appends and each checkpoint to disk (survives power loss) "
            "($STREAMCORE_FSYNC; default never)",
        )
        command.add_argument("--http", metavar="HOST:PORT", help="serve features, scores, health and metrics here")
        command.add_argument(
            "--http-token",
            help="require 'Authorization: Bearer TOKEN' on HTTP but /health, /metrics ($STREAMCORE_HTTP_TOKEN)",
        )
        command.add_argument(
            "--mcp",
            action="store_true",
            help="serve the app's views and models as MCP tools at /mcp on the --http port ($STREAMCORE_MCP)",
        )
        command.add_argument(
            "--mcp-token",
            help="require 'Authorization: Bearer TOKEN' on /mcp; needed beyond loopback ($STREAMCORE_MCP_TOKEN)",
        )
        command.add_argument(
            "--offset-reset",
            choices=("none", "latest"),
            help="a checkpoint past the end of an embedded partition: stop (none, the default) "
            "or go on from the end (latest) ($STREAMCORE_OFFSET_RESET)",
        )
        command.add_argument("--progress-every", type=float, default=2.0, help="seconds between progress lines")
        command.add_argument("--quiet", action="store_true", help="no progress lines")
        command.add_argument(
            "--log-level", choices=logs.LEVELS, help="info for a worker, warning for run ($STREAMCORE_LOG_LEVEL)"
        )
        command.add_argument("--log-format", choices=logs.FORMATS, help="text or json ($STREAMCORE_LOG_FORMAT)")
        command.set_defaults(func=run_command)

    demo = sub.add_parser(
        "demo",
        help="run the bundled demo app over a generated stream (see demo --help)",
        usage="streamcore demo [fraud|payments] [options]",
        add_help=False,
    )
    demo.set_defaults(func=demo_command)

    log_commands.add_parsers(sub, tools, _tool_command)
    dlq_commands.add_parsers(sub, tools, _tool_command)
    reset_command.add_parser(sub, tools, _tool_command)
    replay_command.add_parser(sub, tools, _tool_command)
    backfill_command.add_parser(sub, tools, _tool_command)
    mcp_command.add_parser(sub)
    _show_defaults(parser)
    return parser


class _DefaultsShown(argparse.HelpFormatter):
    """Help that ends each option with its default, where it has one worth saying (not None or off)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if (
            action.option_strings
            and action.default not in (None, False, argparse.SUPPRESS)
            and "%(default)" not in text
        ):
            text += " (default: %(default)s)"
        return text


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parsers of `parser`'s subcommands by name (argparse has no public way to ask)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _show_defaults(parser: argparse.ArgumentParser) -> None:
    """Every subcommand's help shows its options' defaults."""
    for sub in _subcommands(parser).values():
        if sub.formatter_class is argparse.HelpFormatter:
            sub.formatter_class = _DefaultsShown
        _show_defaults(sub)


def _subcommand_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The parser of the (sub)subcommand that ran, so that an error shows its usage, not the top one."""
    for dest in ("command", "log_command", "dlq_command"):
        chosen = _subcommands(parser).get(getattr(args, dest, None) or "")
        if chosen is None:
            break
        parser = chosen
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(reset_command.joined_dash_values(sys.argv[1:] if argv is None else argv))
    if args.command == "demo":
        args.demo_args = rest  # the demo parses its own options
    elif rest:
        _subcommand_parser(parser, args).error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        return int(args.func(args))
    except StreamcoreError as exc:
        print(f"streamcore: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `streamcore log tail ... | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    except Exception as error:
        full = _disk_full(error)
        if full is None:
            raise
        print(
            f"streamcore: error: the disk is full ({full}); what was checkpointed is intact: "
            "free some space and run again, it resumes from the last checkpoint",
            file=sys.stderr,
        )
        return 3


def _disk_full(error: BaseException) -> str | None:
    """What says the disk is full in `error`, or among the errors it groups (None: not that).

    An OSError with ENOSPC or EDQUOT; or RocksDB's own error (rocksdict raises a plain
    Exception with the status text "IO error: No space left on device: ...").
    """
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"{error.strerror}" + (f" writing {error.filename}" if error.filename else "")
    if type(error) is Exception and "No space left on device" in str(error):
        return str(error).strip()
    for inner in error.exceptions if isinstance(error, BaseExceptionGroup) else ():
        if (found := _disk_full(inner)) is not None:
            return found
    return None


if __name__ == "__main__":
    sys.exit(main())
