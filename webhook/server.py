"""Run the webhook's applications: admission reviews over HTTPS, probes and metrics over plain HTTP.

``WebhookServer`` is an async context manager used by ``driftwarden webhook serve`` and by tests alike.
The admission port speaks TLS 1.2+ only, with certificate reload in a guarded background task, and with
a client CA it accepts only clients that present a certificate signed by it (the API server, given an
AdmissionConfiguration with webhook credentials; docs/security.md). ``/healthz``, ``/readyz`` and
``/metrics`` are on a separate plain-HTTP port, as Kubernetes components serve them, so the admission
port answers only ``/validate`` and ``/mutate``. Both listeners are guarded (driftwarden.connections). On
exit it stops accepting, lets in-flight reviews finish, and cancels the watcher.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType

from aiohttp import web

from driftwarden.connections import ConnectionGuard, ConnectionLimits
from driftwarden.serving import Listening, serving
from webhook.app import make_probe_app
from webhook.tlsreload import ReloadingTLS

PROBE_CONNECTIONS = 64
"""The probe port serves the kubelet and Prometheus: a few connections at a time."""


@dataclass(frozen=True)
class ServerSettings:
    """Where and with which certificate the webhook listens, whom it accepts, and for how long.

    ``client_ca_file`` makes the admission port require a client certificate signed by it.
    ``metrics_port`` is the plain-HTTP port of the probes and ``/metrics`` (0: any free port; None: not
    served), on ``metrics_host`` (default: ``host``).
    """

    cert_file: Path
    key_file: Path
    host: str = "0.0.0.0"  # in a pod the API server reaches us through the Service
    port: int = 8443
    reload_interval: float = 2.0
    shutdown_timeout: float = 10.0
    client_ca_file: Path | None = None
    metrics_port: int | None = None
    metrics_host: str | None = None
    limits: ConnectionLimits = field(default_factory=ConnectionLimits)


class WebhookServer:
    """``async with WebhookServer(app, settings) as server:`` serves until the block ends."""

    def __init__(self, app: web.Application, settings: ServerSettings) -> None:
        self.app = app
        self.settings = settings
        self.tls = ReloadingTLS(
            settings.cert_file, settings.key_file,
            client_ca_file=settings.client_ca_file, interval=settings.reload_interval,
        )  # fmt: skip
        self._stack = contextlib.AsyncExitStack()
        self.port = settings.port
        self.admission: Listening | None = None
        self.probes: Listening | None = None

    @property
    def guard(self) -> ConnectionGuard:
        """The admission port's connection guard (its counts are what the hostile-input tests read)."""
        assert self.admission is not None and self.admission.guard is not None, "not serving"
        return self.admission.guard

    @property
    def metrics_url(self) -> str:
        """``http://host:port`` of the probes and ``/metrics``."""
        assert self.probes is not None, "the probe port is not served"
        return self.probes.url

    async def __aenter__(self) -> WebhookServer:
        settings = self.settings
        async with contextlib.AsyncExitStack() as stack:
            # Probes first, so they outlive the admission port on the way out: /readyz answers 503 while
            # in-flight reviews finish.
            if settings.metrics_port is not None:
                self.probes = await stack.enter_async_context(
                    serving(
                        make_probe_app(self.app),
                        host=settings.metrics_host or settings.host,
                        port=settings.metrics_port,
                        what="the webhook's probes and metrics",
                        shutdown_timeout=2.0,
                        limits=replace(settings.limits, max_connections=PROBE_CONNECTIONS),
                    )
                )
            self.admission = await stack.enter_async_context(
                serving(
                    self.app,
                    host=settings.host,
                    port=settings.port,
                    what="the admission webhook",
                    ssl_context=self.tls.server_context(),
                    shutdown_timeout=settings.shutdown_timeout,
                    limits=settings.limits,
                    decompress=False,
                )
            )
            self.port = self.admission.port
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
