"""Smoke tests that prove the control plane is real: a real kube-apiserver stores, defaults and denies."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from devtools.controlplane import ControlPlane
from tests.support.clients import Clients

pytestmark = pytest.mark.cluster

APPLY = "application/apply-patch+yaml"


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def test_namespace_and_configmap_round_trip(clients: Clients) -> None:
    core = client.CoreV1Api(clients.admin)
    ns = _name("smoke")
    await core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="settings"), data={"color": "blue"})
    await core.create_namespaced_config_map(ns, body)

    stored = await core.read_namespaced_config_map("settings", ns)
    assert stored.data == {"color": "blue"}
    assert stored.metadata.uid  # assigned by the API server, so it really was stored
    assert stored.metadata.resource_version


async def test_server_side_apply_dry_run_returns_defaults_and_stores_nothing(clients: Clients) -> None:
    core, apps = client.CoreV1Api(clients.admin), client.AppsV1Api(clients.admin)
    ns = _name("ssa")
    await core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    manifest = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
            },
        },
    }
    result = await apps.patch_namespaced_deployment(
        "web", ns, manifest, dry_run="All", field_manager="driftwarden", force=True, _content_type=APPLY
    )

    # Fields nobody wrote, filled in by the API server's defaulting:
    assert result.spec.replicas == 1
    assert result.spec.revision_history_limit == 10
    assert result.spec.strategy.type == "RollingUpdate"
    container = result.spec.template.spec.containers[0]
    assert container.termination_message_path == "/dev/termination-log"
    assert container.image_pull_policy == "IfNotPresent"
    assert [m.manager for m in result.metadata.managed_fields] == ["driftwarden"]
    with pytest.raises(ApiException) as missing:
        await apps.read_namespaced_deployment("web", ns)
    assert missing.value.status == 404


async def test_user_without_rbac_is_forbidden_until_granted(clients: Clients) -> None:
    admin_core = client.CoreV1Api(clients.admin)
    ns = _name("rbac")
    await admin_core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    await admin_core.create_namespaced_config_map(
        ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="visible"), data={"k": "v"})
    )
    # A name no other test grants anything (other tests make "alice" a cluster-admin for the session).
    user = _name("reader")
    alice = client.CoreV1Api(await clients.user(user))

    with pytest.raises(ApiException) as denied:
        await alice.list_namespaced_config_map(ns)
    assert denied.value.status == 403
    assert f'User "{user}" cannot list resource "configmaps"' in json.loads(denied.value.body)["message"]

    rbac = client.RbacAuthorizationV1Api(clients.admin)
    await rbac.create_namespaced_role(
        ns,
        client.V1Role(
            metadata=client.V1ObjectMeta(name="read-cm"),
            rules=[client.V1PolicyRule(api_groups=[""], resources=["configmaps"], verbs=["list"])],
        ),
    )
    await rbac.create_namespaced_role_binding(
        ns,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="alice-read-cm"),
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name="read-cm"),
            subjects=[client.RbacV1Subject(kind="User", name=user, api_group="rbac.authorization.k8s.io")],
        ),
    )
    listed = await alice.list_namespaced_config_map(ns)
    assert "visible" in [cm.metadata.name for cm in listed.items]


@pytest.mark.parametrize(
    ("user", "groups"),
    [("alice", ()), ("bob", ("sre-breakglass", "dev"))],
)
async def test_client_certificate_users_are_who_they_say(
    clients: Clients, user: str, groups: tuple[str, ...]
) -> None:
    auth = client.AuthenticationV1Api(await clients.user(user, groups=groups))
    review = await auth.create_self_subject_review(client.V1SelfSubjectReview())
    assert review.status.user_info.username == user
    assert set(groups) <= set(review.status.user_info.groups)
    assert "system:authenticated" in review.status.user_info.groups


async def test_service_account_token_is_the_service_account(clients: Clients) -> None:
    api = await clients.service_account("driftwarden-system", "driftwarden-auditor")
    review = await client.AuthenticationV1Api(api).create_self_subject_review(client.V1SelfSubjectReview())
    info = review.status.user_info
    assert info.username == "system:serviceaccount:driftwarden-system:driftwarden-auditor"
    assert "system:serviceaccounts:driftwarden-system" in info.groups


async def test_kubectl_with_admin_kubeconfig_lists_namespaces(control_plane: ControlPlane) -> None:
    assert control_plane.admin is not None and control_plane.admin.kubeconfig is not None
    proc = await asyncio.create_subprocess_exec(
        str(control_plane.binaries.kubectl),
        "--kubeconfig",
        str(control_plane.admin.kubeconfig),
        "get",
        "ns",
        "-o",
        "name",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    names = out.decode().split()
    assert "namespace/default" in names
    assert "namespace/kube-system" in names
