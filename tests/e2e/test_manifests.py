"""The Kustomize manifests against the real API server: they validate, apply, and grant no more than needed.

kubectl (the one built from source for the control plane, with Kustomize inside) renders and applies the
overlays; the API server validates every object for real (server-side dry run), then the base is applied
for real and the rotator, acting as the driftwarden-certs service account with exactly the RBAC of the
manifests, issues the certificates and injects the caBundle, which a re-apply of the manifests leaves alone.
"""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from certs.facts import facts, issuer_in
from certs.policy import ServingNames
from certs.rotate import RotateSettings, reconcile
from certs.store import CertStore, Location
from devtools.controlplane import ControlPlane
from driftwarden import contract
from tests.support.clients import Clients
from tests.support.guard import ensure_namespace
from webhook.install import uninstall

pytestmark = pytest.mark.cluster

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
NS = contract.DEFAULT_INSTALL_NAMESPACE


async def kubectl(plane: ControlPlane, *args: str, check: bool = True) -> tuple[int, str, str]:
    assert plane.admin is not None and plane.admin.kubeconfig is not None
    proc = await asyncio.create_subprocess_exec(
        str(plane.binaries.kubectl), f"--kubeconfig={plane.admin.kubeconfig}", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    code = proc.returncode
    assert code is not None
    if check:
        assert code == 0, f"kubectl {' '.join(args)} exited {code}:\n{err.decode()}\n{out.decode()}"
    return code, out.decode(), err.decode()


async def render(plane: ControlPlane, target: str) -> list[dict[str, Any]]:
    _, out, _ = await kubectl(plane, "kustomize", str(MANIFESTS / target))
    return [doc for doc in yaml.safe_load_all(out) if doc]


def key(obj: dict[str, Any]) -> tuple[str, str, str]:
    return obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


async def test_the_production_overlay_passes_a_server_side_dry_run(
    control_plane: ControlPlane, clients: Clients
) -> None:
    # A dry run persists nothing, so it cannot create the Namespace and then fill it in one go: it
    # validates into an existing one, as on an upgrade.
    await ensure_namespace(clients.admin, NS)
    _, out, err = await kubectl(
        control_plane,
        "apply",
        "--server-side",
        "--dry-run=server",
        "-k",
        str(MANIFESTS / "overlays/production"),
    )
    rendered = await render(control_plane, "overlays/production")
    assert len(rendered) >= 20
    for kind, _ns, name in map(key, rendered):
        assert f"{kind.lower()}" in out.lower() and name in out, f"{kind}/{name} missing from:\n{out}"
    assert "serverside-applied (server dry run)" in out
    assert "Warning" not in err, err  # e.g. a Pod Security warning for the restricted namespace


async def test_the_base_applies_and_every_object_exists(
    control_plane: ControlPlane, clients: Clients
) -> None:
    await ensure_namespace(clients.admin, NS)
    try:
        await kubectl(control_plane, "apply", "--server-side", "-k", str(MANIFESTS / "base"))
        await kubectl(control_plane, "wait", "--for=condition=Established", "--timeout=60s",
                      f"crd/{contract.APPLICATION_CRD_NAME}")  # fmt: skip
        rendered = await render(control_plane, "base")
        _, out, _ = await kubectl(control_plane, "get", "-k", str(MANIFESTS / "base"), "-o", "json")
        live = {key(obj): obj for obj in json.loads(out)["items"]}
        assert set(live) == {key(obj) for obj in rendered}
        for obj in rendered:
            assert live[key(obj)]["metadata"]["labels"]["app.kubernetes.io/part-of"] == "driftwarden"
        await _rotator_runs_with_the_manifests_rbac(control_plane, clients)
        await _webhook_can_read_only_its_own_secret(clients)
    finally:
        await uninstall(clients.admin)  # the configurations point at a Service with no pods here


async def _rotator_runs_with_the_manifests_rbac(plane: ControlPlane, clients: Clients) -> None:
    rotator = await clients.service_account(NS, "driftwarden-certs")
    store = CertStore(rotator, Location(namespace=NS))
    report = await reconcile(store, RotateSettings(ServingNames(contract.WEBHOOK_SERVICE, NS)))
    assert report.next_due is not None, report
    tls = await client.CoreV1Api(clients.admin).read_namespaced_secret(contract.WEBHOOK_TLS_SECRET, NS)
    assert tls.type == "kubernetes.io/tls"
    cert, bundle = base64.b64decode(tls.data["tls.crt"]), base64.b64decode(tls.data["ca.crt"])
    svc = "driftwarden-webhook"
    assert set(facts(cert).dns_names) == {
        svc, f"{svc}.driftwarden-system", f"{svc}.driftwarden-system.svc",
        f"{svc}.driftwarden-system.svc.cluster.local",
    }  # fmt: skip
    assert issuer_in(cert, among=[facts(bundle)]) is not None
    assert "ca.key" not in tls.data and "tls.key" in tls.data
    # Re-applying the manifests (which carry no caBundle) leaves the injected caBundle where it is.
    await plane_apply_base(plane)
    snap = await CertStore(clients.admin, Location(namespace=NS)).read()
    assert len(snap.configurations) == 2
    assert snap.stored.webhook_bundles == (bundle, bundle, bundle)
    assert (await reconcile(store, RotateSettings(ServingNames(contract.WEBHOOK_SERVICE, NS)))).steps == ()
    with pytest.raises(ApiException) as denied:  # nothing beyond its two Secrets
        await client.CoreV1Api(rotator).list_namespaced_secret(NS)
    assert denied.value.status == 403


async def plane_apply_base(plane: ControlPlane) -> None:
    await kubectl(plane, "apply", "--server-side", "-k", str(MANIFESTS / "base"))


async def _webhook_can_read_only_its_own_secret(clients: Clients) -> None:
    webhook = client.CoreV1Api(await clients.service_account(NS, contract.WEBHOOK_SERVICE))
    own = await webhook.read_namespaced_secret(contract.WEBHOOK_TLS_SECRET, NS)
    assert own.metadata.name == contract.WEBHOOK_TLS_SECRET
    for forbidden in (
        lambda: webhook.read_namespaced_secret(contract.WEBHOOK_CA_SECRET, NS),
        lambda: webhook.list_namespaced_secret(NS),
        lambda: webhook.patch_namespaced_secret(
            contract.WEBHOOK_TLS_SECRET, NS, {"metadata": {"labels": {"a": "b"}}}
        ),
    ):
        with pytest.raises(ApiException) as denied:
            await forbidden()
        assert denied.value.status == 403
