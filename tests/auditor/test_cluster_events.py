"""auditor.kube.events against the real API server: Events the auditor records, and their series.

Acts as the auditor's real service account, bound to manifests/rbac/auditor-clusterrole.yaml; reads
back through the core v1 Event API, as ``kubectl describe`` does.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client

from auditor.kube.cluster import Cluster
from auditor.kube.events import NOTE_LIMIT, EventRecorder
from devtools.controlplane import ControlPlane
from driftwarden import contract
from driftwarden.bounded import ELLIPSIS
from driftwarden.kube.client import api_client_for
from driftwarden.kube.rest import request_json
from driftwarden.objectref import ObjectRef
from tests.support.clients import Clients

pytestmark = pytest.mark.cluster

RBAC_FILE = Path(__file__).parents[2] / "manifests/rbac/auditor-clusterrole.yaml"


@pytest.fixture(scope="module")
async def admin(control_plane: ControlPlane) -> AsyncIterator[client.ApiClient]:
    """An admin client, with the auditor's ClusterRole + binding installed."""
    assert control_plane.admin is not None
    api = api_client_for(control_plane.admin)
    cluster = Cluster(api)
    for doc in yaml.safe_load_all(RBAC_FILE.read_text()):
        await cluster.apply(doc, field_manager="driftwarden-installer")
    yield api
    await api.close()


@pytest.fixture
async def auditor_api(admin: client.ApiClient, clients: Clients) -> client.ApiClient:
    api = await clients.service_account(contract.DEFAULT_INSTALL_NAMESPACE, contract.AUDITOR_SERVICE_ACCOUNT)
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"verb": "create", "group": "events.k8s.io", "resource": "events"}},
    }
    for _ in range(100):  # the RBAC authorizer's cache sees a new binding within moments
        reply = await request_json(api, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                                   body=review)  # fmt: skip
        if reply["status"].get("allowed"):
            return api
        await asyncio.sleep(0.05)
    raise AssertionError("the auditor's ClusterRoleBinding never took effect")


@pytest.fixture
async def ns(admin: client.ApiClient) -> str:
    name = f"events-{uuid.uuid4().hex[:8]}"
    await client.CoreV1Api(admin).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name))
    )
    return name


async def _events_about(admin: client.ApiClient, namespace: str, name: str) -> list[Any]:
    listing = await client.CoreV1Api(admin).list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={name}"
    )
    return list(listing.items)


async def test_an_event_about_an_object_shows_up_for_kubectl_describe(
    admin: client.ApiClient, auditor_api: client.ApiClient, ns: str
) -> None:
    cm = await Cluster(auditor_api).apply(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web", "namespace": ns}}
    )
    recorder = EventRecorder(auditor_api, instance="auditor-0")
    await recorder.record_event(
        cm,
        reason="DriftHealed",
        message="healed /data/color (changed by alice)",
        type="Warning",
        action="Heal",
    )

    [event] = await _events_about(admin, ns, "web")
    assert (event.reason, event.type, event.action) == ("DriftHealed", "Warning", "Heal")
    assert event.message == "healed /data/color (changed by alice)"
    assert event.involved_object.uid == cm["metadata"]["uid"]  # so `kubectl describe cm web` lists it
    assert (event.involved_object.kind, event.involved_object.api_version) == ("ConfigMap", "v1")
    assert event.reporting_component == "driftwarden-auditor"
    assert event.reporting_instance == "auditor-0"


async def test_repeats_count_as_a_series_on_one_event(
    admin: client.ApiClient, auditor_api: client.ApiClient, ns: str
) -> None:
    ticks = iter(datetime(2030, 1, 1, tzinfo=UTC) + timedelta(seconds=s) for s in range(100))
    recorder = EventRecorder(auditor_api, clock=lambda: next(ticks))
    ref = ObjectRef("apps", "v1", "Deployment", ns, "web")
    for _ in range(3):
        stored = await recorder.record_event(ref, reason="OutOfSync", message="/spec/replicas differs")
    assert stored["series"]["count"] == 3
    await recorder.record_event(ref, reason="OutOfSync", message="/spec/template differs")  # a new message

    events = await _events_about(admin, ns, "web")
    by_message = {e.message: e for e in events}
    assert set(by_message) == {"/spec/replicas differs", "/spec/template differs"}
    assert by_message["/spec/replicas differs"].series.count == 3
    assert by_message["/spec/template differs"].series is None


async def test_an_event_that_expired_is_started_again(
    admin: client.ApiClient, auditor_api: client.ApiClient, ns: str
) -> None:
    recorder = EventRecorder(auditor_api)
    ref = ObjectRef("", "v1", "ConfigMap", ns, "cfg")
    first = await recorder.record_event(ref, reason="Synced", message="applied")
    await client.CoreV1Api(admin).delete_namespaced_event(first["metadata"]["name"], ns)  # as the TTL would

    again = await recorder.record_event(ref, reason="Synced", message="applied")
    assert again["metadata"]["name"] != first["metadata"]["name"]
    assert [e.metadata.name for e in await _events_about(admin, ns, "cfg")] == [again["metadata"]["name"]]


async def test_events_about_cluster_scoped_objects_go_to_default(
    admin: client.ApiClient, auditor_api: client.ApiClient, ns: str
) -> None:
    name = f"{ns}-role"
    await EventRecorder(auditor_api).record_event(
        ObjectRef("rbac.authorization.k8s.io", "v1", "ClusterRole", "", name),
        reason="Pruned",
        message="pruned",
    )
    [event] = await _events_about(admin, "default", name)
    assert event.involved_object.kind == "ClusterRole" and event.reason == "Pruned"


async def test_long_messages_are_cut_to_the_api_limit(
    admin: client.ApiClient, auditor_api: client.ApiClient, ns: str
) -> None:
    message = "changed " + ", ".join(f"/data/key-{i}" for i in range(400))
    stored = await EventRecorder(auditor_api).record_event(
        ObjectRef("", "v1", "ConfigMap", ns, "big"), reason="DriftDetected", message=message
    )
    # Shortened in the middle (issue 16): the start and the end (where a reason is) both survive.
    head, marker, tail = stored["note"].partition(ELLIPSIS)
    assert len(stored["note"].encode()) <= NOTE_LIMIT and marker == ELLIPSIS
    assert message.startswith(head) and message.endswith(tail) and tail.endswith("/data/key-399")


async def test_event_type_must_be_normal_or_warning(auditor_api: client.ApiClient, ns: str) -> None:
    with pytest.raises(ValueError, match="Normal or Warning"):
        await EventRecorder(auditor_api).record_event(
            ObjectRef("", "v1", "ConfigMap", ns, "x"),
            reason="Synced",
            message="m",
            type="Error",  # type: ignore[arg-type]
        )
