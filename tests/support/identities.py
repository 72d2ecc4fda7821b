"""driftwarden's own identities on the local control plane, with exactly the RBAC in manifests/.

The service accounts, Roles, ClusterRoles and bindings are applied from the manifests' own files (the
files ``driftwarden dev up`` installs), never written out again here; a process under test then gets a
token kubeconfig for its service account from the TokenRequest API, as a pod would, so what it may do is
what a cluster running the manifests allows, not admin.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import yaml
from kubernetes_asyncio import client

from auditor.kube.cluster import Cluster
from devtools.controlplane import ControlPlane
from devtools.controlplane.serviceaccounts import service_account_credentials, write_token_kubeconfig
from devtools.dev.stack import INSTALL_FILES, MANIFESTS
from driftwarden import contract
from driftwarden.kube.client import UserCredentials, api_client_for
from tests.support.auditor import wait_until_allowed
from tests.support.clients import Clients
from tests.support.kubectl import kubectl

IDENTITIES = ("driftwarden-auditor", "driftwarden-webhook", "driftwarden-certs")
"""The install namespace's service accounts (manifests/base/serviceaccounts.yaml)."""


async def install_manifests_rbac(plane: ControlPlane) -> None:
    """Namespace, CRD, service accounts and RBAC from manifests/, applied as an installer would."""
    assert plane.admin is not None and plane.admin.kubeconfig is not None
    for rel in INSTALL_FILES:
        code, out, err = await kubectl(plane, plane.admin.kubeconfig, "apply", "--server-side",
                                       "--field-manager=driftwarden-installer",
                                       "-f", str(MANIFESTS / rel))  # fmt: skip
        assert code == 0, (rel, out, err)


async def _credentials(plane: ControlPlane, name: str, namespace: str) -> UserCredentials:
    assert plane.admin is not None
    admin = api_client_for(plane.admin)
    try:
        return await service_account_credentials(
            admin, namespace, name, server=plane.url, ca_file=plane.pki.serving_ca_file
        )
    finally:
        await admin.close()


async def service_account_kubeconfig(
    plane: ControlPlane, path: Path, name: str, *, namespace: str = contract.DEFAULT_INSTALL_NAMESPACE
) -> Path:
    """A token kubeconfig at ``path`` for ``system:serviceaccount:<namespace>:<name>`` (mode 0600)."""
    creds = await _credentials(plane, name, namespace)
    return await asyncio.to_thread(write_token_kubeconfig, creds, path)


def _certs_rbac(namespace: str) -> list[dict[str, Any]]:
    """The rotator's rules of manifests/base/rbac.yaml, verbatim, aimed at ``namespace``: its Role and
    RoleBinding moved there, its ClusterRole as is, with a binding of its own for that namespace's account."""
    docs = [d for d in yaml.safe_load_all((MANIFESTS / "base/rbac.yaml").read_text()) if d]
    mine = [d for d in docs if d["metadata"]["labels"]["app.kubernetes.io/component"] == "certs"]
    assert sorted(d["kind"] for d in mine) == ["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"]
    for doc in mine:
        if doc["kind"] in ("Role", "RoleBinding"):
            doc["metadata"]["namespace"] = namespace
        if doc["kind"] == "ClusterRoleBinding":
            doc["metadata"]["name"] = f"{doc['metadata']['name']}-{namespace}"
        for subject in doc.get("subjects", []):
            subject["namespace"] = namespace
    return mine


async def rotator(clients: Clients, namespace: str, *, kubeconfig: Path | None = None) -> client.ApiClient:
    """The certificate rotator's identity for a test's own install ``namespace``: ServiceAccount
    ``driftwarden-certs`` there with exactly the manifests' rotator RBAC. Returns its client (closed with
    ``clients``); with ``kubeconfig``, also writes a token kubeconfig there for ``driftwarden certs ...``."""
    cluster = Cluster(clients.admin)
    for doc in _certs_rbac(namespace):
        await cluster.apply(doc, field_manager="driftwarden-installer")
    api = await clients.service_account(namespace, "driftwarden-certs")
    await wait_until_allowed(api, verb="create", group="", resource="secrets", namespace=namespace)
    if kubeconfig is not None:
        await service_account_kubeconfig(clients.plane, kubeconfig, "driftwarden-certs", namespace=namespace)
    return api
