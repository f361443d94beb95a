"""``streamcore mcp --url http://worker:8080``: a worker's MCP tools over stdio, for agent hosts.

Agent hosts (desktop assistants, IDEs, agent frameworks) start local MCP servers as a
command and speak to them over stdin and stdout. This command is one: every tool and
resource request it gets, it relays to the worker's ``/mcp`` (streamable HTTP, with
``--token`` or ``$STREAMCORE_MCP_TOKEN``) through the SDK's client, and it answers with
the worker's answers, tool errors included. Plans live on the worker, so one plan's
calls read one snapshot there, whichever bridge they come through.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from streamcore.base.errors import ConfigError


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "mcp",
        help="serve a worker's MCP tools over stdio (for agent hosts that start MCP servers as commands)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--url", required=True, help="the worker's HTTP address, e.g. http://127.0.0.1:8080")
    p.add_argument("--token", help="the worker's MCP token ($STREAMCORE_MCP_TOKEN)")
    p.set_defaults(func=mcp_command)


def endpoint(url: str) -> str:
    """The worker's MCP URL from its HTTP address (``/mcp`` appended unless given)."""
    if not url.startswith(("http://", "https://")):
        raise ConfigError("url", f"expected http://host:port, got {url!r}")
    url = url.rstrip("/")
    return url if url.endswith("/mcp") else url + "/mcp"


def mcp_command(args: argparse.Namespace) -> int:
    token = args.token or os.environ.get("STREAMCORE_MCP_TOKEN", "")
    url = endpoint(args.url)
    try:
        asyncio.run(relay(url, token))
    except ImportError as exc:
        print(f"streamcore mcp needs the MCP SDK: pip install 'streamcore[mcp]' ({exc})", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - one line for the host's log, not a traceback
        print(f"streamcore mcp: cannot serve {url}: {_reason(exc)}", file=sys.stderr)
        return 1
    return 0


def _reason(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"


async def relay(url: str, token: str) -> None:
    """Serve stdin/stdout until the host closes them, relaying to the worker at `url`."""
    import httpx2  # here: the SDK and its HTTP client are an optional extra
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.server import Server
    from mcp.server.stdio import stdio_server

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0)) as http,
        Client(streamable_http_client(url, http_client=http), cache=None) as worker,
    ):

        async def list_tools(ctx: Any, params: Any) -> Any:
            return await worker.list_tools(cursor=getattr(params, "cursor", None))

        async def call_tool(ctx: Any, params: Any) -> Any:
            return await worker.call_tool(params.name, params.arguments)

        async def list_resources(ctx: Any, params: Any) -> Any:
            return await worker.list_resources(cursor=getattr(params, "cursor", None))

        async def read_resource(ctx: Any, params: Any) -> Any:
            return await worker.read_resource(str(params.uri))

        info = worker.server_info
        server: Server[Any] = Server(
            info.name if info is not None else "streamcore",
            version=info.version if info is not None else "",
            instructions=worker.instructions,
            on_list_tools=list_tools,
            on_call_tool=call_tool,
            on_list_resources=list_resources,
            on_read_resource=read_resource,
        )
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())
