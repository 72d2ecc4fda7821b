"""The auditor's ClusterRole (manifests/rbac/auditor-clusterrole.yaml) on the real API server.

The real service account gets what the adapters need; a fresh install of the same role and binding in
a namespace of its own (so bindings other tests add to driftwarden-system cannot blur the result)
shows what the role does not allow: impersonation and granting itself more through RBAC.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client

from auditor.kube.cluster import Cluster
from devtools.controlplane import ControlPlane
from driftwarden import contract
from driftwarden.errors import KubeError
from driftwarden.kube.client import api_client_for
from driftwarden.kube.rest import request_json
from tests.support.clients import Clients

pytestmark = pytest.mark.cluster

RBAC_FILE = Path(__file__).parents[2] / "manifests/rbac/auditor-clusterrole.yaml"
ROLE, BINDING = yaml.safe_load_all(RBAC_FILE.read_text())
NEVER_GRANTED = {"*", "escalate", "bind", "impersonate", "approve", "sign", "deletecollection", "use"}
SSAR_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"


@pytest.fixture(scope="module")
async def admin(control_plane: ControlPlane) -> AsyncIterator[Cluster]:
    assert control_plane.admin is not None
    api = api_client_for(control_plane.admin)
    cluster = Cluster(api)
    for doc in (ROLE, BINDING):
        await cluster.apply(doc, field_manager="driftwarden-installer")
    yield cluster
    await api.close()


async def _allowed(api: client.ApiClient, attributes: dict[str, str]) -> bool:
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
              "spec": {"resourceAttributes": attributes}}  # fmt: skip
    return bool((await request_json(api, "POST", SSAR_PATH, body=review))["status"].get("allowed"))


async def _bound(api: client.ApiClient) -> client.ApiClient:
    for _ in range(100):  # the RBAC authorizer's cache sees a new binding within moments
        if await _allowed(api, {"verb": "list", "group": contract.GROUP, "resource": "applications"}):
            return api
        await asyncio.sleep(0.05)
    raise AssertionError("the ClusterRoleBinding never took effect")


@pytest.fixture
async def auditor(admin: Cluster, clients: Clients) -> client.ApiClient:
    """The real auditor service account, driftwarden-system/driftwarden-auditor."""
    api = await clients.service_account(contract.DEFAULT_INSTALL_NAMESPACE, contract.AUDITOR_SERVICE_ACCOUNT)
    return await _bound(api)


@pytest.fixture
async def isolated(admin: Cluster, clients: Clients) -> client.ApiClient:
    """The auditor installed into a namespace of its own, bound only through the shipped ClusterRole."""
    install_ns = f"dw-rbac-{uuid.uuid4().hex[:6]}"
    api = await clients.service_account(install_ns, contract.AUDITOR_SERVICE_ACCOUNT)
    binding = copy.deepcopy(BINDING)
    binding["metadata"]["name"] = f"driftwarden-auditor-{install_ns}"
    binding["subjects"][0]["namespace"] = install_ns
    await admin.apply(binding, field_manager="driftwarden-installer")
    return await _bound(api)


def test_the_role_never_grants_verbs_that_lift_it_further() -> None:
    granted = {verb for rule in ROLE["rules"] for verb in rule["verbs"]}
    assert not granted & NEVER_GRANTED
    assert all("nonResourceURLs" not in rule for rule in ROLE["rules"])
    assert BINDING["roleRef"]["name"] == ROLE["metadata"]["name"]
    assert BINDING["subjects"] == [{"kind": "ServiceAccount", "name": contract.AUDITOR_SERVICE_ACCOUNT,
                                    "namespace": contract.DEFAULT_INSTALL_NAMESPACE}]  # fmt: skip


NEEDED: list[dict[str, str]] = [
    # Syncing any kind: dry-run/apply (patch, create), read, watch, prune.
    *({"verb": v, "group": "apps", "resource": "deployments", "namespace": "prod"}
      for v in ("get", "list", "watch", "create", "patch", "update", "delete")),
    {"verb": "patch", "group": "", "resource": "namespaces"},
    {"verb": "patch", "group": "apiextensions.k8s.io", "resource": "customresourcedefinitions"},
    {"verb": "patch", "group": "rbac.authorization.k8s.io", "resource": "clusterroles"},
    {"verb": "patch", "group": "example.com", "resource": "widgets", "namespace": "prod"},  # any CRD's kind
    # Applications and their status.
    {"verb": "list", "group": contract.GROUP, "resource": "applications"},
    {"verb": "watch", "group": contract.GROUP, "resource": "applications"},
    {"verb": "patch", "group": contract.GROUP, "resource": "applications", "namespace": "driftwarden-system"},
    {"verb": "patch", "group": contract.GROUP, "resource": "applications", "subresource": "status",
     "namespace": "team-a"},
    # Events, leader election, Git credentials.
    {"verb": "create", "group": "events.k8s.io", "resource": "events", "namespace": "prod"},
    {"verb": "patch", "group": "events.k8s.io", "resource": "events", "namespace": "prod"},
    {"verb": "create", "group": "", "resource": "events", "namespace": "default"},
    *({"verb": v, "group": "coordination.k8s.io", "resource": "leases", "namespace": "driftwarden-system"}
      for v in ("get", "create", "update")),
    {"verb": "get", "group": "", "resource": "secrets", "namespace": "driftwarden-system"},
]  # fmt: skip


@pytest.mark.parametrize("attributes", NEEDED, ids=lambda a: "-".join(filter(None, a.values())))
async def test_the_auditor_may_do_what_its_adapters_need(
    auditor: client.ApiClient, attributes: dict[str, str]
) -> None:
    assert await _allowed(auditor, attributes)


DENIED: list[dict[str, str]] = [
    {"verb": "impersonate", "group": "", "resource": "users"},
    {"verb": "impersonate", "group": "", "resource": "groups"},
    {"verb": "impersonate", "group": "", "resource": "serviceaccounts", "namespace": "kube-system"},
    {"verb": "escalate", "group": "rbac.authorization.k8s.io", "resource": "clusterroles"},
    {"verb": "bind", "group": "rbac.authorization.k8s.io", "resource": "clusterroles"},
    {"verb": "approve", "group": "certificates.k8s.io", "resource": "signers"},
    {"verb": "deletecollection", "group": "", "resource": "configmaps", "namespace": "prod"},
]


@pytest.mark.parametrize("attributes", DENIED, ids=lambda a: "-".join(filter(None, a.values())))
async def test_the_role_does_not_allow(isolated: client.ApiClient, attributes: dict[str, str]) -> None:
    assert not await _allowed(isolated, attributes)


async def test_it_cannot_bind_itself_to_cluster_admin(isolated: client.ApiClient) -> None:
    binding: dict[str, Any] = {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": f"grab-{uuid.uuid4().hex[:6]}"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "User", "name": "mallory", "apiGroup": "rbac.authorization.k8s.io"}],
    }  # fmt: skip
    with pytest.raises(KubeError) as refused:
        await Cluster(isolated).apply(binding)
    assert refused.value.status == 403
    assert "escalat" in str(refused.value) or "not currently held" in str(refused.value)


async def test_it_cannot_write_a_role_with_more_than_it_holds(isolated: client.ApiClient) -> None:
    cluster = Cluster(isolated)
    role: dict[str, Any] = {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": f"wider-{uuid.uuid4().hex[:6]}"},
        "rules": [{"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"]}],
    }  # fmt: skip
    with pytest.raises(KubeError) as refused:
        await cluster.apply(role)
    assert refused.value.status == 403

    role["rules"] = [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]
    applied = await cluster.apply(role)  # within what it holds: allowed, so the denial above was escalation
    assert applied["rules"][0]["verbs"] == ["get", "list"]


async def test_it_cannot_impersonate_anyone(isolated: client.ApiClient) -> None:
    isolated.set_default_header("Impersonate-User", "admin")
    isolated.set_default_header("Impersonate-Group", "system:masters")
    with pytest.raises(KubeError) as refused:
        await request_json(isolated, "GET", "/api/v1/namespaces/default")
    assert refused.value.status == 403 and "impersonate" in str(refused.value)
