"""Rotation under load: the webhook keeps serving, and the API server keeps trusting it, through rotations.

The rotator runs its real ``watch`` loop against the real API server with lifetimes shrunk to seconds: the
serving certificate is due 8 s after it is issued and the CA 20 s after it is made. The webhook serves
in-process from a kubelet-style Secret volume. The whole time, one client posts reviews on fresh TLS
connections that trust only the caBundle published in the webhook configuration (re-read each time),
and a real user edits a Git-managed ConfigMap through the API server, which calls the webhook with the
caBundle the rotator injected. Not one TLS or HTTP error is allowed.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException
from opentelemetry.sdk.trace import TracerProvider

from certs.facts import bundle_facts, facts, issuer_in
from certs.pki import new_ca
from certs.policy import Policy, ServingNames
from certs.rotate import RotateSettings, reconcile, watch
from certs.store import CertStore, Location
from driftwarden import contract
from tests.certs.support import SecretVolume, post_review, published_bundles, read_secret
from tests.support.clients import Clients
from tests.support.guard import (
    AUDITOR_USER,
    apply,
    ensure_namespace,
    grant_cluster_admin,
    managed,
    wait_for_guard,
)
from tests.support.identities import rotator
from webhook.admission.profiles import get_profile
from webhook.admission.settings import make_settings
from webhook.app import make_app
from webhook.install import install, uninstall
from webhook.registration import Endpoint, mutating_configuration, selection_for, validating_configuration
from webhook.server import ServerSettings, WebhookServer

pytestmark = pytest.mark.cluster

DAY = dt.timedelta(days=1)
FAST = Policy(
    ca_validity=3 * DAY,
    ca_renew_before=3 * DAY - dt.timedelta(seconds=20),  # the CA falls due 20 s after it is made
    serving_validity=DAY,
    serving_renew_before=DAY - dt.timedelta(seconds=8),  # the serving certificate 8 s after issue
    renew_fraction=1.0,
    propagation=dt.timedelta(seconds=2),
)


@dataclass
class Traffic:
    reviews: int = 0
    denied_edits: int = 0
    served: list[bytes] = field(default_factory=list)
    """The serving certificates the client saw (PEM), in order, without repeats."""
    errors: list[str] = field(default_factory=list)


async def _reviewer(admin: client.ApiClient, port: int, traffic: Traffic, stop: asyncio.Event) -> None:
    while not stop.is_set():
        bundle = (await published_bundles(admin, contract.VALIDATING_WEBHOOK_CONFIGURATION))[0]
        try:
            status, body, served = await post_review(port, bundle)
        except OSError as exc:  # ssl.SSLError is an OSError
            traffic.errors.append(f"review: {exc!r}")
            continue
        if status != 200 or body.get("response", {}).get("allowed") is not True:
            traffic.errors.append(f"review: HTTP {status} {body}")
        traffic.reviews += 1
        if not traffic.served or traffic.served[-1] != served:
            traffic.served.append(served)
        await asyncio.sleep(0.02)


async def _editor(person: client.ApiClient, namespace: str, traffic: Traffic, stop: asyncio.Event) -> None:
    core = client.CoreV1Api(person)
    while not stop.is_set():
        try:
            await core.patch_namespaced_config_map("settings", namespace, {"data": {"level": "debug"}})
            traffic.errors.append("edit: a Git-owned field was changed out of band")
        except ApiException as exc:
            if exc.status == 403 and "driftwarden" in str(exc.body):
                traffic.denied_edits += 1
            else:  # e.g. 500 "failed calling webhook ... x509: certificate signed by unknown authority"
                traffic.errors.append(f"edit: {exc.status} {exc.body!r}")
        await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def _guarded(tasks: list[asyncio.Task[None]]) -> AsyncIterator[None]:
    """Cancel and await every task when the block ends, however it ends."""
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _bootstrap(admin: client.ApiClient, store: CertStore, settings: RotateSettings) -> bytes:
    """First run on an empty namespace: CA, bundle, serving certificate; returns the CA bundle."""
    first = await reconcile(store, settings)
    assert [s.split(" (")[0] for s in first.steps] == ["new CA", "published CA bundle of 1 CA(s)",
                                                       "new serving certificate"]  # fmt: skip
    namespace = store.location.namespace
    ca_secret = await read_secret(admin, namespace, contract.WEBHOOK_CA_SECRET)
    assert set(ca_secret) == {"ca.crt", "ca.key", "retired.crt"}
    tls = await read_secret(admin, namespace, contract.WEBHOOK_TLS_SECRET)
    assert set(tls) == {"tls.crt", "tls.key", "ca.crt"} and b"PRIVATE KEY" not in tls["ca.crt"]
    assert tls["ca.crt"] == ca_secret["ca.crt"]
    return tls["ca.crt"]


async def test_rotating_twice_with_a_new_ca_drops_no_request(clients: Clients, tmp_path: Path) -> None:
    admin = clients.admin
    suffix = uuid.uuid4().hex[:6]
    system_ns, app_ns = f"certs-rot-{suffix}", f"certs-app-{suffix}"
    for ns in (system_ns, app_ns):
        await ensure_namespace(admin, ns)
    editor = f"rotation-editor-{suffix}"  # a user of its own: the grant must not leak into other tests
    await grant_cluster_admin(admin, users=[editor])
    await apply(admin, managed({"apiVersion": "v1", "kind": "ConfigMap",
                                "metadata": {"name": "settings", "namespace": app_ns},
                                "data": {"level": "info"}}), plural="configmaps")  # fmt: skip
    store = CertStore(await rotator(clients, system_ns), Location(namespace=system_ns))  # the manifests' RBAC
    settings = RotateSettings(
        ServingNames(contract.WEBHOOK_SERVICE, system_ns, ip_addresses=("127.0.0.1",)),
        policy=FAST,
        interval=dt.timedelta(seconds=1),
    )
    bundle = await _bootstrap(admin, store, settings)

    volume = SecretVolume(admin, system_ns, contract.WEBHOOK_TLS_SECRET, tmp_path / "tls")
    decisions = make_settings(profile="driftwarden", gitops_identities=[AUDITOR_USER])
    app = make_app(decisions, tracer=TracerProvider().get_tracer("test"))
    serve = ServerSettings(volume.path("tls.crt"), volume.path("tls.key"), host="127.0.0.1", port=0,
                           reload_interval=0.1)  # fmt: skip
    async with volume.mounted(), WebhookServer(app, serve) as server:
        # Install pointing at us but trusting an unrelated CA: only the rotator's injection makes it work.
        stranger = new_ca("not-the-webhook-ca", now=dt.datetime.now(dt.UTC), validity=DAY)
        endpoint = Endpoint(ca_bundle=stranger.cert_pem, url=f"https://127.0.0.1:{server.port}")
        selection = selection_for(get_profile("driftwarden"), skip_users=[AUDITOR_USER], timeout_seconds=5)
        await install(admin, validating=validating_configuration(endpoint=endpoint, selection=selection),
                      mutating=mutating_configuration(endpoint=endpoint, selection=selection))  # fmt: skip
        try:
            injected = await reconcile(store, settings)
            assert any(s.startswith("published CA bundle") for s in injected.steps)
            assert await published_bundles(admin, contract.VALIDATING_WEBHOOK_CONFIGURATION) == [bundle]
            assert await published_bundles(admin, contract.MUTATING_WEBHOOK_CONFIGURATION, mutating=True) == [
                bundle,
                bundle,
            ]
            person = await clients.user(editor)
            core = client.CoreV1Api(person)
            await wait_for_guard(lambda: core.patch_namespaced_config_map(
                "settings", app_ns, {"data": {"level": "debug"}}))  # fmt: skip

            traffic, stop = Traffic(), asyncio.Event()
            tasks = [
                asyncio.create_task(watch(store, settings, stop=stop), name="rotator"),
                asyncio.create_task(_reviewer(admin, server.port, traffic, stop), name="reviewer"),
                asyncio.create_task(_editor(person, app_ns, traffic, stop), name="editor"),
            ]
            first_ca = facts(bundle)
            async with _guarded(tasks):
                async with asyncio.timeout(150):
                    while not _rotated_twice_once_with_a_new_ca(traffic, first_ca.pem):
                        assert not traffic.errors, traffic.errors[:5]
                        await asyncio.sleep(0.5)
                await asyncio.sleep(1.0)  # keep the traffic going a little longer on the newest certificate
                stop.set()
                await asyncio.gather(*tasks)
        finally:
            await uninstall(admin)

    assert not traffic.errors, traffic.errors[:5]
    assert traffic.reviews >= 20 and traffic.denied_edits >= 10, traffic
    # The new CA signs what is served now; the old one stayed in the bundle through the overlap.
    final = await read_secret(admin, system_ns, contract.WEBHOOK_TLS_SECRET)
    live = bundle_facts(final["ca.crt"])
    assert len(live) >= 2 and live[0] == first_ca
    assert issuer_in(final["tls.crt"], among=[first_ca]) is None
    assert issuer_in(final["tls.crt"], among=live[1:]) is not None
    assert facts(final["tls.crt"]).ip_addresses == ("127.0.0.1",)
    assert volume.updates >= 3


def _rotated_twice_once_with_a_new_ca(traffic: Traffic, first_ca: bytes) -> bool:
    """The client saw three certificates or more, the first from the first CA, the last from another."""
    if len(traffic.served) < 3:
        return False
    ca = bundle_facts(first_ca)
    return (
        issuer_in(traffic.served[0], among=ca) is not None and issuer_in(traffic.served[-1], among=ca) is None
    )
