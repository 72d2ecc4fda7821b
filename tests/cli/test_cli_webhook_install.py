"""``driftwarden webhook install`` on the real control plane: it installs only what can answer.

With failurePolicy Fail, configurations pointing at a URL where nothing listens would make the API server
refuse every write to a managed object. So ``install`` first checks the URL answers over TLS verified with
the caBundle it is about to install; ``--skip-check`` installs anyway.
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest
from opentelemetry import trace

from cli.main import main
from devtools.controlplane import ControlPlane
from devtools.jaeger import free_port
from driftwarden.errors import KubeError
from driftwarden.kube.client import api_client_for
from driftwarden.kube.rest import request_json, resource_path
from tests.support.guard import serving_pair
from webhook.admission.settings import make_settings
from webhook.app import make_app
from webhook.install import uninstall
from webhook.registration import MUTATING_NAME, VALIDATING_NAME
from webhook.server import ServerSettings, WebhookServer

pytestmark = pytest.mark.cluster

VALIDATING = resource_path(group="admissionregistration.k8s.io", version="v1",
                           plural="validatingwebhookconfigurations", name=VALIDATING_NAME)  # fmt: skip
MUTATING = resource_path(group="admissionregistration.k8s.io", version="v1",
                         plural="mutatingwebhookconfigurations", name=MUTATING_NAME)  # fmt: skip


async def installed_urls(control_plane: ControlPlane) -> dict[str, list[str]]:
    """The URL of each hook of both configurations; an absent configuration maps to []."""
    assert control_plane.admin is not None
    api = api_client_for(control_plane.admin)
    found: dict[str, list[str]] = {}
    try:
        for name, path in ((VALIDATING_NAME, VALIDATING), (MUTATING_NAME, MUTATING)):
            try:
                config = await request_json(api, "GET", path)
            except KubeError as exc:
                assert exc.status == 404
                found[name] = []
                continue
            found[name] = [hook["clientConfig"]["url"] for hook in config["webhooks"]]
            for hook in config["webhooks"]:
                assert base64.b64decode(hook["clientConfig"]["caBundle"]).startswith(
                    b"-----BEGIN CERTIFICATE"
                )
    finally:
        await api.close()
    return found


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = await asyncio.to_thread(main, list(argv), {"HOME": "/nonexistent"})
    out, err = capsys.readouterr()
    return code, out + err


async def test_install_checks_the_url_first(
    control_plane: ControlPlane, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert control_plane.admin is not None and control_plane.admin.kubeconfig is not None
    ca, cert, key = serving_pair(tmp_path / "webhook")
    ca_file = tmp_path / "ca.crt"
    ca_file.write_bytes(ca.cert_pem)
    where = ("--ca-file", str(ca_file), "--kubeconfig", str(control_plane.admin.kubeconfig))
    admin = api_client_for(control_plane.admin)
    try:
        await uninstall(admin)
        nowhere = f"https://127.0.0.1:{free_port()}"
        code, text = await cli(capsys, "webhook", "install", "--url", nowhere, *where)
        assert code == 2 and f"not installing: nothing answers at {nowhere}" in text
        assert await installed_urls(control_plane) == {VALIDATING_NAME: [], MUTATING_NAME: []}

        app = make_app(make_settings(), tracer=trace.get_tracer("test"))
        async with WebhookServer(app, ServerSettings(cert, key, host="127.0.0.1", port=0)) as server:
            url = f"https://127.0.0.1:{server.port}"
            code, text = await cli(capsys, "webhook", "install", "--url", url, *where)
            assert code == 0, text
        urls = await installed_urls(control_plane)
        assert urls[VALIDATING_NAME] and all(u.startswith(url + "/") for u in urls[VALIDATING_NAME])

        # The webhook stopped: installing again is refused (and leaves what is there as it was) ...
        code, text = await cli(capsys, "webhook", "install", "--url", nowhere, *where)
        assert code == 2 and await installed_urls(control_plane) == urls
        # ... unless the user says so.
        code, text = await cli(capsys, "webhook", "install", "--url", nowhere, "--skip-check",
                               "--failure-policy", "Ignore", *where)  # fmt: skip
        assert code == 0, text
        assert all(u.startswith(nowhere + "/") for u in (await installed_urls(control_plane))[MUTATING_NAME])

        code, text = await cli(
            capsys, "webhook", "uninstall", "--kubeconfig", str(control_plane.admin.kubeconfig)
        )
        assert code == 0 and text.strip() == "webhook configurations deleted"
        assert await installed_urls(control_plane) == {VALIDATING_NAME: [], MUTATING_NAME: []}
    finally:
        await uninstall(admin)
        await admin.close()
