"""A TCP proxy for fault tests, in asyncio: it adds latency, drops connections and refuses new ones.

It sits in front of a real server (the kube-apiserver, a ``git daemon``) and forwards bytes both ways
untouched, so TLS runs end to end between the real client and the real server; only time and connections
are faulted. It runs in the test's own event loop, and every connection's pumps are tasks it cancels on
``stop``. Test-only: nothing here knows about Kubernetes or Git.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

CHUNK = 64 * 1024


class TcpProxy:
    """``async with TcpProxy(port) as proxy:`` listens on ``proxy.port`` and forwards to ``target_port``."""

    def __init__(self, target_port: int, *, target_host: str = "127.0.0.1", latency: float = 0.0) -> None:
        self.target = (target_host, target_port)
        self.latency = latency
        """Seconds each chunk waits before it is passed on, in either direction."""
        self.refusing = False
        """While set, a new connection is closed at once (the server looks unreachable)."""
        self.port = 0
        self.connections = 0
        self.dropped = 0
        self._server: asyncio.Server | None = None
        self._pumps: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def __aenter__(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is not None:
            self._server.close()
        self.drop()
        for task in list(self._pumps):
            task.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def drop(self) -> int:
        """Cut every open connection now (as a lost network would); returns how many were cut."""
        cut = len(self._writers) // 2
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        self.dropped += cut
        return cut

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.connections += 1
        self._writers.update((writer, up_writer))
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pump(source, sink))
            self._pumps.add(task)
            task.add_done_callback(self._pumps.discard)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while chunk := await source.read(CHUNK):
                if self.latency:
                    await asyncio.sleep(self.latency)
                sink.write(chunk)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(sink)
            with contextlib.suppress(OSError, RuntimeError):
                sink.close()
