"""Headless Chromium for tests of pages a worker serves, driven over the DevTools protocol.

`Browser` opens a page in real time (its scripts run, its timers fire as they would for
a user), then hands back the rendered DOM, values the page computes, and screenshots.
`chromium()` finds the browser, or installs it with ``tests/tools/install-chromium.sh``
(`debian_tools.require`: skipped where that cannot be done, failed under CI).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import os
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from debian_tools import require

from streamcore.testing import free_port


def chromium() -> str:
    """The chromium binary (installed by ``tests/tools/install-chromium.sh`` if missing; see `debian_tools`)."""
    return require("chromium", "install-chromium.sh")


class Page:
    """One open tab: call DevTools methods on it."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self.socket = socket
        self._ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self._ids)
        await self.socket.send_json({"id": call_id, "method": method, "params": params})
        while True:
            message = await self.socket.receive_json(timeout=30)
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return result["result"].get("value")

    async def dom(self) -> str:
        return str(await self.evaluate("document.documentElement.outerHTML"))

    async def screenshot(self) -> bytes:
        """The page as a PNG."""
        shot = await self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        return base64.b64decode(shot["data"])


@contextlib.asynccontextmanager
async def open_page(url: str, width: int = 1400, height: int = 1000) -> AsyncIterator[Page]:
    """Chromium, headless, with `url` open (loaded) in a `width` x `height` window."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="streamcore-chromium-", ignore_cleanup_errors=True) as profile:
        proc = await asyncio.create_subprocess_exec(
            await asyncio.to_thread(chromium), "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--hide-scrollbars", f"--remote-debugging-port={port}", f"--user-data-dir={profile}",
            f"--window-size={width},{height}", "about:blank",
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its helper processes too are stopped with it
        )  # fmt: skip
        try:
            async with aiohttp.ClientSession() as http:
                targets = await _targets(http, port)
                page_url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
                async with http.ws_connect(page_url, max_msg_size=64 << 20) as socket:
                    page = Page(socket)
                    await page.call("Page.enable")
                    await page.call("Page.navigate", url=url)
                    for _ in range(100):  # until the document has loaded
                        if await page.evaluate("document.readyState") == "complete":
                            break
                        await asyncio.sleep(0.1)
                    yield page
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()


async def _targets(http: aiohttp.ClientSession, port: int) -> list[dict[str, Any]]:
    for _ in range(150):  # chromium takes a moment to listen
        with contextlib.suppress(aiohttp.ClientError):
            async with http.get(f"http://127.0.0.1:{port}/json/list") as answer:
                targets: list[dict[str, Any]] = await answer.json()
                if any(t["type"] == "page" for t in targets):
                    return targets
        await asyncio.sleep(0.1)
    raise RuntimeError("chromium's DevTools endpoint did not come up")
