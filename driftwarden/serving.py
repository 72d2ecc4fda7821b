"""One way to serve an aiohttp application on a TCP port: the webhook, the push webhook and ``/metrics``.

Thin adapter over aiohttp's public runner API (``AppRunner``, ``BaseSite``/``TCPSite``,
``runner.addresses``): it starts listening, reads back the port the OS chose for port 0, and always cleans
up. A port that cannot be bound is a ``ConfigError`` naming the address and what wanted it, not a
traceback. With ``limits`` the listener is guarded (driftwarden.connections: a bounded number of
connections, each with handshake, header, body and idle deadlines). Beside it, the process-wide hygiene a
server needs: ``raise_open_file_limit`` (the soft limit up to the hard one), ``throttle_loop_errors``
(the event loop's error log, one line per kind a minute), ``lean_tls_buffers`` and ``LogThrottle``. It
must not read settings or the environment, and it adds no routes.
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import contextlib
import logging
import resource
import ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from driftwarden.connections import ConnectionGuard, ConnectionLimits
from driftwarden.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Listening:
    """Where a served application listens: ``port`` is the bound one (the OS's choice for port 0)."""

    host: str
    port: int
    tls: bool
    guard: ConnectionGuard | None = field(default=None, compare=False)
    """The connection guard, when the listener has ``limits``."""

    @property
    def url(self) -> str:
        """A URL a local client can use (a wildcard host is reached over loopback)."""
        host = "127.0.0.1" if self.host in {"0.0.0.0", "", "::"} else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"


def _bound_port(runner: web.AppRunner, default: int) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return default


class _GuardedSite(web.BaseSite):
    """A TCP site whose connections go through a ConnectionGuard, which also does the TLS handshake."""

    def __init__(
        self,
        runner: web.AppRunner,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None,
        limits: ConnectionLimits,
        what: str,
    ) -> None:
        super().__init__(runner)  # no ssl_context here: the guard runs the handshake with its deadline
        self._host, self._port, self._tls = host, port, ssl_context
        self._limits, self._what = limits, what
        self.guard: ConnectionGuard | None = None

    @property
    def name(self) -> str:
        return f"{'https' if self._tls else 'http'}://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        self.guard = ConnectionGuard(server, self._limits, ssl_context=self._tls, what=self._what)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self.guard, self._host, self._port, backlog=self._backlog)

    async def stop(self) -> None:
        await super().stop()
        if self.guard is not None:
            self.guard.close_all()


@contextlib.asynccontextmanager
async def serving(
    app: web.Application,
    *,
    host: str,
    port: int,
    what: str,
    ssl_context: ssl.SSLContext | None = None,
    shutdown_timeout: float = 10.0,
    limits: ConnectionLimits | None = None,
    decompress: bool = True,
) -> AsyncIterator[Listening]:
    """Serve ``app`` on ``host:port`` for the block; on exit stop accepting and let requests finish.

    ``limits`` guards the listener; ``decompress=False`` leaves a compressed body as it came (a server
    that accepts none must not inflate a zip bomb to find out).
    """
    extra: dict[str, Any] = {"auto_decompress": decompress}
    if limits is not None:
        # The guard closes (and counts) idle connections; aiohttp's own keep-alive timer is the backstop, a
        # second later, so the two never race for the same millisecond (uvloop's timers are in whole ms).
        extra["keepalive_timeout"] = limits.idle_timeout + 1.0
    runner = web.AppRunner(
        app, handle_signals=False, access_log=None, shutdown_timeout=shutdown_timeout, **extra
    )
    await runner.setup()
    try:
        site: web.BaseSite
        if limits is None:
            site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
        else:
            site = _GuardedSite(runner, host, port, ssl_context=ssl_context, limits=limits, what=what)
        try:
            await site.start()
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port} for {what}: {exc.strerror or exc}") from exc
        guard = site.guard if isinstance(site, _GuardedSite) else None
        yield Listening(host, _bound_port(runner, port), ssl_context is not None, guard)
    finally:
        await runner.cleanup()


def raise_open_file_limit() -> int:
    """Raise the soft limit on open files to the hard one; returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft >= hard:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as exc:
        log.warning("cannot raise the open-file limit from %d to %d: %s", soft, hard, exc)
        return soft
    return hard


TLS_READ_BUFFER = 32 * 1024
"""Two TLS records: what one read of a TLS connection needs."""


def lean_tls_buffers(size: int = TLS_READ_BUFFER) -> None:
    """Give every asyncio TLS connection of this process a ``size``-byte read buffer instead of 256 KiB.

    asyncio allocates (and touches) that buffer for each connection as it opens, so idle connections cost
    about 280 KiB each; with 32 KiB they cost a fifth of that (docs/security.md has the figures). A read
    larger than the buffer just takes two reads. It is the protocol class's public class attribute, set
    once by a process's composition root, never per connection. On uvloop it changes nothing and nothing is
    needed: uvloop's TLS protocol mallocs its buffer untouched, so only the pages reads write are resident.
    """
    asyncio.sslproto.SSLProtocol.max_size = size


class LogThrottle:
    """Log a recurring failure at most once per ``every`` seconds, saying how many were left out."""

    def __init__(
        self, logger: logging.Logger, *, every: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.logger, self.every, self.clock = logger, every, clock
        self._last: dict[str, float] = {}
        self._skipped: dict[str, int] = {}

    def warning(self, message: str, *, exc: BaseException | None = None, key: str | None = None) -> bool:
        """Log ``message`` (with ``exc``'s traceback) unless its kind was logged recently; True if logged."""
        kind = key or message
        now, last = self.clock(), self._last.get(kind)
        if last is not None and now - last < self.every:
            self._skipped[kind] = self._skipped.get(kind, 0) + 1
            return False
        skipped = self._skipped.pop(kind, 0)
        self._last[kind] = now
        suffix = f" ({skipped} more like it in the last {self.every:.0f}s)" if skipped else ""
        self.logger.warning("%s%s", message, suffix, exc_info=exc)
        return True


def throttle_loop_errors(loop: asyncio.AbstractEventLoop, *, every: float = 60.0) -> LogThrottle:
    """Make the event loop log each kind of error (``accept()`` out of file descriptors, a transport's
    fatal error) at most once per ``every`` seconds instead of once per occurrence."""
    throttle = LogThrottle(logging.getLogger("asyncio"), every=every)

    def handle(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message") or "event loop error")
        error = context.get("exception")
        detail = f": {error!r}" if isinstance(error, BaseException) else ""
        throttle.warning(f"{message}{detail}", key=message, exc=error if detail else None)

    loop.set_exception_handler(handle)
    return throttle
