"""The webhook process, composed: telemetry, the application and the HTTPS server, until told to stop.

Role: the composition root of ``driftwarden webhook serve``. Given the frozen settings the CLI built, it
raises the open-file limit to the hard one (and keeps the connection limit within it), makes the event
loop log each kind of error once a minute rather than once per occurrence, and gives TLS connections lean
read buffers (driftwarden.serving); then it sets up traces and metrics (driftwarden.telemetry.setup,
configured by the ``OTEL_*`` variables it is handed), builds the aiohttp application (webhook.app),
serves it with TLS, certificate reload and guarded connections (webhook.server) until the stop event is
set, and then shuts down in reverse order: the listener first, so in-flight reviews finish, then
telemetry, so their spans and metrics are flushed.

It must not parse flags, read the environment or install signal handlers (the CLI does, and tests hand
in their own stop event), and it must not block the event loop: flushing telemetry can wait on the
network, so it runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from driftwarden.serving import lean_tls_buffers, raise_open_file_limit, throttle_loop_errors
from driftwarden.telemetry.metrics import Instruments
from driftwarden.telemetry.setup import meter_provider, tracer_provider
from webhook.admission.settings import DecisionSettings
from webhook.app import make_app
from webhook.server import PROBE_CONNECTIONS, ServerSettings, WebhookServer

log = logging.getLogger("driftwarden.webhook")

SERVICE_NAME = "driftwarden-webhook"
"""The OpenTelemetry ``service.name`` (unless ``OTEL_SERVICE_NAME`` says otherwise)."""
INSTRUMENTATION = "driftwarden.webhook"
"""The name of the tracer and the meter the webhook's spans and instruments come from."""
FILE_HEADROOM = PROBE_CONNECTIONS + 64
"""Descriptors kept for the probe port, the listeners, certificate reads and telemetry."""
MIN_CONNECTIONS = 16


@dataclass(frozen=True)
class WebhookSettings:
    """Everything one webhook process runs with, built once by the CLI.

    ``telemetry_env`` holds the ``OTEL_*`` variables (driftwarden.settings.environment reads them);
    ``console_traces`` also prints every span to stdout.
    """

    decision: DecisionSettings
    server: ServerSettings
    telemetry_env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    console_traces: bool = False


def _within_file_limit(server: ServerSettings, files: int) -> ServerSettings:
    """``server`` with at most as many connections as the open-file limit leaves room for.

    Beyond it ``accept()`` would fail before the connection guard's limit is reached, and a connection
    the guard refuses still costs a descriptor while it is refused.
    """
    room = max(files - FILE_HEADROOM, MIN_CONNECTIONS)
    if server.limits.max_connections <= room:
        return server
    log.warning(
        "the open-file limit is %d: serving at most %d connections, not %d",
        files, room, server.limits.max_connections,
    )  # fmt: skip
    return replace(server, limits=replace(server.limits, max_connections=room))


@contextlib.asynccontextmanager
async def running(settings: WebhookSettings) -> AsyncIterator[WebhookServer]:
    """A serving webhook for the block (its ``port`` is the bound one); everything stopped after it."""
    server_settings = _within_file_limit(settings.server, raise_open_file_limit())
    throttle_loop_errors(asyncio.get_running_loop())
    lean_tls_buffers()
    env = settings.telemetry_env
    tracing = tracer_provider(SERVICE_NAME, env=env, console=settings.console_traces)
    try:
        metering = meter_provider(SERVICE_NAME, env=env)
        try:
            app = make_app(
                settings.decision,
                tracer=tracing.get_tracer(INSTRUMENTATION),
                instruments=Instruments.from_meter(metering.provider.get_meter(INSTRUMENTATION)),
                metrics=metering.scrape,
            )
            async with WebhookServer(app, server_settings) as server:
                yield server
        finally:
            await asyncio.to_thread(metering.shutdown)
    finally:
        await asyncio.to_thread(tracing.shutdown)


async def serve(settings: WebhookSettings, *, stop: asyncio.Event) -> None:
    """Serve admission reviews until ``stop`` is set, then shut down cleanly."""
    async with running(settings) as server:
        log.info("serving admission reviews on https://%s:%d", settings.server.host, server.port)
        if server.probes is not None:
            log.info("serving /healthz, /readyz and /metrics on %s", server.probes.url)
        await stop.wait()
        log.info("shutting down")
