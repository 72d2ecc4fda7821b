"""The auditor's spans and metrics from real reconcile passes against the real API server and real Git.

Spans go to the SDK's in-memory exporter, metrics to the in-memory reader that ``/metrics`` renders (the
MeterProvider of driftwarden.telemetry, as ``driftwarden auditor run`` builds it); the auditor's metrics
server is scraped over real HTTP.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from kubernetes_asyncio import client
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from auditor.cluster import Cluster
from auditor.reconcile import Reconciler
from driftwarden import contract
from driftwarden.controlplane import ControlPlane
from driftwarden.metrics import Instruments, MetricsServer, prometheus_text
from driftwarden.telemetry import Metering, meter_provider
from tests.support.auditor import (
    AUDITOR_NS,
    application,
    create_application,
    get_application,
    settings_for,
    wait_until_allowed,
)
from tests.support.clients import Clients
from tests.support.gitrepo import GitRepo

pytestmark = pytest.mark.cluster

CONFIG = "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: web-config}}\ndata: {{color: {color}}}\n"
AUTOMATED = {"automated": {"prune": True, "selfHeal": True}, "syncOptions": ["CreateNamespace=true"]}


@dataclass
class Traced:
    reconciler: Reconciler
    spans: InMemorySpanExporter
    metering: Metering

    def finished(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.spans.get_finished_spans() if s.name == name]

    def children(self, parent: ReadableSpan, *, kind: SpanKind = SpanKind.INTERNAL) -> list[ReadableSpan]:
        """The direct children of ``parent`` of ``kind``: driftwarden's own steps, or API calls (CLIENT)."""
        assert parent.context is not None
        return [
            s
            for s in self.spans.get_finished_spans()
            if s.parent is not None and s.parent.span_id == parent.context.span_id and s.kind is kind
        ]


@pytest.fixture
async def traced(
    admin: Cluster, clients: Clients, control_plane: ControlPlane, tmp_path: Path
) -> AsyncIterator[Traced]:
    spans = InMemorySpanExporter()
    tracing = TracerProvider()
    tracing.add_span_processor(SimpleSpanProcessor(spans))
    # As `driftwarden auditor run` does: the API client's requests are client spans of the same tracer.
    tracer = tracing.get_tracer("driftwarden.auditor")
    api = await clients.service_account(AUDITOR_NS, contract.AUDITOR_SERVICE_ACCOUNT, tracer=tracer)
    await wait_until_allowed(api, verb="patch", group="apps", resource="deployments")
    spans.clear()
    metering = meter_provider("driftwarden-auditor", env={})
    reconciler = Reconciler(
        api,
        settings=settings_for(control_plane, tmp_path / "git-cache"),
        tracer=tracer,
        instruments=Instruments.from_meter(metering.provider.get_meter("driftwarden.auditor")),
    )
    yield Traced(reconciler, spans, metering)
    metering.shutdown()


async def _app(clients: Clients, repo: GitRepo, **spec: object) -> tuple[dict[str, object], str, str]:
    name, ns = f"web-{uuid.uuid4().hex[:6]}", f"dst-{uuid.uuid4().hex[:6]}"
    body = application(name, repo_url=repo.url, path="apps/web", namespace=ns, **spec)
    await create_application(clients.admin, body)
    return await get_application(clients.admin, name), f"{AUDITOR_NS}/{name}", ns


async def test_a_syncing_pass_is_one_trace_reconcile_over_fetch_diff_apply(
    traced: Traced, clients: Clients, git_repo: Callable[..., GitRepo]
) -> None:
    repo = git_repo({"apps/web/config.yaml": CONFIG.format(color="blue")})
    obj, app, _ = await _app(clients, repo, syncPolicy=AUTOMATED)
    await traced.reconciler.run(obj)

    (root,) = traced.finished("auditor.reconcile")
    assert root.parent is None and root.attributes is not None and root.context is not None
    assert root.attributes["driftwarden.app"] == app
    assert root.attributes["driftwarden.sync"] == "Synced"
    assert root.attributes["driftwarden.revision"] == repo.head()
    assert root.status.status_code is StatusCode.UNSET
    children = sorted(traced.children(root), key=lambda s: s.start_time or 0)
    # diff, apply what differs, diff again to record what the cluster now says
    assert [s.name for s in children] == ["git.fetch", "diff", "apply", "diff"]
    assert {s.context.trace_id for s in children if s.context} == {root.context.trace_id}
    fetch, first_diff, _, second_diff = children
    assert fetch.attributes is not None and fetch.attributes["driftwarden.app"] == app
    assert fetch.attributes["driftwarden.revision"] == repo.head()
    assert first_diff.attributes is not None and first_diff.attributes["driftwarden.sync"] == "OutOfSync"
    assert second_diff.attributes is not None and second_diff.attributes["driftwarden.sync"] == "Synced"
    bounds = [(s.start_time or 0, s.end_time or 0) for s in children]
    assert all((root.start_time or 0) <= start and end <= (root.end_time or 0) for start, end in bounds)

    # Each API request is a client span under the step that made it: the dry runs under diff, the
    # server-side apply under apply, with the path's namespace and name templated in the span's name.
    (apply,) = [s for s in children if s.name == "apply"]
    calls = traced.children(apply, kind=SpanKind.CLIENT)
    assert "PATCH /api/v1/namespaces/{namespace}/configmaps/{name}" in [s.name for s in calls]
    patch = next(s for s in calls if s.name.endswith("/configmaps/{name}"))
    assert patch.attributes is not None and patch.attributes["http.response.status_code"] in {200, 201}
    assert str(patch.attributes["url.full"]).endswith("/configmaps/web-config")
    assert [s.name for s in traced.children(first_diff, kind=SpanKind.CLIENT)]


async def test_an_in_sync_pass_has_no_apply_and_a_broken_one_is_an_error_span(
    traced: Traced, clients: Clients, git_repo: Callable[..., GitRepo]
) -> None:
    repo = git_repo({"apps/web/config.yaml": CONFIG.format(color="blue")})
    obj, app, _ = await _app(clients, repo, syncPolicy=AUTOMATED)
    await traced.reconciler.run(obj)
    traced.spans.clear()
    await traced.reconciler.run(await get_application(clients.admin, app.split("/")[1]))
    (quiet,) = traced.finished("auditor.reconcile")
    assert [s.name for s in traced.children(quiet)] == ["git.fetch", "diff"]

    traced.spans.clear()
    repo.commit({"apps/web/config.yaml": "kind: [unclosed\n"}, message="broken")
    await traced.reconciler.run(await get_application(clients.admin, app.split("/")[1]))
    (broken,) = traced.finished("auditor.reconcile")
    assert broken.status.status_code is StatusCode.ERROR
    assert "config.yaml" in (broken.status.description or "")
    assert any(event.name == "exception" for event in broken.events)
    assert [s.name for s in traced.children(broken)] == ["git.fetch"]


async def test_metrics_after_passes_are_scraped_from_the_auditors_metrics_server(
    traced: Traced, clients: Clients, git_repo: Callable[..., GitRepo]
) -> None:
    repo = git_repo({"apps/web/config.yaml": CONFIG.format(color="blue")})
    manual = {"automated": {"prune": True, "selfHeal": False}, "syncOptions": ["CreateNamespace=true"]}
    obj, app, ns = await _app(clients, repo, syncPolicy=manual)
    await traced.reconciler.run(obj)
    await client.CoreV1Api(clients.admin).patch_namespaced_config_map(
        "web-config", ns, {"data": {"color": "red"}}
    )
    await traced.reconciler.run(await get_application(clients.admin, app.split("/")[1]))

    async with (
        MetricsServer(traced.metering.scrape, host="127.0.0.1", port=0) as server,
        aiohttp.ClientSession() as session,
        session.get(server.url + "/metrics") as resp,
    ):
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await resp.text()
    assert text == prometheus_text(traced.metering.scrape)
    assert f'driftwarden_reconcile_duration_seconds_count{{app="{app}"}} 2' in text
    # The second pass found the out-of-band edit and (selfHeal off) left it: OutOfSync now.
    assert f'driftwarden_app_sync_status{{app="{app}",status="OutOfSync"}} 1' in text
    assert f'driftwarden_app_sync_status{{app="{app}",status="Synced"}} 0' in text
    assert f'driftwarden_app_health_status{{app="{app}",status="Healthy"}} 1' in text
    assert "# TYPE driftwarden_reconcile_duration_seconds histogram" in text
