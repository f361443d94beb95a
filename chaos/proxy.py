"""A TCP proxy on loopback that can cut the network: the `partition` scenario puts it in front of the broker.

`Proxy(listen_port, target_port)` forwards every connection in a thread of its own.
`blackhole()` stops every byte both ways, on open connections and new ones, as a
network partition does (nothing is refused: it just goes quiet, so clients find out
by their timeouts); `reset()` closes every connection and refuses new ones (a broker
or a link that is gone); `heal()` goes back to forwarding.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading


class Proxy:
    def __init__(self, listen_port: int, target_port: int) -> None:
        self.listen_port = listen_port
        self.target_port = target_port
        self.mode = "open"
        self._flowing = asyncio.Event()
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="chaos-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the proxy did not start")

    def blackhole(self) -> None:
        self._loop.call_soon_threadsafe(self._set, "blackhole")

    def reset(self) -> None:
        self._loop.call_soon_threadsafe(self._set, "reset")

    def heal(self) -> None:
        self._loop.call_soon_threadsafe(self._set, "open")

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _set(self, mode: str) -> None:
        self.mode = mode
        if mode == "open":
            self._flowing.set()
            return
        self._flowing.clear()
        if mode == "reset":
            for writer in list(self._writers):
                writer.transport.abort()  # RST, not a polite close

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._flowing.set()
        server = self._loop.run_until_complete(asyncio.start_server(self._connected, "127.0.0.1", self.listen_port))
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "reset":
            writer.transport.abort()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, upstream_writer}
        await asyncio.gather(self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer))
        self._writers -= {writer, upstream_writer}

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await self._flowing.wait()  # a blackhole holds the bytes back, both ways
                if self.mode == "reset":
                    break
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.transport.abort()
