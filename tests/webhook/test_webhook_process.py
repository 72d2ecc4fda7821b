"""The webhook's composition root (webhook.process): telemetry, app and server up, and all down again."""

from __future__ import annotations

import asyncio
import resource
import ssl
from pathlib import Path

import aiohttp
import pytest

from driftwarden.errors import ConfigError
from tests.support.guard import serving_pair
from webhook.admission.settings import make_settings
from webhook.process import FILE_HEADROOM, WebhookSettings, _within_file_limit, running, serve
from webhook.server import ServerSettings


def settings_for(tmp_path: Path, **telemetry: str) -> tuple[WebhookSettings, ssl.SSLContext]:
    ca, cert, key = serving_pair(tmp_path)
    server = ServerSettings(cert, key, host="127.0.0.1", port=0, metrics_port=0)
    trust = ssl.create_default_context(cadata=ca.cert_pem.decode())
    return WebhookSettings(make_settings(), server, telemetry_env=telemetry), trust


async def test_running_serves_reviews_over_https_and_health_and_metrics_over_http_then_closes_both(
    tmp_path: Path,
) -> None:
    settings, trust = settings_for(tmp_path)
    async with running(settings) as server, aiohttp.ClientSession() as session:
        url = f"https://127.0.0.1:{server.port}"
        json_body = {"Content-Type": "application/json"}
        async with session.post(url + "/validate", data=b"[]", headers=json_body, ssl=trust) as review:
            assert review.status == 400  # the admission port answers over TLS
        async with session.get(server.metrics_url + "/healthz") as health:
            assert (health.status, await health.text()) == (200, "ok")
        async with session.get(server.metrics_url + "/metrics") as metrics:
            assert metrics.status == 200
        probe_port = server.probes.port if server.probes else 0
    for port in (server.port, probe_port):
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)


async def test_running_raises_the_open_file_limit_to_the_hard_one(tmp_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowered = min(soft, hard, 256)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowered, hard))
    try:
        settings, _ = settings_for(tmp_path)
        async with running(settings):
            assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def test_serve_returns_once_stopped(tmp_path: Path) -> None:
    settings, _ = settings_for(tmp_path)
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, stop=stop))
    await asyncio.sleep(0.2)
    assert not task.done()
    stop.set()
    await asyncio.wait_for(task, timeout=15)


async def test_a_bad_telemetry_setting_is_a_config_error_before_anything_listens(tmp_path: Path) -> None:
    settings, _ = settings_for(tmp_path, OTEL_TRACES_SAMPLER="sometimes")
    with pytest.raises(ConfigError, match="OTEL_TRACES_SAMPLER"):
        async with running(settings):
            pytest.fail("must not start")


def test_the_connection_limit_is_kept_within_the_open_file_limit(tmp_path: Path) -> None:
    settings, _ = settings_for(tmp_path)
    assert settings.server.limits.max_connections == 1000
    capped = _within_file_limit(settings.server, 512)
    assert capped.limits.max_connections == 512 - FILE_HEADROOM
    assert capped.limits.idle_timeout == settings.server.limits.idle_timeout
    assert _within_file_limit(settings.server, 1_048_576) is settings.server
