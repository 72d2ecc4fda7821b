"""The auditor's spans and metrics from real reconcile passes against the real API server and real Git.

Spans go to the SDK's in-memory exporter, metrics to the in-memory reader that ``/metrics`` renders (the
MeterProvider of driftwarden.telemetry.setup, as ``driftwarden auditor run`` builds it); the auditor's metrics
server is scraped over real HTTP.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio import client
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from auditor.kube.cluster import Cluster
from auditor.ledger import Ledger
from auditor.reconcile import Reconciler
from devtools.controlplane import ControlPlane
from devtools.controlplane.plane import free_port
from driftwarden import contract
from driftwarden.telemetry.metrics import Instruments, metrics_server, prometheus_text
from driftwarden.telemetry.setup import Metering, meter_provider
from tests.support.auditor import (
    AUDITOR_NS,
    application,
    create_application,
    get_application,
    reconciler_for,
    settings_for,
    wait_until_allowed,
)
from tests.support.clients import Clients
from tests.support.gitrepo import GitRepo

pytestmark = pytest.mark.cluster

CONFIG = "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: web-config}}\ndata: {{color: {color}}}\n"
NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}}}\n"
LEFTOVER = "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: leftover, namespace: {namespace}}}\n"
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
    reconciler = reconciler_for(
        api,
        settings_for(control_plane, tmp_path / "git-cache"),
        tracer=tracer,
        instruments=Instruments.from_meter(metering.provider.get_meter("driftwarden.auditor")),
    )
    yield Traced(reconciler, spans, metering)
    metering.shutdown()


def _in_order(spans: list[ReadableSpan]) -> list[ReadableSpan]:
    return sorted(spans, key=lambda s: s.start_time or 0)


def _url(span: ReadableSpan) -> str:
    assert span.attributes is not None
    return str(span.attributes["url.full"])


def _assert_health(span: ReadableSpan, status: Mapping[str, Any]) -> None:
    """The health span carries the verdict the pass wrote, and counts the resources that are not Healthy."""
    assert span.name == "health" and span.attributes is not None
    assert span.attributes["driftwarden.health"] == status["health"]["status"]
    # Objects only left to prune have no health; every desired one has.
    resources = [r for r in status["resources"] if "health" in r]
    assert span.attributes["driftwarden.resources"] == len(resources)
    unhealthy = [r for r in resources if r["health"]["status"] != "Healthy"]
    assert span.attributes["driftwarden.health.unhealthy"] == len(unhealthy)


async def _app(clients: Clients, repo: GitRepo, **spec: object) -> tuple[dict[str, object], str, str]:
    name, ns = f"web-{uuid.uuid4().hex[:6]}", f"dst-{uuid.uuid4().hex[:6]}"
    body = application(name, repo_url=repo.url, path="apps/web", namespace=ns, **spec)
    await create_application(clients.admin, body)
    return await get_application(clients.admin, name), f"{AUDITOR_NS}/{name}", ns


async def test_a_syncing_pass_is_one_trace_reconcile_over_fetch_render_diff_apply_health(
    traced: Traced, clients: Clients, git_repo: Callable[..., GitRepo]
) -> None:
    repo = git_repo({"apps/web/config.yaml": CONFIG.format(color="blue")})
    obj, app, _ = await _app(clients, repo, syncPolicy=AUTOMATED)
    passed = await traced.reconciler.run(obj)

    (root,) = traced.finished("auditor.reconcile")
    assert root.parent is None and root.attributes is not None and root.context is not None
    assert root.attributes["driftwarden.app"] == app
    assert root.attributes["driftwarden.sync"] == "Synced"
    assert root.attributes["driftwarden.revision"] == repo.head()
    assert root.status.status_code is StatusCode.UNSET
    children = _in_order(traced.children(root))
    # fetch, render, diff, apply what differs (nothing left Git: no prune), diff again to record what the
    # cluster now says, and the health verdict
    assert [s.name for s in children] == ["git.fetch", "render", "diff", "apply", "diff", "health"]
    assert {s.context.trace_id for s in children if s.context} == {root.context.trace_id}
    fetch, render, first_diff, apply, second_diff, health = children
    assert fetch.attributes is not None and fetch.attributes["driftwarden.app"] == app
    assert fetch.attributes["driftwarden.revision"] == repo.head()
    assert render.attributes is not None and render.attributes["driftwarden.app"] == app
    assert render.attributes["driftwarden.revision"] == repo.head()
    assert render.attributes["driftwarden.source.type"] == "directory"
    assert render.attributes["driftwarden.manifests"] == 1
    # Rendering makes no API request; fetching reads the repository credentials.
    assert traced.children(render, kind=SpanKind.CLIENT) == []
    assert [s.name for s in traced.children(fetch, kind=SpanKind.CLIENT)] == [
        "GET /api/v1/namespaces/{namespace}/secrets"
    ]
    assert first_diff.attributes is not None and first_diff.attributes["driftwarden.sync"] == "OutOfSync"
    assert apply.attributes is not None and apply.attributes["driftwarden.applied"] == 1
    assert second_diff.attributes is not None and second_diff.attributes["driftwarden.sync"] == "Synced"
    _assert_health(health, passed.status)
    assert all(
        a.end_time is not None and b.start_time is not None and a.end_time <= b.start_time
        for a, b in itertools.pairwise(children)
    )
    bounds = [(s.start_time or 0, s.end_time or 0) for s in children]
    assert all((root.start_time or 0) <= start and end <= (root.end_time or 0) for start, end in bounds)

    # Each API request is a client span under the step that made it: the dry runs under diff, the
    # server-side apply under apply, with the path's namespace and name templated in the span's name.
    calls = traced.children(apply, kind=SpanKind.CLIENT)
    assert "PATCH /api/v1/namespaces/{namespace}/configmaps/{name}" in [s.name for s in calls]
    patch = next(s for s in calls if s.name.endswith("/configmaps/{name}"))
    assert patch.attributes is not None and patch.attributes["http.response.status_code"] in {200, 201}
    assert str(patch.attributes["url.full"]).endswith("/configmaps/web-config")
    assert [s.name for s in traced.children(first_diff, kind=SpanKind.CLIENT)]


async def test_a_pass_that_prunes_deletes_after_every_apply_namespaced_objects_first(
    traced: Traced, clients: Clients, git_repo: Callable[..., GitRepo]
) -> None:
    extra = f"extra-{uuid.uuid4().hex[:6]}"
    files = {
        "apps/web/config.yaml": CONFIG.format(color="blue"),
        "apps/web/extra-ns.yaml": NAMESPACE.format(name=extra),
        "apps/web/extra-cm.yaml": LEFTOVER.format(namespace=extra),
    }
    repo = git_repo(files)
    obj, app, ns = await _app(clients, repo, syncPolicy=AUTOMATED)
    await traced.reconciler.run(obj)
    # One commit changes an object and removes a Namespace and the ConfigMap in it.
    gone = ["apps/web/extra-ns.yaml", "apps/web/extra-cm.yaml"]
    repo.commit({"apps/web/config.yaml": CONFIG.format(color="green")}, remove=gone, message="drop extra")
    traced.spans.clear()
    passed = await traced.reconciler.run(await get_application(clients.admin, app.split("/")[1]))

    (root,) = traced.finished("auditor.reconcile")
    children = _in_order(traced.children(root))
    names = ["git.fetch", "render", "diff", "apply", "prune", "diff", "health"]
    assert [s.name for s in children] == names
    apply, prune = children[3], children[4]
    assert apply.end_time is not None and prune.start_time is not None and apply.end_time <= prune.start_time
    assert prune.attributes is not None and prune.attributes["driftwarden.pruned"] == 2
    # Every write of the apply step is an apply, every write of the prune step a delete: the ConfigMap
    # goes before the Namespace that holds it.
    applied = [s.name for s in traced.children(apply, kind=SpanKind.CLIENT) if not s.name.startswith("GET")]
    assert applied and all(name.startswith("PATCH ") for name in applied)
    deletes = _in_order(traced.children(prune, kind=SpanKind.CLIENT))
    assert [(s.name, _url(s).rsplit("/", 1)[-1]) for s in deletes] == [
        ("DELETE /api/v1/namespaces/{namespace}/configmaps/{name}", "leftover"),
        ("DELETE /api/v1/namespaces/{name}", extra),
    ]
    assert f"/namespaces/{extra}/configmaps/leftover" in _url(deletes[0])
    assert all(s.attributes is not None and s.attributes["http.response.status_code"] == 200 for s in deletes)
    results = passed.status["operationState"]["syncResult"]["resources"]
    assert [(r["kind"], r["status"]) for r in results] == [
        ("ConfigMap", "Synced"),
        ("ConfigMap", "Pruned"),
        ("Namespace", "Pruned"),
    ]
    _assert_health(children[-1], passed.status)
    core = client.CoreV1Api(clients.admin)
    assert (await core.read_namespaced_config_map("web-config", ns)).data == {"color": "green"}


async def test_an_in_sync_pass_has_no_apply_and_a_broken_one_is_an_error_span(
    traced: Traced, clients: Clients, git_repo: Callable[..., GitRepo]
) -> None:
    repo = git_repo({"apps/web/config.yaml": CONFIG.format(color="blue")})
    obj, app, _ = await _app(clients, repo, syncPolicy=AUTOMATED)
    await traced.reconciler.run(obj)
    traced.spans.clear()
    quiet_pass = await traced.reconciler.run(await get_application(clients.admin, app.split("/")[1]))
    (quiet,) = traced.finished("auditor.reconcile")
    assert [s.name for s in _in_order(traced.children(quiet))] == ["git.fetch", "render", "diff", "health"]
    _assert_health(traced.finished("health")[0], quiet_pass.status)

    # Bad YAML: the revision resolves, rendering fails; the render span and the root are in ERROR.
    traced.spans.clear()
    repo.commit({"apps/web/config.yaml": "kind: [unclosed\n"}, message="broken")
    await traced.reconciler.run(await get_application(clients.admin, app.split("/")[1]))
    (broken,) = traced.finished("auditor.reconcile")
    assert broken.status.status_code is StatusCode.ERROR
    assert "config.yaml" in (broken.status.description or "")
    assert any(event.name == "exception" for event in broken.events)
    fetch, render = _in_order(traced.children(broken))
    assert (fetch.name, render.name) == ("git.fetch", "render")
    assert fetch.status.status_code is StatusCode.UNSET
    assert fetch.attributes is not None and fetch.attributes["driftwarden.revision"] == repo.head()
    assert render.status.status_code is StatusCode.ERROR
    assert "config.yaml" in (render.status.description or "")
    assert [event.name for event in render.events] == ["exception"]

    # A revision Git does not have: the pass stops in git.fetch, which is in ERROR.
    traced.spans.clear()
    await traced.reconciler.run(
        await get_application(clients.admin, app.split("/")[1]), revision="no-such-ref"
    )
    (unknown,) = traced.finished("auditor.reconcile")
    assert unknown.status.status_code is StatusCode.ERROR
    (fetch,) = traced.children(unknown)
    assert fetch.name == "git.fetch" and fetch.status.status_code is StatusCode.ERROR
    assert "no-such-ref" in (fetch.status.description or "")
    assert [event.name for event in fetch.events] == ["exception"]


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
        metrics_server(traced.metering.scrape, host="127.0.0.1", port=free_port()) as server,
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


async def test_passes_render_and_compare_no_more_applications_at_once_than_the_setting_says(
    traced: Traced, clients: Clients, git_repo: Callable[..., GitRepo]
) -> None:
    repo = git_repo({"apps/web/config.yaml": CONFIG.format(color="blue")})
    bundle = traced.reconciler.clients
    one = Reconciler(
        dataclasses.replace(bundle, settings=dataclasses.replace(bundle.settings, comparisons_at_once=1)),
        Ledger(),
    )
    apps = [await _app(clients, repo) for _ in range(3)]
    await asyncio.gather(*(one.run(obj) for obj, _, _ in apps))

    windows = []
    for root in traced.finished("auditor.reconcile"):
        steps = [s for s in traced.children(root) if s.name in ("git.fetch", "render", "diff")]
        assert [s.name for s in _in_order(steps)] == ["git.fetch", "render", "diff"]
        windows.append((min(s.start_time or 0 for s in steps), max(s.end_time or 0 for s in steps)))
    windows.sort()
    assert len(windows) == 3
    # One at a time: each Application's fetch, render and diff end before the next one's begin.
    assert all(earlier[1] <= later[0] for earlier, later in itertools.pairwise(windows))
