"""The whole drift story on the real control plane: a warn-mode edit is flagged, healed and linked.

The webhook (real configurations, real caBundle) lets alice's edit through with a warning and stamps
``driftwarden.io/drift``; the auditor's watch heals it, removes the stamp, records who did what, emits
Events on the Application and the object, and its ``auditor.heal`` span links to the admission span.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from auditor.heal.healer import Healer
from devtools.controlplane import ControlPlane
from driftwarden import contract
from driftwarden.kube.client import api_client_for
from driftwarden.kube.rest import request_json
from tests.support.auditor import (
    AUDITOR_NS,
    application,
    auditor_api,
    create_application,
    get_application,
    running_auditor,
)
from tests.support.clients import Clients
from tests.support.gitrepo import GitRepo
from tests.support.guard import ensure_namespace, grant_cluster_admin, running_guard
from tests.support.kubectl import kubectl
from tests.support.seed import SELF_HEALING, WEB_DEPLOYMENT
from tests.support.waiting import eventually

pytestmark = pytest.mark.cluster


async def _events(admin: client.ApiClient, ns: str) -> list[dict[str, Any]]:
    listed = await request_json(admin, "GET", f"/apis/events.k8s.io/v1/namespaces/{ns}/events")
    return list(listed.get("items") or [])


@dataclasses.dataclass
class Auditor:
    admin: client.ApiClient
    healer: Healer
    spans: InMemorySpanExporter


@pytest.fixture
async def auditor(control_plane: ControlPlane, clients: Clients, tmp_path: Path) -> AsyncIterator[Auditor]:
    """The auditor loop with its healer, tracing into memory, acting as its real service account."""
    assert control_plane.admin is not None
    admin = api_client_for(control_plane.admin)
    await ensure_namespace(admin, AUDITOR_NS)
    await grant_cluster_admin(admin, users=["alice"])
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    tracer = provider.get_tracer("auditor")
    api = await auditor_api(control_plane, clients, tracer=tracer)
    async with running_auditor(control_plane, api, tmp_path / "git", tracer=tracer) as run:
        yield Auditor(admin, run.healer, spans)
    await admin.close()


async def test_a_warn_mode_edit_is_flagged_healed_recorded_and_linked(
    auditor: Auditor, control_plane: ControlPlane, clients: Clients, tmp_path: Path,
    git_repo: Callable[..., GitRepo],
) -> None:  # fmt: skip
    admin, healer, spans = auditor.admin, auditor.healer, auditor.spans
    repo = git_repo({"web/deployment.yaml": WEB_DEPLOYMENT})
    name, ns = f"story-{uuid.uuid4().hex[:6]}", f"story-{uuid.uuid4().hex[:6]}"
    body = application(name, repo_url=repo.url, path="web", namespace=ns, syncPolicy=SELF_HEALING,
                       guard={"mode": "warn"})  # fmt: skip
    apps = client.AppsV1Api(admin)

    async def image() -> str:
        return str((await apps.read_namespaced_deployment("web", ns)).spec.template.spec.containers[0].image)

    async with running_guard(admin, tmp_path / "guard") as guard:
        await create_application(clients.admin, body)

        async def synced() -> bool:
            status = (await get_application(clients.admin, name)).get("status") or {}
            return (
                status.get("sync", {}).get("status") == "Synced" and ("apps", "Deployment") in healer._watches
            )

        await eventually(synced)
        await asyncio.sleep(0.5)  # the Deployment watch has listed
        alice = await clients.user_credentials("alice")
        assert alice.kubeconfig is not None
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:9.9"}]}}}}
        code, _, err = await kubectl(control_plane, alice.kubeconfig, "-n", ns, "patch", "deploy/web",
                                   "-p", json.dumps(patch))  # fmt: skip
        assert code == 0, err
        assert "Warning: driftwarden" in err

        async def healed() -> bool:
            live = await apps.read_namespaced_deployment("web", ns)
            annotations = live.metadata.annotations or {}
            return await image() == "nginx:1.27" and contract.ANNOTATION_DRIFT not in annotations

        await eventually(healed, seconds=10)
        flagged = [s for s in guard.reviews() if (s.attributes or {}).get("driftwarden.violation")]

    async def recorded() -> bool:  # the record is written just after the heal itself
        return bool(((await get_application(clients.admin, name)).get("status") or {}).get("drift"))

    await eventually(recorded, seconds=10)
    record = (await get_application(clients.admin, name))["status"]["drift"][-1]
    assert (record["user"], record["action"]) == ("alice", "healed")
    assert any("image" in f for f in record["fields"])

    events = await _events(admin, AUDITOR_NS) + await _events(admin, ns)
    reasons = {
        (e["reason"], e["regarding"]["kind"]) for e in events if e["regarding"].get("name") in (name, "web")
    }
    assert {
        ("DriftDetected", "Application"),
        ("SelfHealed", "Application"),
        ("SelfHealed", "Deployment"),
    } <= reasons

    (admission,) = [s for s in flagged if s.attributes and s.attributes.get("k8s.resource.name") == "web"
                    and s.attributes.get("driftwarden.endpoint") == "mutate"]  # fmt: skip
    heals = [s for s in spans.get_finished_spans() if s.name == "auditor.heal"]
    linked = [h for h in heals for link in h.links
              if link.context.trace_id == admission.context.trace_id
              and link.context.span_id == admission.context.span_id]  # fmt: skip
    assert linked, "the heal span does not link to the admission span that flagged the edit"
    # The heal is a trace of its own (a root span), not a child of the pass that started the watch.
    assert all(h.parent is None for h in linked), [h.parent for h in linked]
    # Its API requests are its children: the apply, the stamp's removal, and the record of the heal.
    (heal,) = linked
    assert heal.context is not None
    heal_id = heal.context.span_id
    calls = [s.name for s in spans.get_finished_spans() if s.parent and s.parent.span_id == heal_id]
    assert {
        "PATCH /apis/apps/v1/namespaces/{namespace}/deployments/{name}",
        "POST /apis/events.k8s.io/v1/namespaces/{namespace}/events",
    } <= set(calls), calls
