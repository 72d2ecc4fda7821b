"""Caller authentication for real: a kube-apiserver started with an AdmissionConfiguration whose webhook
kubeconfig holds a client certificate for the webhook's host presents it, and ``--client-ca-file`` makes the
webhook require it. Anything else that reaches the port (no certificate, one from another CA, the same API
server calling the webhook under a host name it has no credentials for) fails the TLS handshake.

A second, bare control plane is started for this (etcd and kube-apiserver with the extra flag), as
docs/security.md describes for production. The webhook runs once on each event loop (uvloop, asyncio's).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import ssl
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import yaml
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException
from opentelemetry.sdk.trace import TracerProvider

from certs.pki import CertRequest, KeyPair, issue, new_ca
from devtools.controlplane import ControlPlane, ControlPlaneSettings
from driftwarden.kube.client import api_client_for
from tests.support.guard import apply, deployment, managed, serving_pair
from tests.support.loops import served_on
from tests.webhook.reviews import admission_review
from webhook.admission.profiles import get_profile
from webhook.admission.settings import make_settings
from webhook.app import make_app
from webhook.install import install, uninstall
from webhook.registration import Endpoint, mutating_configuration, selection_for, validating_configuration
from webhook.server import ServerSettings, WebhookServer

pytestmark = pytest.mark.cluster

GITOPS = "gitops-bot"
DAY = dt.timedelta(days=1)


@dataclass
class Setup:
    plane: ControlPlane
    server: WebhookServer
    serving_ca: KeyPair
    caller_ca: KeyPair
    workdir: Path


def write_admission_configuration(workdir: Path, *, host: str, cert: Path, key: Path) -> Path:
    """An AdmissionConfiguration whose webhook kubeconfig gives ``host`` a client certificate."""
    kubeconfig = workdir / "webhook-clients.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "users": [{"name": host, "user": {"client-certificate": str(cert), "client-key": str(key)}}],
    }))  # fmt: skip
    webhook_admission = {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "WebhookAdmissionConfiguration",
        "kubeConfigFile": str(kubeconfig),
    }
    config = workdir / "admission.yaml"
    config.write_text(yaml.safe_dump({
        "apiVersion": "apiserver.config.k8s.io/v1", "kind": "AdmissionConfiguration",
        "plugins": [{"name": name, "configuration": webhook_admission}
                    for name in ("ValidatingAdmissionWebhook", "MutatingAdmissionWebhook")],
    }))  # fmt: skip
    return config


@pytest.fixture
async def setup(
    control_plane_settings: ControlPlaneSettings, tmp_path: Path, loop_name: str
) -> AsyncIterator[Setup]:
    """The webhook on each event loop (its own thread, tests.support.loops), and an API server calling it."""
    now = dt.datetime.now(dt.UTC)
    # The CA that signs the API server's webhook client certificate, and nothing else.
    caller_ca = new_ca("driftwarden-webhook-callers", now=now, validity=DAY)
    caller = issue(
        CertRequest("kube-apiserver-webhook-client", client=True, validity=DAY), ca=caller_ca, now=now
    )
    for name, data in (("caller-ca.crt", caller_ca.cert_pem), ("caller.crt", caller.cert_pem),
                       ("caller.key", caller.key_pem)):  # fmt: skip
        (tmp_path / name).write_bytes(data)
    serving_ca, cert, key = serving_pair(tmp_path / "serving")
    settings = make_settings(gitops_identities=[GITOPS])
    served = ServerSettings(cert, key, host="127.0.0.1", port=0, client_ca_file=tmp_path / "caller-ca.crt")

    def webhook() -> WebhookServer:
        return WebhookServer(make_app(settings, tracer=TracerProvider().get_tracer("test")), served)

    with served_on(loop_name, webhook) as server:
        config = write_admission_configuration(
            tmp_path,
            host=f"127.0.0.1:{server.port}",
            cert=tmp_path / "caller.crt",
            key=tmp_path / "caller.key",
        )
        plane_settings = ControlPlaneSettings(
            bin_dir=control_plane_settings.bin_dir,
            work_dir=tmp_path / "plane",
            bare=True,
            apiserver_flags=(f"--admission-control-config-file={config}",),
        )
        async with ControlPlane(plane_settings) as plane:
            yield Setup(plane, server, serving_ca, caller_ca, tmp_path)


async def register(setup: Setup, admin: client.ApiClient, *, url: str) -> None:
    selection = selection_for(get_profile("driftwarden"), skip_users=[GITOPS], timeout_seconds=5)
    endpoint = Endpoint(ca_bundle=setup.serving_ca.cert_pem, url=url)
    await install(
        admin,
        validating=validating_configuration(endpoint=endpoint, selection=selection),
        mutating=mutating_configuration(endpoint=endpoint, selection=selection),
    )


async def scale(api: client.ApiClient, namespace: str, replicas: int) -> None:
    await client.AppsV1Api(api).patch_namespaced_deployment(
        "web", namespace, {"spec": {"replicas": replicas}}
    )


async def test_the_api_server_authenticates_to_the_webhook_and_nothing_else_gets_in(setup: Setup) -> None:
    plane = setup.plane
    assert plane.admin is not None
    admin = api_client_for(plane.admin)
    gitops = api_client_for(await asyncio.to_thread(plane.user, GITOPS, groups=("system:masters",)))
    jane = api_client_for(await asyncio.to_thread(plane.user, "jane", groups=("system:masters",)))
    namespace = f"auth-{uuid.uuid4().hex[:6]}"
    try:
        await client.CoreV1Api(admin).create_namespace({"metadata": {"name": namespace}})
        await apply(
            gitops, managed(deployment("web", namespace)), plural="deployments", manager="driftwarden"
        )

        # Registered under a host name the API server has no credentials for: it calls without a client
        # certificate, the handshake fails, and failurePolicy Fail turns that into an error.
        await register(setup, admin, url=f"https://localhost:{setup.server.port}")
        before = setup.server.guard.stats.failed_handshakes
        with pytest.raises(ApiException) as failed:
            await scale(jane, namespace, 7)
        assert "failed calling webhook" in str(failed.value.body)
        assert setup.server.guard.stats.failed_handshakes > before
        await uninstall(admin)

        # Registered as 127.0.0.1:<port>, the host its kubeconfig names: the API server presents its
        # certificate, and the webhook decides (a Git-owned field, denied in enforce mode).
        await register(setup, admin, url=f"https://127.0.0.1:{setup.server.port}")
        for attempt in range(50):
            try:
                await scale(jane, namespace, 7)
            except ApiException as exc:
                if exc.status == 403 and "driftwarden" in str(exc.body):
                    assert "spec.replicas" in str(exc.body)
                    break
                if attempt == 49:
                    raise
            await asyncio.sleep(0.1)  # the API server picks up the configuration
        else:
            raise AssertionError("the API server never had a decision from the webhook")
        await scale(gitops, namespace, 3)  # the GitOps identity is allowed, through the same webhook
    finally:
        await uninstall(admin)
        for api in (admin, gitops, jane):
            await api.close()


async def test_a_caller_without_the_right_client_certificate_is_refused(setup: Setup) -> None:
    url = f"https://127.0.0.1:{setup.server.port}/validate"
    body = json.dumps(admission_review(old=None, new={"metadata": {"name": "x"}}, operation="CREATE"))
    headers = {"Content-Type": "application/json"}
    now = dt.datetime.now(dt.UTC)
    stranger_ca = new_ca("someone-else", now=now, validity=DAY)
    stranger = issue(CertRequest("mallory", client=True, validity=DAY), ca=stranger_ca, now=now)
    caller = issue(CertRequest("a-legit-caller", client=True, validity=DAY), ca=setup.caller_ca, now=now)

    def context(pair: KeyPair | None) -> ssl.SSLContext:
        made = ssl.create_default_context(cadata=setup.serving_ca.cert_pem.decode())
        if pair is not None:
            cert, key = setup.workdir / f"{pair.certificate.serial_number}.crt", setup.workdir / "k.key"
            cert.write_bytes(pair.cert_pem)
            key.write_bytes(pair.key_pem)
            made.load_cert_chain(str(cert), str(key))
        return made

    async with aiohttp.ClientSession() as session:
        for who in (None, stranger):
            with pytest.raises((aiohttp.ClientError, ssl.SSLError, ConnectionError)):
                async with session.post(url, data=body, headers=headers, ssl=context(who)) as resp:
                    await resp.read()
        # A certificate from the caller CA gets an answer: the CA is the whole of the check.
        async with session.post(url, data=body, headers=headers, ssl=context(caller)) as resp:
            assert resp.status == 200
            assert (await resp.json())["response"]["allowed"] is True
