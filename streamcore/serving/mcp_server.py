"""MCP on the worker: the app's agent tools (`agent_tools`) over streamable HTTP at ``/mcp``.

The official SDK (PyPI ``mcp``) speaks the protocol: its low-level `Server` with handlers
for tools and resources, and its streamable-HTTP session manager (stateless, answers as
JSON), which is an ASGI app and runs inside the worker's aiohttp server (`asgi.answer_with`),
on the worker's event loop. So a tool call reads the online state between batches, as
an HTTP request does. Both the 2025 handshake and the 2026 per-request protocol work.

Resources: ``streamcore://topology`` (the app's streams, views and models) and
``streamcore://views/<view>`` (a view's entity key, stream and feature schemas).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson

from streamcore.base.codec import encode_output
from streamcore.base.errors import ConfigError
from streamcore.serving.agent_tools import AgentTools, ToolError
from streamcore.serving.asgi import answer_with
from streamcore.serving.guards import LOOPBACK_HOSTS
from streamcore.serving.topology import topology, view_document

try:
    import mcp_types as types
    from mcp.server import Server
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
    from mcp.server.transport_security import TransportSecuritySettings
    from mcp.shared.exceptions import MCPError
    from mcp_types import INVALID_PARAMS
except ImportError as missing:  # an optional extra
    raise ConfigError("mcp", f"serving MCP needs the mcp package: pip install 'streamcore[mcp]' ({missing})") from None

from aiohttp import web

log = logging.getLogger("streamcore.serving")

TOPOLOGY_URI = "streamcore://topology"
VIEW_URI = "streamcore://views/"
INSTRUCTIONS = (
    "Live features and models of a streamcore app. For one task, call begin_plan first and pass its "
    "plan id to every get_ and score_ call: they then all read one snapshot of the state, however many "
    "events arrive in between, and each answer carries the input position it reflects. Call end_plan "
    "when done. Calls without a plan read the live state and say so."
)


def _json(value: Any) -> tuple[str, Any]:
    """`value` as JSON text and as the plain data of that text (exact integers, null for NaN)."""
    raw = encode_output(value)
    return raw.decode(), orjson.loads(raw)


def _resources(tools: AgentTools) -> list[types.Resource]:
    """The topology, and each view's schema."""
    resources = [
        types.Resource(
            uri=TOPOLOGY_URI,
            name="topology",
            description="The app's streams and their steps, feature views and models",
            mime_type="application/json",
        )
    ]
    for name, view in sorted(tools.views.items()):
        resources.append(
            types.Resource(
                uri=VIEW_URI + name,
                name=f"view {name}",
                description=view.declaration.description or f"Feature view {name}: its features' schemas",
                mime_type="application/json",
            )
        )
    return resources


class McpEndpoint:
    """The SDK's server for one worker's tools, and the aiohttp handler that answers ``/mcp``."""

    def __init__(self, tools: AgentTools, host: str) -> None:
        self.tools = tools
        app = tools.worker.app
        schemas = {spec.name: spec.input_schema for spec in tools.specs}
        self.server: Server[Any] = Server(
            f"streamcore:{app.name}",
            version=app.version,
            instructions=INSTRUCTIONS,
            get_tool_input_schema=schemas.get,  # else the SDK lists every tool to check each call's headers
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_list_resources=self._list_resources,
            on_read_resource=self._read_resource,
        )
        security = None
        if host in LOOPBACK_HOSTS:  # refuse DNS rebinding: a web page's script calling a local port
            security = TransportSecuritySettings(
                enable_dns_rebinding_protection=True,
                allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
                allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
            )
        self.manager = StreamableHTTPSessionManager(
            self.server, stateless=True, json_response=True, security_settings=security
        )
        self._tools = types.ListToolsResult(  # the app's tools and resources do not change while it runs
            tools=[
                types.Tool(
                    name=spec.name,
                    description=spec.description,
                    input_schema=spec.input_schema,
                    annotations=types.ToolAnnotations(read_only_hint=True, open_world_hint=False),
                )
                for spec in tools.specs
            ]
        )
        self._resources = types.ListResourcesResult(resources=_resources(tools))
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Run the session manager (its task group lives in a task of its own)."""
        started = asyncio.Event()

        async def serve() -> None:
            async with self.manager.run():
                started.set()
                await self._stop.wait()

        self._task = asyncio.create_task(serve(), name="mcp")
        waiting = asyncio.create_task(started.wait())
        await asyncio.wait([waiting, self._task], return_when=asyncio.FIRST_COMPLETED)
        if self._task.done():
            waiting.cancel()
            self._task.result()  # it failed to start: say why

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        return await answer_with(self.manager.handle_request, request)

    # -- handlers ---------------------------------------------------------------------------------
    async def _list_tools(self, ctx: Any, params: Any) -> types.ListToolsResult:
        return self._tools

    async def _call_tool(self, ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        client = getattr(getattr(ctx.request, "client", None), "host", None) or "mcp"
        try:
            answer = await self.tools.call(params.name, params.arguments, client)
        except ToolError as exc:
            return types.CallToolResult(content=[types.TextContent(text=str(exc))], is_error=True)
        text, data = _json(answer)
        return types.CallToolResult(content=[types.TextContent(text=text)], structured_content=data)

    async def _list_resources(self, ctx: Any, params: Any) -> types.ListResourcesResult:
        return self._resources

    async def _read_resource(self, ctx: Any, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        uri = str(params.uri)
        view = self.tools.views.get(uri.removeprefix(VIEW_URI)) if uri.startswith(VIEW_URI) else None
        if uri == TOPOLOGY_URI:
            document = topology(self.tools.worker, self.tools.views)
        elif view is not None:
            document = view_document(view)
        else:
            raise MCPError(INVALID_PARAMS, f"no resource {uri!r}; resources/list names them")
        text, _ = _json(document)
        return types.ReadResourceResult(
            contents=[types.TextResourceContents(uri=uri, mime_type="application/json", text=text)]
        )
