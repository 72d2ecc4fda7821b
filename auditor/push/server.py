"""The auditor's Git push webhook, ``POST /api/webhook``: a push refreshes the Applications it moved.

Orchestration over aiohttp. The request is verified and parsed by the pure ``auditor.push.hooks``; a
wrong or missing signature is answered 401 before anything else happens (no API call, no refresh).
A verified push lists the Applications (through ``auditor.kube.applications.ApplicationStore``), picks
those that
use the pushed repository at the pushed branch or tag, and wakes each one's worker in the running
``AuditorLoop`` (``refresh``), answering 202 with their names. A replica that is not the leader has no
loop and answers 503. ``PushServer`` serves the app over HTTP, or HTTPS (TLS 1.2+) with a certificate.
The secret is never logged or echoed, and neither is a signature header.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from aiohttp import web

from auditor.application import Application, parse_application
from auditor.objects import AppKey
from auditor.push.hooks import Ping, Rejected, matching_applications, normalize_repo_url, parse_hook
from driftwarden.errors import ConfigError, DriftwardenError, PermanentError
from driftwarden.serving import serving

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/api/webhook"
MAX_BODY = 25 * 1024 * 1024
"""GitHub caps webhook payloads at 25 MB; a larger body is answered 413."""


class Refresher(Protocol):
    def refresh(self, key: AppKey) -> bool:
        """Reconcile ``key`` now; False when it is not known."""
        ...


ApplicationLister = Callable[[], Awaitable[list[dict[str, Any]]]]
RefresherLookup = Callable[[], Refresher | None]
"""The running loop, or None while this replica is not the leader."""


@dataclass(frozen=True)
class PushServerSettings:
    """Where the push webhook listens and the shared secret it checks (never shown in a repr)."""

    secret: bytes = field(repr=False)
    host: str = "0.0.0.0"
    port: int = 8080
    tls_cert: Path | None = None
    tls_key: Path | None = None
    max_body: int = MAX_BODY
    shutdown_timeout: float = 5.0

    def __post_init__(self) -> None:
        if not self.secret:
            raise ConfigError(
                "the push webhook needs a secret (--webhook-secret-file or $DRIFTWARDEN_WEBHOOK_SECRET)"
            )
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("give both --webhook-tls-cert and --webhook-tls-key, or neither")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"webhook port {self.port} is out of range")


def _applications(objs: list[dict[str, Any]]) -> list[Application]:
    apps = []
    for obj in objs:
        try:
            apps.append(parse_application(obj))
        except PermanentError:
            continue  # an invalid Application cannot be refreshed; its own pass reports why
    return apps


def make_push_app(
    *, secret: bytes, applications: ApplicationLister, refresher: RefresherLookup, max_body: int = MAX_BODY
) -> web.Application:
    """The aiohttp application serving ``POST /api/webhook``."""

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        parsed = parse_hook(request.headers, body, secret=secret)
        if isinstance(parsed, Rejected):
            log.info("push webhook rejected (%s): %s", parsed.status, parsed.reason)
            return web.json_response({"error": parsed.reason}, status=parsed.status)
        if isinstance(parsed, Ping):
            return web.json_response({"event": "ping", "provider": parsed.provider})
        loop = refresher()
        if loop is None:
            return web.json_response(
                {"error": "this auditor replica is not the leader"}, status=503, headers={"Retry-After": "5"}
            )
        try:
            apps = _applications(await applications())
        except DriftwardenError as exc:
            log.warning("push webhook: cannot list Applications: %s", exc)
            return web.json_response({"error": "cannot list Applications"}, status=503)
        refreshed = [str(key) for key in matching_applications(apps, parsed) if loop.refresh(key)]
        ref = parsed.branch if parsed.branch is not None else ",".join(parsed.tags)
        repo = normalize_repo_url(parsed.repo_urls[0])
        log.info("%s push to %s %s (%s): refreshing %s", parsed.provider, repo, ref, parsed.after[:12],
                 ", ".join(refreshed) or "nothing")  # fmt: skip
        return web.json_response({"refreshed": refreshed}, status=202)

    app = web.Application(client_max_size=max_body)
    app.router.add_post(WEBHOOK_PATH, receive)
    return app


def _tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


class PushServer:
    """``async with PushServer(app, settings) as server:`` serves until the block ends; ``server.port``."""

    def __init__(self, app: web.Application, settings: PushServerSettings) -> None:
        self.app = app
        self.settings = settings
        self.port = settings.port
        self._stack = contextlib.AsyncExitStack()

    @property
    def scheme(self) -> str:
        return "https" if self.settings.tls_cert is not None else "http"

    async def __aenter__(self) -> PushServer:
        context = None
        if self.settings.tls_cert is not None and self.settings.tls_key is not None:
            try:
                context = await asyncio.to_thread(_tls_context, self.settings.tls_cert, self.settings.tls_key)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"cannot load the webhook's TLS certificate or key: {exc}") from exc
        listening = await self._stack.enter_async_context(
            serving(self.app, host=self.settings.host, port=self.settings.port, what="the Git push webhook",
                    ssl_context=context, shutdown_timeout=self.settings.shutdown_timeout)
        )  # fmt: skip
        self.port = listening.port
        log.info("push webhook listening on %s://%s:%s%s", self.scheme, self.settings.host, self.port,
                 WEBHOOK_PATH)  # fmt: skip
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stack.aclose()
