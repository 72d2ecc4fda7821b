"""The local control plane is a living cluster: controllers, scheduler and kwok nodes act on objects.

Each test makes a change as a real client and waits, within a bound, for the effect a real cluster shows:
Pods scheduled and Ready (kwok plays the kubelet; no container runs), a Job completed, a Namespace gone,
dependents garbage-collected, and the aggregated ``edit`` role giving a user its rights.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from devtools.controlplane import ControlPlane
from tests.support.clients import Clients
from tests.support.guard import deployment, ensure_namespace
from tests.support.waiting import eventually

pytestmark = pytest.mark.cluster


def _ns() -> str:
    return f"living-{uuid.uuid4().hex[:8]}"


async def _absent(read: Awaitable[object]) -> bool:
    try:
        await read
    except ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return False


async def test_every_node_is_ready_and_schedulable(clients: Clients, control_plane: ControlPlane) -> None:
    nodes = await client.CoreV1Api(clients.admin).list_node()
    by_name = {n.metadata.name: n for n in nodes.items}
    assert set(control_plane.node_names) <= set(by_name)
    for name in control_plane.node_names:
        node = by_name[name]
        assert [c.status for c in node.status.conditions if c.type == "Ready"] == ["True"]
        assert not [t for t in node.spec.taints or [] if t.key == "node.kubernetes.io/not-ready"]


async def test_a_deployment_gets_ready_pods_on_kwok_nodes(
    clients: Clients, control_plane: ControlPlane
) -> None:
    ns = _ns()
    await ensure_namespace(clients.admin, ns)
    apps, core = client.AppsV1Api(clients.admin), client.CoreV1Api(clients.admin)
    await apps.create_namespaced_deployment(ns, deployment("web", ns, replicas=2))

    async def available() -> bool:
        status = (await apps.read_namespaced_deployment_status("web", ns)).status
        return status.available_replicas == 2 and status.updated_replicas == 2

    await eventually(available, seconds=60)
    pods = (await core.list_namespaced_pod(ns, label_selector="app=web")).items
    assert len(pods) == 2
    assert {p.spec.node_name for p in pods} <= set(control_plane.node_names)
    assert all(p.status.phase == "Running" and p.status.pod_ip for p in pods)
    owners = {ref.kind for p in pods for ref in p.metadata.owner_references}
    assert owners == {"ReplicaSet"}  # made by the ReplicaSet controller, not by hand


async def test_a_job_runs_to_completion(clients: Clients) -> None:
    ns = _ns()
    await ensure_namespace(clients.admin, ns)
    batch = client.BatchV1Api(clients.admin)
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "migrate", "namespace": ns},
        "spec": {
            "template": {
                "spec": {"restartPolicy": "Never", "containers": [{"name": "m", "image": "busybox:1.36"}]}
            }
        },
    }
    await batch.create_namespaced_job(ns, job)

    async def complete() -> bool:
        status = (await batch.read_namespaced_job_status("migrate", ns)).status
        return status.succeeded == 1 and any(
            c.type == "Complete" and c.status == "True" for c in status.conditions or []
        )

    await eventually(complete, seconds=60)


async def test_a_job_whose_pod_is_labelled_to_fail_fails(clients: Clients) -> None:
    """kwok fails the Pod by the project's Stage (tools/kwok/stages/), the Job controller the Job."""
    ns = _ns()
    await ensure_namespace(clients.admin, ns)
    batch = client.BatchV1Api(clients.admin)
    pod_spec = {"restartPolicy": "Never", "containers": [{"name": "m", "image": "busybox:1.36"}]}
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "broken", "namespace": ns},
        "spec": {
            "backoffLimit": 0,
            "template": {"metadata": {"labels": {"driftwarden.io/kwok-fail": "true"}}, "spec": pod_spec},
        },
    }
    await batch.create_namespaced_job(ns, job)

    async def failed() -> bool:
        status = (await batch.read_namespaced_job_status("broken", ns)).status
        return status.failed == 1 and any(
            c.type == "Failed" and c.status == "True" for c in status.conditions or []
        )

    await eventually(failed, seconds=60)
    (pod,) = (await client.CoreV1Api(clients.admin).list_namespaced_pod(ns)).items
    assert pod.status.phase == "Failed"
    assert pod.status.container_statuses[0].state.terminated.exit_code == 1


async def test_deleting_a_namespace_finishes(clients: Clients) -> None:
    ns = _ns()
    core = client.CoreV1Api(clients.admin)
    await ensure_namespace(clients.admin, ns)
    await core.create_namespaced_config_map(ns, {"metadata": {"name": "left-behind"}, "data": {"a": "1"}})
    await core.delete_namespace(ns)

    async def gone() -> bool:
        return await _absent(core.read_namespace(ns))

    await eventually(gone, seconds=60)  # the namespace controller emptied it and removed its finalizer


async def test_the_garbage_collector_deletes_an_owned_object_with_its_owner(clients: Clients) -> None:
    ns = _ns()
    core = client.CoreV1Api(clients.admin)
    await ensure_namespace(clients.admin, ns)
    owner = await core.create_namespaced_config_map(ns, {"metadata": {"name": "owner"}})
    reference = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
    await core.create_namespaced_config_map(
        ns, {"metadata": {"name": "dependent", "ownerReferences": [reference]}, "data": {"a": "1"}}
    )
    await core.delete_namespaced_config_map("owner", ns)

    async def collected() -> bool:
        return await _absent(core.read_namespaced_config_map("dependent", ns))

    await eventually(collected, seconds=60)


async def test_a_user_bound_to_the_edit_role_can_edit(clients: Clients) -> None:
    ns = _ns()
    await ensure_namespace(clients.admin, ns)
    name = f"editor-{uuid.uuid4().hex[:6]}"
    editor = client.AppsV1Api(await clients.user(name))
    with pytest.raises(ApiException) as refused:
        await editor.create_namespaced_deployment(ns, deployment("web", ns))
    assert refused.value.status == 403

    binding = {
        "metadata": {"name": f"{name}-edit"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name}],
    }
    await client.RbacAuthorizationV1Api(clients.admin).create_namespaced_role_binding(ns, binding)

    async def created() -> bool:  # the authorizer's cache sees the new binding a moment later
        try:
            await editor.create_namespaced_deployment(ns, deployment("web", ns))
        except ApiException as exc:
            if exc.status == 403:
                return False
            raise
        return True

    await eventually(created, seconds=30)
    patched = await editor.patch_namespaced_deployment("web", ns, {"spec": {"replicas": 3}})
    assert patched.spec.replicas == 3
