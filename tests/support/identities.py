"""driftwarden's own identities on the local control plane, with exactly the RBAC in manifests/.

The service accounts, Roles, ClusterRoles and bindings are applied from the manifests' own files (the
files ``driftwarden dev up`` installs), never written out again here; a process under test then gets a
token kubeconfig for its service account from the TokenRequest API, as a pod would, so what it may do is
what a cluster running the manifests allows, not admin.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from devtools.controlplane import ControlPlane
from devtools.controlplane.serviceaccounts import service_account_credentials, write_token_kubeconfig
from devtools.dev.stack import INSTALL_FILES, MANIFESTS
from driftwarden import contract
from driftwarden.kube.client import api_client_for
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


async def service_account_kubeconfig(
    plane: ControlPlane, path: Path, name: str, *, namespace: str = contract.DEFAULT_INSTALL_NAMESPACE
) -> Path:
    """A token kubeconfig at ``path`` for ``system:serviceaccount:<namespace>:<name>`` (mode 0600)."""
    assert plane.admin is not None
    admin = api_client_for(plane.admin)
    try:
        creds = await service_account_credentials(
            admin, namespace, name, server=plane.url, ca_file=plane.pki.serving_ca_file
        )
    finally:
        await admin.close()
    return await asyncio.to_thread(write_token_kubeconfig, creds, path)
