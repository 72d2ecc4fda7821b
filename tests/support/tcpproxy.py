"""A TCP proxy for fault tests, in asyncio: it adds latency, drops connections and refuses new ones.

It sits in front of a real server (the kube-apiserver, a ``git daemon``) and forwards bytes both ways
untouched, so TLS runs end to end between the real client and the real server; only time and connections
are faulted. It runs in the test's own event loop, and every connection's pumps are tasks it cancels on
``stop``. ``ConnectProxy`` is the same as an HTTP proxy: it reads a ``CONNECT host:port`` request first
(what a client configured with ``HTTPS_PROXY`` sends) and records it. Test-only: nothing here knows about
Kubernetes or Git.
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
        await self._forward(reader, writer, self.target)

    async def _forward(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, target: tuple[str, int]
    ) -> None:
        if self.refusing:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*target)
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


class ConnectProxy(TcpProxy):
    """An HTTP proxy for TLS: ``CONNECT host:port``, answered 200, then bytes both ways to that target.

    ``requests`` holds each CONNECT's request line and headers (lower-case names), in order.
    """

    def __init__(self) -> None:
        super().__init__(0)
        self.requests: list[tuple[str, dict[str, str]]] = []

    @property
    def proxy_url(self) -> str:
        return f"http://{self.url}"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.transport.abort()
            return
        fields = (line.partition(":") for line in head[1:] if line)
        headers = {name.strip().lower(): value.strip() for name, _, value in fields}
        self.requests.append((head[0], headers))
        method, authority = [*head[0].split(" "), "", ""][:2]
        host, _, port = authority.rpartition(":")
        if method != "CONNECT" or not port.isdigit():
            writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            writer.close()
            return
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await self._forward(reader, writer, (host.strip("[]"), int(port)))
