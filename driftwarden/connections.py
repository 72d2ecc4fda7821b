"""Connection hygiene for a served port: a bounded number of connections, each with deadlines.

Adapter over asyncio's public protocol API. ``ConnectionGuard`` is the protocol factory a listener is
created with; each accepted socket gets a ``_Guarded`` protocol that counts it from ``accept()`` on, does
the TLS handshake itself (``loop.start_tls``, so the handshake has a deadline and a failed one frees its
slot at once), and then hands the connection to the application's protocol (aiohttp's), watching the
bytes both ways. It works alike on asyncio's loop and on uvloop, which reads a new connection before
``start_tls`` can run: the bytes it reads then are handed to the TLS protocol once it is in place.

- **idle**: between requests, at most ``idle_timeout`` (longer than the 90 s for which the API server's
  Go client keeps an idle connection, so the server never closes one the client is about to reuse);
- **headers**: from a request's first byte to the end of its headers, at most ``header_timeout``
  (slowloris);
- **body**: from the end of the headers to the first byte of the response, at most ``body_timeout``
  (a body sent slowly or endlessly).

At ``max_connections`` a new connection takes the slot of the connection idle the longest (an attacker
holding idle connections cannot lock the API server out); when none is idle it is refused. Reaching the
limit logs one line, and the next only after the count fell back below nine tenths of it.

It knows nothing of HTTP beyond "headers end at an empty line" and nothing of admission.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, cast

log = logging.getLogger(__name__)

State = Literal["handshake", "idle", "headers", "body", "closed"]
_END_OF_HEADERS = b"\r\n\r\n"


@dataclass(frozen=True)
class ConnectionLimits:
    """How many connections a listener keeps, and how long each may take (seconds)."""

    max_connections: int = 1000
    handshake_timeout: float = 10.0
    header_timeout: float = 10.0
    body_timeout: float = 10.0
    idle_timeout: float = 120.0


@dataclass
class GuardStats:
    """What the guard did, for tests, logs and docs/security.md."""

    accepted: int = 0
    refused: int = 0
    evicted: int = 0
    timed_out: int = 0
    idle_closed: int = 0
    failed_handshakes: int = 0


class ConnectionGuard:
    """The protocol factory of one listener: ``loop.create_server(guard, host, port)``."""

    def __init__(
        self,
        inner: Callable[[], asyncio.Protocol],
        limits: ConnectionLimits,
        *,
        ssl_context: ssl.SSLContext | None = None,
        what: str = "a server",
    ) -> None:
        self.inner = inner
        self.limits = limits
        self.ssl_context = ssl_context
        self.what = what
        self.stats = GuardStats()
        self.connections: set[_Guarded] = set()
        self._warned = False

    def __call__(self) -> asyncio.Protocol:
        return _Guarded(self)

    def admit(self, conn: _Guarded) -> bool:
        """Take a slot for ``conn``: free one held by the longest-idle connection if needed."""
        if len(self.connections) >= self.limits.max_connections:
            idle = [c for c in self.connections if c.state == "idle"]
            self._warn_full(evicting=bool(idle))
            if not idle:
                self.stats.refused += 1
                return False
            oldest = min(idle, key=lambda c: c.last_active)
            self.stats.evicted += 1
            oldest.close(graceful=False)  # at once: a polite TLS close would hold its descriptor a while
        self.connections.add(conn)
        self.stats.accepted += 1
        return True

    def release(self, conn: _Guarded) -> None:
        self.connections.discard(conn)
        if self._warned and len(self.connections) < self.limits.max_connections * 0.9:
            self._warned = False

    def close_all(self) -> None:
        """Abort every connection still opening (the application closes the ones it was handed)."""
        for conn in list(self.connections):
            if conn.state == "handshake":
                conn.close(graceful=False)

    def _warn_full(self, *, evicting: bool) -> None:
        if self._warned:
            return
        self._warned = True
        action = "closing the longest-idle connection for each new one" if evicting else "refusing new ones"
        log.warning(
            "%s has reached its limit of %d connections; %s (logged once until it falls below 90%%)",
            self.what, self.limits.max_connections, action,
        )  # fmt: skip


class _Guarded(asyncio.Protocol):
    """One connection: TLS, then the application's protocol, with the deadlines of its state."""

    def __init__(self, guard: ConnectionGuard) -> None:
        self.guard = guard
        self.loop = asyncio.get_running_loop()
        self.state: State = "handshake"
        self.last_active = self.loop.time()
        self.raw: asyncio.Transport | None = None
        self.transport: asyncio.Transport | None = None
        self.app: asyncio.Protocol | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._tls: asyncio.Task[None] | None = None
        self._tail = b""
        self._hello: list[bytes] | None = []  # raw bytes read before start_tls took over (None after)
        self._early: list[bytes] = []  # what the client sent with its handshake, before start_tls returned

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        raw = cast(asyncio.Transport, transport)  # uvloop's transports are no subclasses of asyncio's
        self.raw = raw
        if not self.guard.admit(self):
            self.state = "closed"
            raw.abort()
            return
        context = self.guard.ssl_context
        if context is None:
            self._begin(raw)
            return
        # asyncio's loop then reads nothing until start_tls; uvloop starts reading when this method returns,
        # whatever it asked, so the ClientHello can arrive here first: data_received keeps it for TLS.
        raw.pause_reading()
        self._tls = self.loop.create_task(self._handshake(raw, context), name="tls-handshake")

    async def _handshake(self, raw: asyncio.Transport, context: ssl.SSLContext) -> None:
        limits = self.guard.limits
        hello, self._hello = b"".join(self._hello or ()), None
        # start_tls puts the TLS protocol on ``raw`` and schedules its connection_made and then the resumed
        # reading; this callback, scheduled first, runs right after it put it there: the bytes read too
        # early reach the TLS protocol before any later ones, kept until its handshake starts.
        replay = self.loop.call_soon(_replay, raw, hello) if hello else None
        try:
            tls = await self.loop.start_tls(
                raw, self, context, server_side=True,
                ssl_handshake_timeout=limits.handshake_timeout, ssl_shutdown_timeout=limits.handshake_timeout,
            )  # fmt: skip
        except (OSError, ssl.SSLError, ConnectionError, TimeoutError, RuntimeError) as exc:
            if replay is not None:
                replay.cancel()
            # A failed handshake is the client's business (a wrong CA, no client certificate, a scan):
            # counted, never logged per connection.
            self.guard.stats.failed_handshakes += 1
            log.debug("TLS handshake failed: %s", exc)
            self.close(graceful=False)
            return
        if tls is None or self.state == "closed":
            self.close(graceful=False)
            return
        self._begin(tls)

    def _begin(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.app = self.guard.inner()
        self._idle()
        self.app.connection_made(_Watched(transport, self._answered))
        early, self._early = self._early, []
        for data in early:
            self.data_received(data)

    def data_received(self, data: bytes) -> None:
        if self.app is None:
            if self._hello is not None and self.raw is not None:  # the client's first TLS bytes (uvloop)
                self._hello.append(data)
                self.raw.pause_reading()  # now it takes: the rest waits for the TLS protocol
            elif self.state == "handshake":
                self._early.append(data)
            return
        self.last_active = self.loop.time()
        if self.state == "idle":
            self.state, self._tail = "headers", b""
            self._arm(self.guard.limits.header_timeout)
        if self.state == "headers":
            seen = self._tail + data
            if _END_OF_HEADERS in seen:
                self.state = "body"
                self._arm(self.guard.limits.body_timeout)
            else:
                self._tail = seen[-3:]
        self.app.data_received(data)

    def eof_received(self) -> bool | None:
        return self.app.eof_received() if self.app is not None else None

    def pause_writing(self) -> None:
        if self.app is not None:
            self.app.pause_writing()

    def resume_writing(self) -> None:
        if self.app is not None:
            self.app.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self.state = "closed"
        self._disarm()
        self.guard.release(self)
        app, self.app = self.app, None
        if app is not None:
            app.connection_lost(exc)

    def close(self, *, graceful: bool) -> None:
        """Close (after a TLS close_notify when ``graceful``) or abort this connection."""
        self._disarm()
        transport = self.transport or self.raw
        if self._tls is not None and not self._tls.done() and self._tls is not asyncio.current_task():
            self._tls.cancel()
        if transport is not None and not transport.is_closing():
            transport.close() if graceful else transport.abort()
        if self.app is None:  # never handed over: nobody else will tell the guard it is gone
            self.state = "closed"
            self.guard.release(self)

    def _answered(self) -> None:
        """The application wrote: the request is answered, and the connection is idle until the next."""
        self.last_active = self.loop.time()
        if self.state in ("headers", "body"):
            self._idle()

    def _idle(self) -> None:
        self.state = "idle"
        self._arm(self.guard.limits.idle_timeout)

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        if self.state == "idle":
            self.guard.stats.idle_closed += 1
            self.close(graceful=True)
        elif self.state in ("headers", "body"):
            self.guard.stats.timed_out += 1
            self.close(graceful=False)


def _replay(raw: asyncio.Transport, data: bytes) -> None:
    """Give ``data`` to the protocol now on ``raw`` (the TLS one) the way a transport gives bytes.

    Both loops' TLS protocols are buffered protocols (``get_buffer``/``buffer_updated``; uvloop's is not a
    subclass of asyncio's, so it is told by its methods, as uvloop itself tells it) and keep what they get
    before their ``connection_made`` in their incoming buffer, read when the handshake starts.
    """
    protocol: Any = raw.get_protocol()
    if raw.is_closing() or not hasattr(protocol, "buffer_updated"):
        return  # closed meanwhile, or start_tls never took over (still this guard): nobody to hand them to
    view = memoryview(data)
    while view:
        buffer = protocol.get_buffer(len(view))
        size = min(len(buffer), len(view))
        buffer[:size] = view[:size]
        protocol.buffer_updated(size)
        view = view[size:]


class _Watched(asyncio.Transport):
    """The transport the application sees: the real one, telling the guard when the application writes."""

    def __init__(self, transport: asyncio.Transport, on_write: Callable[[], None]) -> None:
        super().__init__()
        self._transport = transport
        self._on_write = on_write

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._on_write()
        self._transport.write(data)

    def writelines(self, list_of_data: Any) -> None:
        self._on_write()
        self._transport.writelines(list_of_data)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def close(self) -> None:
        self._transport.close()

    def abort(self) -> None:
        self._transport.abort()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def pause_reading(self) -> None:
        with contextlib.suppress(RuntimeError, AttributeError):  # already closing
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        with contextlib.suppress(RuntimeError, AttributeError):
            self._transport.resume_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def write_eof(self) -> None:
        self._transport.write_eof()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()
