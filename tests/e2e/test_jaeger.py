"""Traces from the webhook and the auditor reach a real Jaeger over OTLP and read back from its query API.

Jaeger v2 is the one ``make jaeger`` builds from source; the processes get its OTLP endpoint as the
``OTEL_*`` mapping driftwarden.telemetry.setup reads (never through the real environment). The webhook runs
both
in-process and as the real ``driftwarden webhook serve`` command; the reconcile pass runs against the real
control plane and real Git.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import ssl
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from opentelemetry.trace import Link

from devtools.controlplane import ControlPlane
from devtools.jaeger import Jaeger, JaegerPorts, find_jaeger, free_port, jaeger_config
from driftwarden import contract
from driftwarden.kube.client import api_client_for
from driftwarden.settings import environment
from driftwarden.telemetry.setup import tracer_provider
from tests.support.auditor import (
    AUDITOR_NS,
    application,
    create_application,
    get_application,
    install_crd_and_rbac,
    reconciler_for,
    settings_for,
    wait_until_allowed,
)
from tests.support.clients import Clients
from tests.support.gitrepo import GitRepo
from tests.support.guard import serving_pair
from tests.support.jaeger import (
    children,
    jaeger_fixture,  # noqa: F401 - the session's `jaeger` fixture
    links,
    parent_id,
    service_of,
    spans_named,
    tags,
    wait_for_trace,
    wait_for_traces,
)
from tests.webhook.reviews import admission_review, changed, deployment
from webhook.admission.settings import make_settings
from webhook.app import make_app
from webhook.server import ServerSettings, WebhookServer

ROOT = Path(__file__).resolve().parents[2]


def test_the_config_listens_on_loopback_only_and_keeps_traces_in_memory() -> None:
    config = jaeger_config(JaegerPorts(4001, 4002, 4003, 4004))
    text = yaml.safe_dump(config)
    assert "0.0.0.0" not in text
    assert config["receivers"]["otlp"]["protocols"] == {
        "grpc": {"endpoint": "127.0.0.1:4001"},
        "http": {"endpoint": "127.0.0.1:4002"},
    }
    query = config["extensions"]["jaeger_query"]
    assert (query["http"]["endpoint"], query["grpc"]["endpoint"]) == ("127.0.0.1:4003", "127.0.0.1:4004")
    assert config["extensions"]["jaeger_storage"]["backends"]["memstore"] == {
        "memory": {"max_traces": 100_000}
    }
    assert config["service"]["telemetry"]["metrics"] == {"level": "none"}


async def test_jaeger_starts_answers_and_stops_without_an_orphan(tmp_path: Path) -> None:
    jaeger = Jaeger(find_jaeger(environment()), tmp_path)
    async with jaeger:
        assert jaeger.process.running
        assert await jaeger.services() == []
        assert await jaeger.trace("0" * 31 + "1") is None
        pid = jaeger.process.process.pid if jaeger.process.process else 0
    assert not jaeger.process.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # reaped: no zombie, no orphan
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", jaeger.ports.query_http)


async def test_a_port_taken_after_it_was_picked_means_new_ports(tmp_path: Path) -> None:
    jaeger = Jaeger(find_jaeger(environment()), tmp_path)
    taken = jaeger.ports.otlp_grpc
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", taken))
        squatter.listen()
        async with jaeger:
            assert jaeger.ports.otlp_grpc != taken
            assert await jaeger.services() == []
    assert "address already in use" in (tmp_path / "jaeger.log").read_text()


def _review(user: str, mode: str) -> dict[str, Any]:
    """``user`` scales the Git-managed Deployment ``production/web`` (guard ``mode``)."""
    old = changed(deployment(), lambda o: o["metadata"]["annotations"].update({"driftwarden.io/guard": mode}))
    new = changed(old, lambda o: o["spec"].update({"replicas": 9}))
    return admission_review(old=old, new=new, user=user)


async def _post(url: str, context: ssl.SSLContext, path: str, body: dict[str, Any]) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + path, json=body, ssl=context) as resp,
    ):
        answer: dict[str, Any] = await resp.json()
        return answer


def _by(user: str) -> Callable[[dict[str, Any]], bool]:
    return lambda trace: any(tags(s).get("enduser.id") == user for s in trace["spans"])


async def test_admission_spans_are_exported_to_jaeger(jaeger: Jaeger, tmp_path: Path) -> None:
    ca, cert, key = serving_pair(tmp_path)
    provider = tracer_provider("driftwarden-webhook", env=jaeger.otel_env())
    app = make_app(make_settings(), tracer=provider.get_tracer("driftwarden.webhook"))
    user = f"jane-{uuid.uuid4().hex[:6]}"
    context = ssl.create_default_context(cadata=ca.cert_pem.decode())
    async with WebhookServer(app, ServerSettings(cert, key, host="127.0.0.1", port=0)) as server:
        url = f"https://127.0.0.1:{server.port}"
        answer = await _post(url, context, "/validate", _review(user, "enforce"))
        assert answer["response"]["allowed"] is False
    await asyncio.to_thread(provider.shutdown)  # flushes the batch processor

    (trace,) = await wait_for_traces(jaeger, "driftwarden-webhook", match=_by(user))
    (span,) = spans_named(trace, "admission.review")
    assert service_of(trace, span) == "driftwarden-webhook"
    attributes = tags(span)
    assert attributes["driftwarden.decision"] == "denied"
    assert attributes["driftwarden.endpoint"] == "validate"
    assert attributes["k8s.admission.operation"] == "UPDATE"
    assert attributes["span.kind"] == "server"
    assert attributes["otel.status_code"] == "ERROR"
    assert parent_id(span) is None


async def test_a_span_link_reads_back_as_a_follows_from_reference(jaeger: Jaeger) -> None:
    """What the heal's link to the edit's trace looks like in Jaeger (the drift annotation's traceparent)."""
    provider = tracer_provider("driftwarden-link-probe", env=jaeger.otel_env(protocol="http/protobuf"))
    tracer = provider.get_tracer("probe")
    with tracer.start_as_current_span("edit") as edit:
        pass
    with tracer.start_as_current_span("heal", links=[Link(edit.get_span_context())]):
        pass
    await asyncio.to_thread(provider.shutdown)
    edit_ctx = edit.get_span_context()
    heal_trace = await wait_for_traces(
        jaeger,
        "driftwarden-link-probe",
        operation="heal",
        match=lambda t: bool(links(spans_named(t, "heal")[0])),
    )
    (heal,) = spans_named(heal_trace[-1], "heal")
    assert (f"{edit_ctx.trace_id:032x}", f"{edit_ctx.span_id:016x}") in links(heal)
    edit_trace = await wait_for_trace(jaeger, f"{edit_ctx.trace_id:032x}")
    assert [s["operationName"] for s in edit_trace["spans"]] == ["edit"]


@pytest.fixture(scope="module")
async def installed(control_plane: ControlPlane) -> AsyncIterator[None]:
    assert control_plane.admin is not None
    api = api_client_for(control_plane.admin)
    await install_crd_and_rbac(api)
    yield
    await api.close()


@pytest.mark.cluster
async def test_a_reconcile_pass_is_one_trace_in_jaeger(
    jaeger: Jaeger,
    installed: None,
    clients: Clients,
    control_plane: ControlPlane,
    git_repo: Callable[..., GitRepo],
    tmp_path: Path,
) -> None:
    api = await clients.service_account(AUDITOR_NS, contract.AUDITOR_SERVICE_ACCOUNT)
    await wait_until_allowed(api, verb="patch", group="", resource="configmaps")
    provider = tracer_provider("driftwarden-auditor", env=jaeger.otel_env())
    reconciler = reconciler_for(
        api, settings_for(control_plane, tmp_path / "git"), tracer=provider.get_tracer("auditor")
    )
    repo = git_repo(
        {"apps/web/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {a: b}\n"}
    )
    name = f"web-{uuid.uuid4().hex[:6]}"
    body = application(
        name,
        repo_url=repo.url,
        path="apps/web",
        namespace=f"dst-{uuid.uuid4().hex[:6]}",
        syncPolicy={"automated": {"prune": True, "selfHeal": True}, "syncOptions": ["CreateNamespace=true"]},
    )
    await create_application(clients.admin, body)
    result = await reconciler.run(await get_application(clients.admin, name))
    assert result.error is None
    await asyncio.to_thread(provider.shutdown)

    app = f"{AUDITOR_NS}/{name}"
    (trace,) = await wait_for_traces(
        jaeger,
        "driftwarden-auditor",
        operation="auditor.reconcile",
        match=lambda t: any(
            tags(s).get("driftwarden.app") == app for s in spans_named(t, "auditor.reconcile")
        ),
    )
    (root,) = spans_named(trace, "auditor.reconcile")
    assert parent_id(root) is None
    assert tags(root)["driftwarden.sync"] == "Synced"
    assert tags(root)["driftwarden.revision"] == repo.head()
    assert [s["operationName"] for s in children(trace, root)] == [
        "git.fetch",
        "render",
        "diff",
        "apply",
        "diff",
        "health",
    ]
    assert {service_of(trace, s) for s in trace["spans"]} == {"driftwarden-auditor"}


async def test_the_webhook_command_exports_spans_and_serves_metrics(jaeger: Jaeger, tmp_path: Path) -> None:
    ca, cert, key = serving_pair(tmp_path)
    port, metrics_port = free_port(), free_port()
    argv = [sys.executable, "-m", "cli.main", "webhook", "serve", "--host", "127.0.0.1",
            "--port", str(port), "--metrics-port", str(metrics_port),
            "--tls-cert-file", str(cert), "--tls-key-file", str(key)]  # fmt: skip
    env = {**environment(), **jaeger.otel_env()}
    log = (tmp_path / "webhook.log").open("wb")
    proc = await asyncio.create_subprocess_exec(*argv, cwd=ROOT, env=env, stdout=log, stderr=log)
    url, context = f"https://127.0.0.1:{port}", ssl.create_default_context(cadata=ca.cert_pem.decode())
    user = f"jane-{uuid.uuid4().hex[:6]}"
    try:
        async with asyncio.timeout(60), aiohttp.ClientSession() as session:
            while True:
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"http://127.0.0.1:{metrics_port}/readyz") as resp:
                        if resp.status == 200:
                            break
                assert proc.returncode is None, (tmp_path / "webhook.log").read_text()
                await asyncio.sleep(0.1)
            answer = await _post(url, context, "/mutate", _review(user, "warn"))
            assert answer["response"]["allowed"] is True
            async with session.get(f"http://127.0.0.1:{metrics_port}/metrics") as resp:
                metrics = await resp.text()
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        log.close()
    assert (
        'driftwarden_admission_requests_total{decision="warned",endpoint="mutate",operation="UPDATE"} 1'
        in metrics
    )
    patch = json.loads(base64.b64decode(answer["response"]["patch"]))
    stamp = json.loads(next(op["value"] for op in patch if op["path"].endswith("driftwarden.io~1drift")))
    trace_id = stamp["traceparent"].split("-")[1]
    # Shutdown flushed the batch: the span the drift stamp names is in Jaeger, under the webhook's name.
    trace = await wait_for_trace(jaeger, trace_id)
    (span,) = spans_named(trace, "admission.review")
    assert span["spanID"] == stamp["traceparent"].split("-")[2]
    assert service_of(trace, span) == "driftwarden-webhook"
    assert tags(span)["driftwarden.decision"] == "allowed"
    assert tags(span)["driftwarden.violation"] is True
