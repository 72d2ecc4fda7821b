"""One trace story in a real Jaeger: who edited, what the webhook flagged, and the heal that undid it.

The webhook and the auditor export over OTLP (configured only by OTEL_* settings) to Jaeger built from
source; the test reads both traces back from Jaeger's query API and follows the heal span's link
(a FOLLOWS_FROM reference in Jaeger's JSON) to the admission span that flagged the edit.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client

from devtools.controlplane import ControlPlane
from devtools.jaeger import Jaeger
from driftwarden.kube.client import api_client_for
from driftwarden.telemetry.setup import tracer_provider
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
from tests.support.jaeger import (
    jaeger_fixture,
    service_of,
    spans_named,
    tags,
    wait_for_trace,
    wait_for_traces,
)
from tests.support.kubectl import kubectl
from tests.support.seed import SELF_HEALING, WEB_DEPLOYMENT
from tests.support.waiting import eventually

pytestmark = pytest.mark.cluster
_ = jaeger_fixture  # the session's Jaeger, as the ``jaeger`` fixture


def _links(span: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in span.get("references") or [] if r["refType"] == "FOLLOWS_FROM"]


async def test_the_heal_trace_links_to_the_admission_trace_in_jaeger(
    jaeger: Jaeger, control_plane: ControlPlane, clients: Clients, tmp_path: Path,
    git_repo: Callable[..., GitRepo],
) -> None:  # fmt: skip
    assert control_plane.admin is not None
    admin = api_client_for(control_plane.admin)
    await ensure_namespace(admin, AUDITOR_NS)
    await grant_cluster_admin(admin, users=["alice"])
    env = jaeger.otel_env()
    webhook_traces = tracer_provider("driftwarden-webhook", env=env)
    auditor_traces = tracer_provider("driftwarden-auditor", env=env)
    api = await auditor_api(control_plane, clients, tracer=auditor_traces.get_tracer("auditor"))
    repo = git_repo({"web/deployment.yaml": WEB_DEPLOYMENT})
    name, ns = f"jaeger-{uuid.uuid4().hex[:6]}", f"jaeger-{uuid.uuid4().hex[:6]}"
    apps = client.AppsV1Api(admin)

    async with (
        running_auditor(
            control_plane, api, tmp_path / "git", tracer=auditor_traces.get_tracer("auditor")
        ) as run,
        running_guard(admin, tmp_path / "guard", provider=webhook_traces),
    ):
        await create_application(
            clients.admin,
            application(
                name,
                repo_url=repo.url,
                path="web",
                namespace=ns,
                syncPolicy=SELF_HEALING,
                guard={"mode": "warn"},
            ),
        )

        async def synced() -> bool:
            status = (await get_application(clients.admin, name)).get("status") or {}
            return (
                status.get("sync", {}).get("status") == "Synced"
                and ("apps", "Deployment") in run.healer._watches
            )

        await eventually(synced)
        alice = await clients.user_credentials("alice")
        assert alice.kubeconfig is not None
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:6.6.6"}]}}}}
        code, _, err = await kubectl(
            control_plane, alice.kubeconfig, "-n", ns, "patch", "deploy/web", "-p", json.dumps(patch)
        )
        assert code == 0 and "Warning: driftwarden" in err

        async def healed() -> bool:
            live = await apps.read_namespaced_deployment("web", ns)
            return live.spec.template.spec.containers[0].image == "nginx:1.27"

        await eventually(healed, seconds=10)
    for provider in (webhook_traces, auditor_traces):
        provider.force_flush()
        provider.shutdown()
    await admin.close()

    def heals_here(trace: dict[str, Any]) -> bool:
        return any(
            tags(s).get("k8s.namespace.name") == ns and _links(s) for s in spans_named(trace, "auditor.heal")
        )

    (heal_trace,) = await wait_for_traces(
        jaeger, "driftwarden-auditor", operation="auditor.heal", match=heals_here
    )
    (heal,) = [s for s in spans_named(heal_trace, "auditor.heal") if tags(s).get("k8s.namespace.name") == ns]
    assert "/spec/template/spec/containers/0/image" in str(tags(heal)["driftwarden.fields"])
    assert tags(heal)["k8s.deployment.name"] == tags(heal)["k8s.resource.name"] == "web"
    (link,) = _links(heal)
    # The heal is the root of its own trace: no CHILD_OF reference to the pass that started the watch.
    assert [r for r in heal.get("references") or [] if r["refType"] == "CHILD_OF"] == []

    # ... and the parent of the client spans of the API requests the heal made (the apply among them).
    def child_of_heal(span: dict[str, Any]) -> bool:
        refs = span.get("references") or []
        return any(r["refType"] == "CHILD_OF" and r["spanID"] == heal["spanID"] for r in refs)

    calls = [s["operationName"] for s in heal_trace["spans"] if child_of_heal(s)]
    assert "PATCH /apis/apps/v1/namespaces/{namespace}/deployments/{name}" in calls, calls
    flagged_trace = await wait_for_trace(jaeger, link["traceID"])
    (flagged,) = [s for s in flagged_trace["spans"] if s["spanID"] == link["spanID"]]
    assert flagged["operationName"] == "admission.review"
    assert service_of(flagged_trace, flagged) == "driftwarden-webhook"
    who = tags(flagged)
    assert (who["enduser.id"], who["driftwarden.mode"], who["driftwarden.violation"]) == (
        "alice",
        "warn",
        True,
    )
    assert who["k8s.namespace.name"] == ns
    assert "nginx:6.6.6" not in json.dumps(flagged_trace) + json.dumps(heal_trace)  # paths, never values
