"""Run the webhook's aiohttp application over HTTPS, with certificate reload (orchestration).

``WebhookServer`` is an async context manager used by ``driftwarden webhook serve`` and by tests alike:
it listens with TLS 1.2+, watches the certificate files in a guarded background task, and on exit stops
accepting, lets in-flight reviews finish, and cancels the watcher.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from aiohttp import web

from driftwarden.serving import serving
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
        self._stack = contextlib.AsyncExitStack()
        self.port = settings.port

    async def __aenter__(self) -> WebhookServer:
        async with contextlib.AsyncExitStack() as stack:
            listening = await stack.enter_async_context(
                serving(
                    self.app,
                    host=self.settings.host,
                    port=self.settings.port,
                    what="the admission webhook",
                    ssl_context=self.tls.server_context(),
                    shutdown_timeout=self.settings.shutdown_timeout,
                )
            )
            self.port = listening.port
            watcher = asyncio.create_task(self.tls.watch(), name="webhook-tls-watch")
            stack.push_async_callback(_cancel, watcher)
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stack.aclose()


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
