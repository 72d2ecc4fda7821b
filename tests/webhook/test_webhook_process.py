"""The webhook's composition root (webhook.process): telemetry, app and server up, and all down again."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import aiohttp
import pytest

from driftwarden.errors import ConfigError
from tests.support.guard import serving_pair
from webhook.admission.settings import make_settings
from webhook.process import WebhookSettings, running, serve
from webhook.server import ServerSettings


def settings_for(tmp_path: Path, **telemetry: str) -> tuple[WebhookSettings, ssl.SSLContext]:
    ca, cert, key = serving_pair(tmp_path)
    server = ServerSettings(cert, key, host="127.0.0.1", port=0)
    trust = ssl.create_default_context(cadata=ca.cert_pem.decode())
    return WebhookSettings(make_settings(), server, telemetry_env=telemetry), trust


async def test_running_serves_health_and_metrics_over_https_then_closes_the_port(tmp_path: Path) -> None:
    settings, trust = settings_for(tmp_path)
    async with running(settings) as server, aiohttp.ClientSession() as session:
        url = f"https://127.0.0.1:{server.port}"
        async with session.get(url + "/healthz", ssl=trust) as health:
            assert (health.status, await health.text()) == (200, "ok")
        async with session.get(url + "/metrics", ssl=trust) as metrics:
            assert metrics.status == 200
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", server.port)


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
