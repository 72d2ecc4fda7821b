"""The check before a webhook is installed (driftwarden.probe), against the real webhook server."""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider

from certs.pki import new_ca
from driftwarden.errors import ConfigError, TemporaryError
from driftwarden.probe import check_answers
from tests.support.guard import serving_pair
from webhook.admission.settings import make_settings
from webhook.app import make_app
from webhook.server import ServerSettings, WebhookServer


def _server(tmp_path: Path, *, client_ca: bool) -> tuple[bytes, WebhookServer]:
    ca, cert, key = serving_pair(tmp_path)
    callers = None
    if client_ca:
        callers = tmp_path / "callers.crt"
        now = dt.datetime.now(dt.UTC)
        callers.write_bytes(new_ca("callers", now=now, validity=dt.timedelta(days=1)).cert_pem)
    app = make_app(make_settings(), tracer=TracerProvider().get_tracer("test"))
    settings = ServerSettings(cert, key, host="127.0.0.1", port=0, client_ca_file=callers)
    return ca.cert_pem, WebhookServer(app, settings)


@pytest.mark.parametrize("client_ca", [False, True], ids=["open", "client-ca-required"])
async def test_a_webhook_with_a_trusted_certificate_answers(tmp_path: Path, client_ca: bool) -> None:
    # With --client-ca-file the webhook closes a caller without a client certificate right after the
    # handshake: the check must still see that it is there (it once said "nothing answers").
    ca, server = _server(tmp_path, client_ca=client_ca)
    async with server:
        await check_answers(f"https://127.0.0.1:{server.port}", ca)
        await check_answers(f"https://localhost:{server.port}/", ca)


async def test_a_certificate_the_bundle_does_not_trust_is_a_config_error(tmp_path: Path) -> None:
    _ca, server = _server(tmp_path, client_ca=False)
    other, _cert, _key = serving_pair(tmp_path / "other")
    async with server:
        with pytest.raises(ConfigError, match="does not trust"):
            await check_answers(f"https://127.0.0.1:{server.port}", other.cert_pem)


async def test_nothing_listening_is_temporary(tmp_path: Path) -> None:
    ca, _server_unused = _server(tmp_path, client_ca=False)
    with socket.socket() as sock:  # a port nobody listens on: bound, never listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        with pytest.raises(TemporaryError, match="nothing answers"):
            await check_answers(f"https://127.0.0.1:{port}", ca, within=2)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8443", "127.0.0.1:8443", "https://", "https://h:99999"])
async def test_anything_but_an_https_url_is_a_config_error(tmp_path: Path, url: str) -> None:
    ca, _server_unused = _server(tmp_path, client_ca=False)
    with pytest.raises(ConfigError):
        await check_answers(url, ca)
