"""One way to serve an aiohttp application on a TCP port: the webhook, the push webhook and ``/metrics``.

Thin adapter over aiohttp's public runner API (``AppRunner``, ``TCPSite``, ``runner.addresses``): it starts
listening, reads back the port the OS chose for port 0, and always cleans up. A port that cannot be bound is
a ``ConfigError`` naming the address and what wanted it, not a traceback. It must not read settings or the
environment, and it adds no routes.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from driftwarden.errors import ConfigError


@dataclass(frozen=True)
class Listening:
    """Where a served application listens: ``port`` is the bound one (the OS's choice for port 0)."""

    host: str
    port: int
    tls: bool

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


@contextlib.asynccontextmanager
async def serving(
    app: web.Application,
    *,
    host: str,
    port: int,
    what: str,
    ssl_context: ssl.SSLContext | None = None,
    shutdown_timeout: float = 10.0,
) -> AsyncIterator[Listening]:
    """Serve ``app`` on ``host:port`` for the block; on exit stop accepting and let requests finish."""
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
        try:
            await site.start()
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port} for {what}: {exc.strerror or exc}") from exc
        yield Listening(host, _bound_port(runner, port), ssl_context is not None)
    finally:
        await runner.cleanup()
