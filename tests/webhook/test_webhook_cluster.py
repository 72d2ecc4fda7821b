"""The webhook in front of the real API server, called through real webhook configurations and caBundle.

People are client certificates ("alice"); the GitOps identity is the auditor's real service account.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from devtools.controlplane import ControlPlane
from driftwarden import contract
from driftwarden.kube.client import api_client_for
from tests.support.clients import Clients
from tests.support.guard import (
    AUDITOR_NS,
    Guard,
    apply,
    deployment,
    ensure_namespace,
    guard_for_people,
    managed,
    wait_for_guard,
)
from tests.support.waiting import eventually
from webhook.admission.decision import GARBAGE_COLLECTOR

pytestmark = pytest.mark.cluster

IMAGE_PATCH = {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.28"}]}}}}


@pytest.fixture(scope="module")
async def guard(
    control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Guard]:
    assert control_plane.admin is not None
    admin = api_client_for(control_plane.admin)
    async with guard_for_people(admin, tmp_path_factory.mktemp("guard"), people=["alice", "bob"]) as running:
        yield running
    await admin.close()


@pytest.fixture
async def world(guard: Guard, clients: Clients) -> dict[str, Any]:
    """A fresh namespace with a Git-managed Deployment (enforce) and one in warn mode."""
    ns = f"wh-{uuid.uuid4().hex[:8]}"
    await ensure_namespace(clients.admin, ns)
    auditor = await clients.service_account(AUDITOR_NS, "driftwarden-auditor")
    await apply(auditor, managed(deployment("web", ns)), plural="deployments")
    await apply(auditor, managed(deployment("relaxed", ns), guard="warn"), plural="deployments")
    alice = await clients.user("alice")
    apps = client.AppsV1Api(alice)
    await wait_for_guard(lambda: apps.patch_namespaced_deployment("web", ns, IMAGE_PATCH, dry_run="All"))
    return {"ns": ns, "alice": alice, "auditor": auditor}


def _message(exc: ApiException) -> str:
    return str(json.loads(exc.body)["message"])


async def test_alice_changing_a_git_owned_field_is_denied_with_a_useful_message(
    world: dict[str, Any],
) -> None:
    apps = client.AppsV1Api(world["alice"])
    with pytest.raises(ApiException) as denied:
        await apps.patch_namespaced_deployment("web", world["ns"], IMAGE_PATCH)
    assert denied.value.status == 403
    message = _message(denied.value)
    assert f"{world['ns']}/web" in message  # the object
    assert "image" in message and "containers" in message  # the field
    assert f"{AUDITOR_NS}/web-app" in message  # the Application to change in Git
    stored = await apps.read_namespaced_deployment("web", world["ns"])
    assert stored.spec.template.spec.containers[0].image == "nginx:1.27"


async def test_alice_adding_an_annotation_nobody_owns_is_allowed(world: dict[str, Any], guard: Guard) -> None:
    apps = client.AppsV1Api(world["alice"])
    before = len(guard.reviews())
    patch = {"metadata": {"annotations": {"example.com/note": "looked at it"}}}
    result = await apps.patch_namespaced_deployment("web", world["ns"], patch)
    assert result.metadata.annotations["example.com/note"] == "looked at it"
    assert len(guard.reviews()) > before  # the webhook did see it, and allowed it


async def test_alice_deleting_a_managed_deployment_is_denied(world: dict[str, Any]) -> None:
    apps = client.AppsV1Api(world["alice"])
    with pytest.raises(ApiException) as denied:
        await apps.delete_namespaced_deployment("web", world["ns"])
    assert denied.value.status == 403
    assert "web" in _message(denied.value)
    assert (await apps.read_namespaced_deployment("web", world["ns"])).metadata.deletion_timestamp is None


async def test_alice_creating_an_object_with_a_forged_tracking_marker_is_denied(
    world: dict[str, Any],
) -> None:
    core = client.CoreV1Api(world["alice"])
    forged = managed(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "forged", "namespace": world["ns"]},
            "data": {"a": "b"},
        }
    )
    with pytest.raises(ApiException) as denied:
        await core.create_namespaced_config_map(world["ns"], forged)
    assert denied.value.status == 403
    with pytest.raises(ApiException) as missing:
        await core.read_namespaced_config_map("forged", world["ns"])
    assert missing.value.status == 404


async def _kubectl(plane: ControlPlane, kubeconfig: Path, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        str(plane.binaries.kubectl),
        "--kubeconfig",
        str(kubeconfig),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_kubectl_scale_of_git_owned_replicas_is_denied(
    world: dict[str, Any], clients: Clients, control_plane: ControlPlane
) -> None:
    alice = await clients.user_credentials("alice")
    assert alice.kubeconfig is not None
    code, _, err = await _kubectl(
        control_plane, alice.kubeconfig, "-n", world["ns"], "scale", "deploy/web", "--replicas=5"
    )
    assert code != 0
    assert "denied" in err and "replicas" in err
    stored = await client.AppsV1Api(clients.admin).read_namespaced_deployment("web", world["ns"])
    assert stored.spec.replicas == 2


async def test_the_auditor_identity_may_change_everything(world: dict[str, Any]) -> None:
    ns, auditor = world["ns"], world["auditor"]
    updated = await apply(
        auditor, managed(deployment("web", ns, image="nginx:1.29", replicas=4)), plural="deployments"
    )
    assert updated["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.29"
    scale = client.V1Scale(
        metadata=client.V1ObjectMeta(name="web", namespace=ns), spec=client.V1ScaleSpec(replicas=3)
    )
    await client.AppsV1Api(auditor).replace_namespaced_deployment_scale("web", ns, scale)
    await client.AppsV1Api(auditor).delete_namespaced_deployment("web", ns)


async def test_warn_mode_lets_the_edit_through_with_a_warning_and_a_drift_stamp(
    world: dict[str, Any], clients: Clients, control_plane: ControlPlane
) -> None:
    alice = await clients.user_credentials("alice")
    assert alice.kubeconfig is not None
    patch = json.dumps(IMAGE_PATCH)
    code, _, err = await _kubectl(
        control_plane, alice.kubeconfig, "-n", world["ns"], "patch", "deploy/relaxed", "-p", patch
    )
    assert code == 0, err
    assert "Warning: driftwarden" in err  # kubectl shows the admission warnings to the person
    stored = await client.AppsV1Api(clients.admin).read_namespaced_deployment("relaxed", world["ns"])
    assert stored.spec.template.spec.containers[0].image == "nginx:1.28"
    drift = json.loads(stored.metadata.annotations[contract.ANNOTATION_DRIFT])
    assert drift["user"] == "alice"
    assert any("image" in f for f in drift["fields"])
    assert len(drift["traceparent"].split("-")) == 4
    assert drift["at"].endswith("Z")


async def test_warn_mode_delete_is_allowed_with_a_warning(
    world: dict[str, Any], clients: Clients, control_plane: ControlPlane
) -> None:
    alice = await clients.user_credentials("alice")
    assert alice.kubeconfig is not None
    code, _, err = await _kubectl(
        control_plane, alice.kubeconfig, "-n", world["ns"], "delete", "deploy/relaxed"
    )
    assert code == 0, err
    assert "Warning: driftwarden" in err


async def test_breakglass_group_is_allowed_with_a_warning(
    world: dict[str, Any], clients: Clients, control_plane: ControlPlane
) -> None:
    bob = await clients.user_credentials("bob", groups=("sre-breakglass",))
    assert bob.kubeconfig is not None
    code, _, err = await _kubectl(
        control_plane, bob.kubeconfig, "-n", world["ns"], "patch", "deploy/web", "-p", json.dumps(IMAGE_PATCH)
    )
    assert code == 0, err
    assert "break-glass" in err


async def test_unlabelled_objects_never_reach_the_webhook(world: dict[str, Any], guard: Guard) -> None:
    core = client.CoreV1Api(world["alice"])
    ns = world["ns"]
    before = len(guard.reviews())
    await core.create_namespaced_config_map(ns, {"metadata": {"name": "plain"}, "data": {"a": "1"}})
    await core.patch_namespaced_config_map("plain", ns, {"data": {"a": "2"}})
    pod = {"metadata": {"name": "plain"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    await core.create_namespaced_pod(ns, pod)
    await core.patch_namespaced_pod("plain", ns, {"metadata": {"labels": {"x": "y"}}})
    await core.delete_namespaced_config_map("plain", ns)
    assert len(guard.reviews()) == before


async def test_dry_run_edits_are_decided_the_same_way_and_change_nothing(
    world: dict[str, Any], clients: Clients, control_plane: ControlPlane
) -> None:
    alice = await clients.user_credentials("alice")
    assert alice.kubeconfig is not None
    patch = json.dumps(IMAGE_PATCH)
    ns = world["ns"]
    code, _, err = await _kubectl(
        control_plane, alice.kubeconfig, "-n", ns, "patch", "deploy/web", "-p", patch, "--dry-run=server"
    )
    assert code != 0 and "denied" in err
    code, _, err = await _kubectl(
        control_plane, alice.kubeconfig, "-n", ns, "patch", "deploy/relaxed", "-p", patch, "--dry-run=server"
    )
    assert code == 0 and "Warning: driftwarden" in err
    stored = await client.AppsV1Api(clients.admin).read_namespaced_deployment("relaxed", ns)
    assert stored.spec.template.spec.containers[0].image == "nginx:1.27"
    assert contract.ANNOTATION_DRIFT not in (stored.metadata.annotations or {})


async def test_the_garbage_collector_may_not_delete_an_object_through_an_owner_git_did_not_set(
    world: dict[str, Any], clients: Clients, guard: Guard
) -> None:
    """Issue 13: an owner added to a managed object (here by break-glass) must not become a way to
    delete it; the garbage collector may delete only objects whose every owner Git set."""
    ns = world["ns"]
    core = client.CoreV1Api(clients.admin)
    bait = await core.create_namespaced_config_map(
        ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="bait"))
    )
    bob = await clients.user("bob", groups=("sre-breakglass",))
    owner = {"apiVersion": "v1", "kind": "ConfigMap", "name": "bait", "uid": bait.metadata.uid}
    await client.AppsV1Api(bob).patch_namespaced_deployment(
        "web", ns, {"metadata": {"ownerReferences": [owner]}}
    )
    await core.delete_namespaced_config_map("bait", ns)

    async def denied() -> bool:
        return any(
            (s.attributes or {}).get("enduser.id") == GARBAGE_COLLECTOR
            and (s.attributes or {}).get("k8s.admission.operation") == "DELETE"
            and (s.attributes or {}).get("k8s.resource.name") == "web"
            and (s.attributes or {}).get("driftwarden.decision") == "denied"
            for s in guard.reviews()
        )

    await eventually(denied, seconds=30)
    stored = await client.AppsV1Api(clients.admin).read_namespaced_deployment("web", ns)
    assert stored.metadata.deletion_timestamp is None
