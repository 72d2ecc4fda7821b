"""auditor.kube.applications against the real API server: Application reads, status writes, rollback spec
patch.

Acts as the auditor's real service account, bound to manifests/rbac/auditor-clusterrole.yaml.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from typing import Any

import pytest

from auditor.application import parse_application
from auditor.kube.applications import ApplicationStore
from auditor.kube.cluster import Cluster
from auditor.objects import AppKey
from driftwarden import contract
from driftwarden.errors import KubeError
from tests.support.clients import Clients

pytestmark = pytest.mark.cluster

SPEC: dict[str, Any] = {
    "source": {"repoURL": "https://git.example.com/infra.git", "targetRevision": "main", "path": "apps/web"},
    "destination": {"namespace": "production"},
    "syncPolicy": {"automated": {"prune": True, "selfHeal": True}, "syncOptions": ["CreateNamespace=true"]},
}


@pytest.fixture
async def store(admin: Cluster, clients: Clients) -> ApplicationStore:
    api = await clients.service_account(contract.DEFAULT_INSTALL_NAMESPACE, contract.AUDITOR_SERVICE_ACCOUNT)
    apps = ApplicationStore(api)
    for _ in range(100):  # the RBAC authorizer's cache sees a new binding within moments
        try:
            await apps.list_applications()
            return apps
        except KubeError as exc:
            if exc.status != 403:
                raise
        await asyncio.sleep(0.05)
    raise AssertionError("the auditor's ClusterRoleBinding never took effect")


async def _create_app(admin: Cluster, namespace: str, name: str) -> dict[str, Any]:
    obj = {
        "apiVersion": contract.API_VERSION, "kind": contract.APPLICATION_KIND,
        "metadata": {"name": name, "namespace": namespace}, "spec": copy.deepcopy(SPEC),
    }  # fmt: skip
    return await admin.apply(obj, field_manager="kubectl")


@pytest.fixture
async def ns(admin: Cluster) -> str:
    name = f"apps-{uuid.uuid4().hex[:8]}"
    await admin.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


async def test_get_and_list_applications(admin: Cluster, store: ApplicationStore, ns: str) -> None:
    other_ns = f"{ns}-other"
    await admin.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": other_ns}})
    for namespace, name in ((ns, "web"), (ns, "api"), (other_ns, "web")):
        await _create_app(admin, namespace, name)

    got = await store.get_application(AppKey(ns, "web"))
    assert got is not None and parse_application(got).source.path == "apps/web"
    assert await store.get_application(AppKey(ns, "missing")) is None

    in_ns = await store.list_applications(ns)
    assert [(a["metadata"]["namespace"], a["metadata"]["name"]) for a in in_ns] == [(ns, "api"), (ns, "web")]
    assert all(parse_application(a).namespace == ns for a in in_ns)  # apiVersion and kind filled in
    everywhere = {
        (a["metadata"]["namespace"], a["metadata"]["name"]) for a in await store.list_applications()
    }
    assert {(ns, "api"), (ns, "web"), (other_ns, "web")} <= everywhere


async def test_status_patch_merges_into_the_status_subresource(
    admin: Cluster, store: ApplicationStore, ns: str
) -> None:
    created = await _create_app(admin, ns, "web")
    key = AppKey(ns, "web")
    first = {
        "sync": {"status": "OutOfSync", "revision": "a" * 40},
        "health": {"status": "Progressing"},
        "resources": [{"kind": "Deployment", "name": "web", "status": "OutOfSync"}],
        "operationState": {"phase": "Running"},
    }
    written = await store.patch_application_status(key, first)
    assert written["status"] == first
    assert written["spec"] == created["spec"]
    assert written["metadata"]["generation"] == created["metadata"]["generation"]

    second = {"sync": {"status": "Synced", "revision": "b" * 40}, "resources": [], "operationState": None}
    merged = await store.patch_application_status(key, second)
    assert merged["status"] == {
        "sync": {"status": "Synced", "revision": "b" * 40},
        "health": {"status": "Progressing"},  # kept: not in the patch
        "resources": [],  # lists are replaced whole
    }  # operationState removed by None


async def test_status_patch_with_a_stale_resource_version_conflicts(
    admin: Cluster, store: ApplicationStore, ns: str
) -> None:
    created = await _create_app(admin, ns, "web")
    key = AppKey(ns, "web")
    fresh = await store.patch_application_status(
        key, {"health": {"status": "Healthy"}}, resource_version=created["metadata"]["resourceVersion"]
    )
    with pytest.raises(KubeError) as conflict:
        await store.patch_application_status(
            key, {"health": {"status": "Degraded"}}, resource_version=created["metadata"]["resourceVersion"]
        )
    assert conflict.value.status == 409
    assert (await store.get_application(key) or {})["status"] == fresh["status"]


async def test_rollback_turns_automated_sync_off_and_keeps_status(
    admin: Cluster, store: ApplicationStore, ns: str
) -> None:
    await _create_app(admin, ns, "web")
    key = AppKey(ns, "web")
    await store.patch_application_status(key, {"sync": {"status": "Synced", "revision": "c" * 40}})

    patched = await store.patch_application_spec(key, {"syncPolicy": {"automated": None}})
    app = parse_application(patched)
    assert app.sync_policy.automated is None
    assert app.sync_policy.create_namespace  # the rest of syncPolicy stays
    assert patched["status"]["sync"]["revision"] == "c" * 40


async def test_patching_a_missing_application_is_a_404(store: ApplicationStore, ns: str) -> None:
    with pytest.raises(KubeError) as missing:
        await store.patch_application_status(AppKey(ns, "ghost"), {"health": {"status": "Missing"}})
    assert missing.value.status == 404


async def test_a_status_write_that_breaks_the_schema_is_rejected(
    admin: Cluster, store: ApplicationStore, ns: str
) -> None:
    await _create_app(admin, ns, "web")
    with pytest.raises(KubeError) as invalid:
        await store.patch_application_status(AppKey(ns, "web"), {"sync": {"status": "Perfect"}})
    assert invalid.value.status == 422 and "status.sync.status" in str(invalid.value)
