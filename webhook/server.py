"""Run the webhook's aiohttp application over HTTPS, with certificate reload (orchestration).

``WebhookServer`` is an async context manager used by ``driftwarden webhook serve`` and by tests alike:
it listens with TLS 1.2+, watches the certificate files in a guarded background task, and on exit stops
accepting, lets in-flight reviews finish, and cancels the watcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from aiohttp import web

from webhook.tlsreload import ReloadingTLS


@dataclass(frozen=True)
class ServerSettings:
    """Where and with which certificate the webhook listens."""

    cert_file: Path
    key_file: Path
    host: str = "0.0.0.0"  # in a pod the API server reaches us through the Service
    port: int = 8443
    reload_interval: float = 2.0
    shutdown_timeout: float = 10.0


class WebhookServer:
    """``async with WebhookServer(app, settings) as server:`` serves until the block ends."""

    def __init__(self, app: web.Application, settings: ServerSettings) -> None:
        self.app = app
        self.settings = settings
        self.tls = ReloadingTLS(settings.cert_file, settings.key_file, interval=settings.reload_interval)
        self._runner = web.AppRunner(
            app, handle_signals=False, access_log=None, shutdown_timeout=settings.shutdown_timeout
        )
        self._watcher: asyncio.Task[None] | None = None
        self.port = settings.port

    async def __aenter__(self) -> WebhookServer:
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, self.settings.host, self.settings.port, ssl_context=self.tls.server_context()
        )
        await site.start()
        self.port = self._bound_port(site)
        self._watcher = asyncio.create_task(self.tls.watch(), name="webhook-tls-watch")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        await self._runner.cleanup()

    def _bound_port(self, site: web.TCPSite) -> int:
        # With port 0 the OS picks one; read it back so callers can register the URL.
        server = site._server  # aiohttp exposes no public accessor for the bound sockets
        sockets = getattr(server, "sockets", None) or []
        for sock in sockets:
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                port: int = sock.getsockname()[1]
                return port
        return self.settings.port
