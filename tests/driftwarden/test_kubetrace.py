"""Client spans of Kubernetes API requests (driftwarden.kube.trace), against the real API server.

Spans go to the SDK's in-memory exporter. A request that succeeds, one the API server refuses, one it cannot
be reached for, and a Secret written through the traced client whose value must appear nowhere.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import pytest
from kubernetes_asyncio import client
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from devtools.controlplane import ControlPlane
from devtools.jaeger import free_port
from driftwarden.errors import KubeError, KubeUnavailableError
from driftwarden.kube.client import api_client_for
from driftwarden.kube.rest import request_json
from driftwarden.kube.trace import path_template


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/api/v1/namespaces", "/api/v1/namespaces"),
        ("/api/v1/namespaces/shop", "/api/v1/namespaces/{name}"),
        ("/api/v1/namespaces/shop/secrets", "/api/v1/namespaces/{namespace}/secrets"),
        ("/api/v1/namespaces/shop/secrets/db", "/api/v1/namespaces/{namespace}/secrets/{name}"),
        ("/api/v1/namespaces/shop/pods/web/log", "/api/v1/namespaces/{namespace}/pods/{name}/log"),
        ("/apis/apps/v1/deployments", "/apis/apps/v1/deployments"),
        ("/apis/apps/v1/namespaces/shop/deployments/web",
         "/apis/apps/v1/namespaces/{namespace}/deployments/{name}"),
        ("/apis/apps/v1/namespaces/shop/deployments/web/scale",
         "/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"),
        ("/apis/rbac.authorization.k8s.io/v1/clusterroles/admin",
         "/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}"),
        ("/apis/apps/v1", "/apis/apps/v1"),
        ("/api", "/api"),
        ("/version", "/version"),
        ("/", "/"),
    ],
)  # fmt: skip
def test_the_span_name_templates_namespace_and_name(path: str, template: str) -> None:
    assert path_template(path) == template


@dataclass
class Traced:
    api: client.ApiClient
    spans: InMemorySpanExporter
    provider: TracerProvider

    def calls(self) -> list[ReadableSpan]:
        return [s for s in self.spans.get_finished_spans() if s.kind is SpanKind.CLIENT]


@pytest.fixture
async def traced(control_plane: ControlPlane) -> AsyncIterator[Traced]:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    assert control_plane.admin is not None
    api = api_client_for(control_plane.admin, tracer=provider.get_tracer("test"))
    yield Traced(api, spans, provider)
    await api.close()


async def test_a_request_is_a_client_span_under_the_current_span(traced: Traced) -> None:
    with traced.provider.get_tracer("test").start_as_current_span("step") as step:
        await request_json(traced.api, "GET", "/api/v1/namespaces/default")
    (call,) = traced.calls()
    assert call.name == "GET /api/v1/namespaces/{name}"
    assert call.parent is not None and call.parent.span_id == step.get_span_context().span_id
    assert call.attributes is not None
    assert call.attributes["http.request.method"] == "GET"
    assert call.attributes["http.response.status_code"] == 200
    assert str(call.attributes["url.full"]).endswith("/api/v1/namespaces/default")
    assert call.attributes["server.address"] == "127.0.0.1"
    assert call.status.status_code is StatusCode.UNSET


async def test_a_refused_request_is_an_error_span_without_the_response_body(traced: Traced) -> None:
    missing = f"nope-{uuid.uuid4().hex[:6]}"
    with pytest.raises(KubeError):
        await request_json(traced.api, "GET", f"/api/v1/namespaces/default/secrets/{missing}")
    (call,) = traced.calls()
    assert call.status.status_code is StatusCode.ERROR
    assert call.status.description == "404 Not Found"
    assert call.attributes is not None
    assert (call.attributes["http.response.status_code"], call.attributes["error.type"]) == (404, "404")
    # The body ('secrets "nope-…" not found') is the API server's to say, not the span's.
    assert not any(missing in json.dumps(e.attributes and dict(e.attributes)) for e in call.events)


async def test_an_unreachable_api_server_is_an_error_span_with_the_exception(
    traced: Traced, control_plane: ControlPlane
) -> None:
    assert control_plane.admin is not None
    closed = replace(control_plane.admin, server=f"https://127.0.0.1:{free_port()}")
    api = api_client_for(closed, tracer=traced.provider.get_tracer("test"))
    try:
        with pytest.raises(KubeUnavailableError):
            await request_json(api, "GET", "/api/v1/namespaces/default", request_timeout=5)
    finally:
        await api.close()
    (call,) = traced.calls()
    assert call.status.status_code is StatusCode.ERROR
    assert call.attributes is not None and "http.response.status_code" not in call.attributes
    assert "Connect" in str(call.attributes["error.type"])
    assert [e.name for e in call.events] == ["exception"]


async def test_a_secret_written_through_the_traced_client_leaves_no_value_in_any_span(traced: Traced) -> None:
    value = f"s3cr3t-{uuid.uuid4().hex}"
    name = f"creds-{uuid.uuid4().hex[:6]}"
    body = {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
        "data": {"password": base64.b64encode(value.encode()).decode()},
    }  # fmt: skip
    path = "/api/v1/namespaces/default/secrets"
    await request_json(traced.api, "POST", path, body=body)
    await request_json(traced.api, "GET", f"{path}/{name}")
    with pytest.raises(KubeError):  # a conflict: the API server's answer names the Secret, the span does not
        await request_json(traced.api, "POST", path, body=body)
    await request_json(traced.api, "DELETE", f"{path}/{name}")
    calls = traced.calls()
    assert [s.name for s in calls] == [
        "POST /api/v1/namespaces/{namespace}/secrets",
        "GET /api/v1/namespaces/{namespace}/secrets/{name}",
        "POST /api/v1/namespaces/{namespace}/secrets",
        "DELETE /api/v1/namespaces/{namespace}/secrets/{name}",
    ]
    assert calls[2].status.description == "409 Conflict"
    dumped = json.dumps([
        [dict(s.attributes or {}), [dict(e.attributes or {}) for e in s.events], s.status.description]
        for s in calls
    ])  # fmt: skip
    assert value not in dumped and body["data"]["password"] not in dumped  # type: ignore[index]
