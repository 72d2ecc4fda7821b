"""The REST mapper against the real API server's discovery, as the auditor's real service account."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from typing import Any

import pytest
from kubernetes_asyncio import client

from auditor.kube.cluster import Cluster
from auditor.kube.discovery import RestMapper, UnknownKindError
from auditor.objects import fill_namespace
from devtools.controlplane import ControlPlane
from devtools.controlplane.plane import free_port
from driftwarden import contract
from driftwarden.errors import KubeUnavailableError
from driftwarden.kube.client import api_client_for
from tests.support.clients import Clients

pytestmark = pytest.mark.cluster


@pytest.fixture
async def auditor(admin: Cluster, clients: Clients) -> client.ApiClient:
    return await clients.service_account(contract.DEFAULT_INSTALL_NAMESPACE, contract.AUDITOR_SERVICE_ACCOUNT)


def widget_crd(group: str, *, scope: str = "Namespaced") -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": scope,
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}],
        },
    }  # fmt: skip


@pytest.mark.parametrize(
    "expected",
    [
        ("apps", "Deployment", "apps/v1", "deployments", True),
        ("", "ConfigMap", "v1", "configmaps", True),
        ("", "Namespace", "v1", "namespaces", False),
        ("rbac.authorization.k8s.io", "ClusterRole", "rbac.authorization.k8s.io/v1", "clusterroles", False),
        ("autoscaling", "HorizontalPodAutoscaler", "autoscaling/v2", "horizontalpodautoscalers", True),
        (contract.GROUP, contract.APPLICATION_KIND, contract.API_VERSION, contract.APPLICATION_PLURAL, True),
    ],
)
async def test_maps_built_in_kinds_and_the_application_crd(
    auditor: client.ApiClient, expected: tuple[str, str, str, str, bool]
) -> None:
    group, kind, api_version, plural, namespaced = expected
    found = await RestMapper(auditor).resource_for(group, kind)
    assert (found.api_version, found.plural, found.namespaced) == (api_version, plural, namespaced)
    assert "patch" in found.verbs


async def test_an_explicit_older_version_is_mapped_and_an_unserved_one_is_not(
    auditor: client.ApiClient,
) -> None:
    mapper = RestMapper(auditor)
    older = await mapper.resource_for("autoscaling", "HorizontalPodAutoscaler", version="v1")
    assert older.api_version == "autoscaling/v1"
    with pytest.raises(UnknownKindError) as unknown:
        await mapper.resource_for("apps", "Deployment", version="v1beta1")
    assert unknown.value.status == 404 and "Deployment" in str(unknown.value)


async def test_is_cluster_scoped_feeds_fill_namespace(auditor: client.ApiClient) -> None:
    mapper = RestMapper(auditor)
    await mapper.refresh()
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "r", "namespace": "stray"}}  # fmt: skip
    assert (
        fill_namespace(cm, "prod", cluster_scoped=mapper.is_cluster_scoped)["metadata"]["namespace"] == "prod"
    )
    assert (
        "namespace" not in fill_namespace(role, "prod", cluster_scoped=mapper.is_cluster_scoped)["metadata"]
    )


async def test_unknown_kind_raises_a_kube_error_naming_it(auditor: client.ApiClient) -> None:
    with pytest.raises(UnknownKindError) as unknown:
        await RestMapper(auditor).resource_for("example.com", "Gadget")
    assert unknown.value.reason == "UnknownKind"
    assert "Gadget" in str(unknown.value) and "CRD" in str(unknown.value)


async def test_a_crd_created_later_is_found_after_a_refresh(
    admin: Cluster, auditor: client.ApiClient
) -> None:
    group = f"g{uuid.uuid4().hex[:8]}.example.com"
    now = [time.monotonic()]
    mapper = RestMapper(auditor, min_refresh_interval=60, clock=lambda: now[0])
    await mapper.refresh()
    await admin.apply(widget_crd(group, scope="Cluster"), field_manager="test")
    await admin.wait_established(f"widgets.{group}", timeout=30)

    with pytest.raises(UnknownKindError):  # cached: the miss does not re-read discovery within a minute
        await mapper.resource_for(group, "Widget")
    now[0] += 61  # once the interval has passed, a miss refreshes by itself
    found = await mapper.resource_for(group, "Widget")
    assert (found.api_version, found.plural, found.namespaced) == (f"{group}/v1", "widgets", False)
    assert mapper.is_cluster_scoped(group, "Widget") is True


async def test_refresh_finds_a_new_crd_at_once(admin: Cluster, auditor: client.ApiClient) -> None:
    group = f"g{uuid.uuid4().hex[:8]}.example.com"
    mapper = RestMapper(auditor, min_refresh_interval=3600)
    await mapper.refresh()
    await admin.apply(widget_crd(group), field_manager="test")
    await admin.wait_established(f"widgets.{group}", timeout=30)
    with pytest.raises(UnknownKindError):
        await mapper.resource_for(group, "Widget")

    await mapper.refresh()
    found = await mapper.resource_for(group, "Widget")
    assert found.namespaced is True
    assert mapper.table is not None and f"{group}/v1" in mapper.table.group_versions()


async def test_unreachable_api_server_is_temporary(control_plane: ControlPlane) -> None:
    assert control_plane.admin is not None
    closed = dataclasses.replace(control_plane.admin, server=f"https://127.0.0.1:{free_port()}")
    async with api_client_for(closed) as api:
        with pytest.raises(KubeUnavailableError) as unavailable:
            await RestMapper(api, request_timeout=5).refresh()
    assert "unreachable" in str(unavailable.value)


async def test_concurrent_refreshes_share_one_discovery(auditor: client.ApiClient) -> None:
    mapper = RestMapper(auditor)
    first, second = await asyncio.gather(mapper.refresh(), mapper.refresh())
    assert first is second is mapper.table
    third = await mapper.refresh()  # a later refresh reads discovery again
    assert third is not first and third.resources == first.resources
