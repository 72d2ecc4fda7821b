"""auditor.kube.cluster against the real API server, acting as the auditor's real service account.

The service account has only what manifests/rbac/auditor-clusterrole.yaml grants it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Awaitable
from typing import Any

import pytest
from kubernetes_asyncio import client

from auditor.kube.cluster import Cluster, NamespaceNotFoundError
from auditor.objects import AppKey, stamp
from devtools.controlplane import ControlPlane
from devtools.controlplane.plane import free_port
from driftwarden import contract
from driftwarden.errors import KubeError, KubeUnavailableError, PermanentError
from driftwarden.kube.client import api_client_for
from driftwarden.kube.rest import request_json
from driftwarden.objectref import ObjectRef
from tests.support.clients import Clients
from tests.support.waiting import eventually

pytestmark = pytest.mark.cluster

AUDITOR_NS = contract.DEFAULT_INSTALL_NAMESPACE


async def _allowed(api: client.ApiClient, **attributes: str) -> bool:
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": attributes},
    }
    path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
    return bool((await request_json(api, "POST", path, body=review))["status"].get("allowed"))


@pytest.fixture
async def auditor(admin: Cluster, clients: Clients) -> Cluster:
    api = await clients.service_account(AUDITOR_NS, contract.AUDITOR_SERVICE_ACCOUNT)
    for _ in range(100):  # the RBAC authorizer's cache sees a new binding within moments
        if await _allowed(api, verb="patch", group="apps", resource="deployments"):
            return Cluster(api)
        await asyncio.sleep(0.05)
    raise AssertionError("the auditor's ClusterRoleBinding never took effect")


@pytest.fixture
async def ns(admin: Cluster) -> str:
    name = f"adapter-{uuid.uuid4().hex[:8]}"
    await admin.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


def deployment(name: str, namespace: str, *, replicas: int | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
        },
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
            "spec": spec}  # fmt: skip


def config_map(name: str, namespace: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace},
            "data": {"k": "v"}}  # fmt: skip


def ref_of(manifest: dict[str, Any]) -> ObjectRef:
    return ObjectRef.from_manifest(manifest)


async def test_dry_run_apply_returns_defaulted_fields_and_writes_nothing(auditor: Cluster, ns: str) -> None:
    manifest = deployment("web", ns)
    result = await auditor.dry_run_apply(manifest)

    assert result["spec"]["replicas"] == 1  # defaulted by the API server
    assert result["spec"]["strategy"]["type"] == "RollingUpdate"
    assert result["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert [m["manager"] for m in result["metadata"]["managedFields"]] == [contract.FIELD_MANAGER]
    assert await auditor.get(ref_of(manifest)) is None


async def test_dry_run_into_a_missing_namespace_names_it(auditor: Cluster) -> None:
    missing = f"missing-{uuid.uuid4().hex[:6]}"
    with pytest.raises(NamespaceNotFoundError) as error:
        await auditor.dry_run_apply(config_map("cfg", missing))
    assert error.value.namespace == missing
    assert f"namespace {missing!r} does not exist" in str(error.value)
    assert "CreateNamespace=true" in str(error.value)
    assert isinstance(error.value, KubeError) and error.value.status == 404


async def test_a_namespaced_manifest_without_namespace_is_refused(auditor: Cluster) -> None:
    manifest = config_map("cfg", "")
    del manifest["metadata"]["namespace"]
    with pytest.raises(PermanentError, match="namespaced but names no namespace"):
        await auditor.dry_run_apply(manifest)


async def test_apply_creates_then_updates_as_the_driftwarden_manager(auditor: Cluster, ns: str) -> None:
    created = await auditor.apply(deployment("web", ns, replicas=2))
    updated = await auditor.apply(deployment("web", ns, replicas=3))

    assert updated["metadata"]["uid"] == created["metadata"]["uid"]
    assert (created["metadata"]["generation"], updated["metadata"]["generation"]) == (1, 2)
    live = await auditor.get(ref_of(deployment("web", ns)))
    assert live is not None and live["spec"]["replicas"] == 3
    # Besides driftwarden's apply, only the Deployment controller's status and revision writes.
    [entry] = [e for e in live["metadata"]["managedFields"] if e["manager"] != "kube-controller-manager"]
    assert (entry["manager"], entry["operation"]) == (contract.FIELD_MANAGER, "Apply")
    assert "f:replicas" in entry["fieldsV1"]["f:spec"]


async def test_apply_without_force_reports_the_conflicting_manager(
    auditor: Cluster, admin: Cluster, ns: str
) -> None:
    await auditor.apply(deployment("web", ns, replicas=2))
    await admin.apply(deployment("web", ns, replicas=5), field_manager="kubectl-edit")

    with pytest.raises(KubeError) as conflict:
        await auditor.apply(deployment("web", ns, replicas=2), force=False)
    assert conflict.value.status == 409
    assert not isinstance(conflict.value, KubeUnavailableError)
    assert "kubectl-edit" in str(conflict.value) and ".spec.replicas" in str(conflict.value)

    healed = await auditor.apply(deployment("web", ns, replicas=2))  # force: take the field back
    assert healed["spec"]["replicas"] == 2


async def test_a_cluster_scoped_object_loses_a_stray_namespace(auditor: Cluster, ns: str) -> None:
    name = f"{ns}-extra"
    applied = await auditor.apply({"apiVersion": "v1", "kind": "Namespace",
                                   "metadata": {"name": name, "namespace": ns}})  # fmt: skip
    assert applied["metadata"]["name"] == name and "namespace" not in applied["metadata"]
    assert await auditor.get(ObjectRef("", "v1", "Namespace", "", name)) is not None


async def test_an_invalid_object_is_a_4xx_with_the_api_server_message(auditor: Cluster, ns: str) -> None:
    broken = deployment("web", ns)
    del broken["spec"]["selector"]
    with pytest.raises(KubeError) as invalid:
        await auditor.dry_run_apply(broken)
    assert invalid.value.status == 422 and invalid.value.reason == "Invalid"
    assert "spec.selector" in str(invalid.value)
    assert not isinstance(invalid.value, KubeUnavailableError)


async def test_get_of_a_missing_object_is_none(auditor: Cluster, ns: str) -> None:
    assert await auditor.get(ObjectRef("apps", "v1", "Deployment", ns, "nothing-here")) is None


async def test_list_managed_keeps_only_what_the_tracking_id_says_the_app_owns(
    auditor: Cluster, admin: Cluster, ns: str
) -> None:
    app = AppKey(AUDITOR_NS, f"web-{uuid.uuid4().hex[:6]}")
    other = AppKey(AUDITOR_NS, "other-app")
    second_ns = f"{ns}-b"
    await admin.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": second_ns}})

    owned_here = stamp(config_map("owned", ns), app=app, guard_mode="enforce")
    owned_there = stamp(config_map("owned", second_ns), app=app, guard_mode="warn")
    owned_deploy = stamp(deployment("web", ns), app=app, guard_mode="enforce")
    owned_namespace = stamp({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"{ns}-c"}},
                            app=app, guard_mode="enforce")  # fmt: skip
    other_app = stamp(config_map("theirs", ns), app=other, guard_mode="enforce")
    other_app["metadata"]["labels"][contract.LABEL_APP] = app.name  # a copied label is not ownership
    label_only = config_map("label-only", ns)
    label_only["metadata"]["labels"] = {contract.LABEL_APP: app.name}
    copied = stamp(config_map("original", ns), app=app, guard_mode="enforce")
    copied["metadata"]["name"] = "copy"  # tracking-id names another object
    for manifest in (owned_here, owned_there, owned_deploy, owned_namespace, other_app, label_only, copied):
        await auditor.apply(manifest)

    found = await auditor.list_managed(
        app, kinds=[("", "ConfigMap"), ("apps", "Deployment"), ("", "Namespace"), ("", "ConfigMap")]
    )
    assert sorted(str(ObjectRef.from_manifest(o)) for o in found) == sorted(
        str(ref_of(m)) for m in (owned_here, owned_there, owned_deploy, owned_namespace)
    )
    assert {o["apiVersion"] for o in found} == {"v1", "apps/v1"}
    assert await auditor.list_managed(app, kinds=[("batch", "Job")]) == []


async def test_delete_in_the_background_removes_the_object(auditor: Cluster, ns: str) -> None:
    applied = await auditor.apply(config_map("gone", ns))
    ref = ref_of(applied | {"apiVersion": "v1", "kind": "ConfigMap"})

    with pytest.raises(KubeError) as stale:  # a uid precondition protects a re-created object
        await auditor.delete(ref, propagation="Background", uid=str(uuid.uuid4()))
    assert stale.value.status == 409
    assert await auditor.get(ref) is not None

    assert await auditor.delete(ref, propagation="Background", uid=applied["metadata"]["uid"]) is True
    assert await auditor.get(ref) is None
    assert await auditor.delete(ref, propagation="Background") is False  # already gone


async def test_delete_in_the_foreground_waits_for_dependents(
    auditor: Cluster, clients: Clients, ns: str
) -> None:
    await auditor.apply(deployment("web", ns))
    ref = ref_of(deployment("web", ns))
    apps = client.AppsV1Api(clients.admin)

    async def replica_set() -> str | None:
        sets = (await apps.list_namespaced_replica_set(ns)).items
        return sets[0].metadata.name if sets else None

    await eventually(lambda: _is_set(replica_set()), seconds=60)  # the Deployment controller made it
    name = await replica_set()
    assert name is not None
    # A finalizer of our own holds the dependent, so the owner's foreground deletion must wait for it.
    hold = {"metadata": {"finalizers": ["example.com/hold"]}}
    await apps.patch_namespaced_replica_set(name, ns, hold)
    assert await auditor.delete(ref) is True  # Foreground is the default

    live = await auditor.get(ref)
    assert live is not None and live["metadata"]["deletionTimestamp"]
    assert "foregroundDeletion" in live["metadata"]["finalizers"]

    await apps.patch_namespaced_replica_set(name, ns, [{"op": "remove", "path": "/metadata/finalizers"}])

    async def gone() -> bool:
        return await auditor.get(ref) is None and await replica_set() is None

    await eventually(gone, seconds=60)  # the garbage collector deleted the dependent, then the owner


async def _is_set(value: Awaitable[str | None]) -> bool:
    return await value is not None


async def test_wait_established_on_a_crd_that_never_comes_is_temporary(auditor: Cluster) -> None:
    started = time.monotonic()
    with pytest.raises(KubeUnavailableError, match=r"not Established after 0.5s \(not found\)"):
        await auditor.wait_established("nothings.example.com", timeout=0.5)
    assert time.monotonic() - started < 5


async def test_wait_established_reports_names_the_server_refused(admin: Cluster, auditor: Cluster) -> None:
    group = f"g{uuid.uuid4().hex[:8]}.example.com"

    def crd(plural: str, kind: str) -> dict[str, Any]:
        return {
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}"},
            "spec": {"group": group, "scope": "Namespaced", "names": {"kind": kind, "plural": plural},
                     "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                         "openAPIV3Schema": {"type": "object"}}}]},
        }  # fmt: skip

    await admin.apply(crd("widgets", "Widget"), field_manager="test")
    await auditor.wait_established(f"widgets.{group}", timeout=30)
    await admin.apply(crd("gizmos", "Widget"), field_manager="test")  # the same kind again
    with pytest.raises(KubeError, match="names were not accepted") as refused:
        await auditor.wait_established(f"gizmos.{group}", timeout=30)
    assert not isinstance(refused.value, KubeUnavailableError)


async def test_a_forbidden_request_is_a_permanent_looking_kube_error(clients: Clients, ns: str) -> None:
    stranger = Cluster(await clients.user("mallory"))
    with pytest.raises(KubeError) as forbidden:
        await stranger.get(ObjectRef("", "v1", "ConfigMap", ns, "x"))
    assert forbidden.value.status == 403 and forbidden.value.reason == "Forbidden"
    assert 'User "mallory" cannot get resource "configmaps"' in str(forbidden.value)
    assert not isinstance(forbidden.value, KubeUnavailableError)


async def test_an_unreachable_api_server_is_temporary(control_plane: ControlPlane) -> None:
    assert control_plane.admin is not None
    closed = dataclasses.replace(control_plane.admin, server=f"https://127.0.0.1:{free_port()}")
    async with api_client_for(closed) as api:
        with pytest.raises(KubeUnavailableError) as unavailable:
            await Cluster(api).get(ObjectRef("", "v1", "ConfigMap", "default", "x"))
    assert unavailable.value.status is None


async def test_a_server_that_never_answers_times_out_as_temporary(control_plane: ControlPlane) -> None:
    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accept the connection, never answer the TLS handshake
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    assert control_plane.admin is not None
    silent = dataclasses.replace(control_plane.admin, server=f"https://127.0.0.1:{port}")
    started = time.monotonic()
    try:
        async with api_client_for(silent) as api:
            with pytest.raises(KubeUnavailableError):
                await Cluster(api, request_timeout=0.5).mapper.refresh()
    finally:
        server.close()
    assert time.monotonic() - started < 5
