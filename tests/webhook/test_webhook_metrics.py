"""The webhook's metrics and spans: /metrics (plain HTTP, on the probe port) after real HTTPS reviews, a
span per decision.

The app is wired the way ``driftwarden webhook serve`` wires it (driftwarden.telemetry.setup.meter_provider
with no exporter configured), served by WebhookServer with a certificate from its own CA.
"""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from driftwarden.telemetry.metrics import CONTENT_TYPE, Instruments
from driftwarden.telemetry.setup import Metering, meter_provider
from tests.support.guard import serving_pair
from tests.webhook.reviews import admission_review, changed, deployment
from webhook.admission.settings import make_settings
from webhook.app import make_app
from webhook.server import ServerSettings, WebhookServer


@dataclass
class Metered:
    url: str
    metrics_url: str
    ssl: ssl.SSLContext
    spans: InMemorySpanExporter
    metering: Metering

    async def post(self, path: str, body: dict[str, Any] | bytes) -> dict[str, Any]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                self.url + path, data=data, headers={"Content-Type": "application/json"}, ssl=self.ssl
            ) as resp,
        ):
            answer: dict[str, Any] = await resp.json()
            return answer

    async def metrics(self) -> tuple[int, str, str]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(self.metrics_url + "/metrics") as resp,
        ):
            return resp.status, resp.headers["Content-Type"], await resp.text()


@pytest.fixture
async def metered(tmp_path: Path) -> AsyncIterator[Metered]:
    ca, cert, key = serving_pair(tmp_path)
    spans = InMemorySpanExporter()
    tracing = TracerProvider()
    tracing.add_span_processor(SimpleSpanProcessor(spans))
    metering = meter_provider("driftwarden-webhook", env={})
    instruments = Instruments.from_meter(metering.provider.get_meter("driftwarden.webhook"))
    app = make_app(
        make_settings(),
        tracer=tracing.get_tracer("test"),
        instruments=instruments,
        metrics=metering.scrape,
    )
    settings = ServerSettings(cert, key, host="127.0.0.1", port=0, metrics_port=0)
    async with WebhookServer(app, settings) as server:
        context = ssl.create_default_context(cadata=ca.cert_pem.decode())
        yield Metered(f"https://127.0.0.1:{server.port}", server.metrics_url, context, spans, metering)
    metering.shutdown()


def _guarded(mode: str) -> dict[str, Any]:
    return changed(
        deployment(), lambda o: o["metadata"]["annotations"].update({"driftwarden.io/guard": mode})
    )


def _scaled(obj: dict[str, Any]) -> dict[str, Any]:
    return changed(obj, lambda o: o["spec"].update({"replicas": 9}))


def _samples(text: str) -> dict[str, float]:
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


async def test_metrics_count_every_review_by_decision_operation_and_endpoint(metered: Metered) -> None:
    enforce, warn = _guarded("enforce"), _guarded("warn")
    denied = admission_review(old=enforce, new=_scaled(enforce), user="jane")
    warned = admission_review(old=warn, new=_scaled(warn), user="jane")
    unmanaged = admission_review(operation="CREATE", old=None, new={"metadata": {"name": "x"}}, user="jane")
    assert (await metered.post("/validate", denied))["response"]["allowed"] is False
    assert (await metered.post("/validate", denied))["response"]["allowed"] is False
    assert (await metered.post("/validate", warned))["response"]["allowed"] is True
    assert (await metered.post("/mutate", warned))["response"]["allowed"] is True
    assert (await metered.post("/validate", unmanaged))["response"]["allowed"] is True
    assert "error" in await metered.post("/validate", b"{broken")

    status, content_type, text = await metered.metrics()
    assert (status, content_type) == (200, CONTENT_TYPE)
    samples = _samples(text)
    requests = "driftwarden_admission_requests_total{{decision={},endpoint={},operation={}}}"
    assert samples[requests.format('"denied"', '"validate"', '"UPDATE"')] == 2
    assert samples[requests.format('"warned"', '"validate"', '"UPDATE"')] == 1
    assert samples[requests.format('"warned"', '"mutate"', '"UPDATE"')] == 1
    assert samples[requests.format('"allowed"', '"validate"', '"CREATE"')] == 1
    assert samples[requests.format('"invalid"', '"validate"', '"unknown"')] == 1
    labels = '{decision="denied",endpoint="validate",operation="UPDATE"}'
    assert samples["driftwarden_admission_duration_seconds_count" + labels] == 2
    assert 0 < samples["driftwarden_admission_duration_seconds_sum" + labels] < 5
    assert "# TYPE driftwarden_admission_duration_seconds histogram" in text


async def test_metrics_carry_no_user_or_object_content(metered: Metered) -> None:
    enforce = _guarded("enforce")
    await metered.post(
        "/validate", admission_review(old=enforce, new=_scaled(enforce), user="mallory-secret")
    )
    _, _, text = await metered.metrics()
    assert "mallory" not in text and "production" not in text and '"web"' not in text


async def test_each_review_is_one_span_with_decision_fields_and_status(metered: Metered) -> None:
    enforce = _guarded("enforce")
    await metered.post("/validate", admission_review(old=enforce, new=_scaled(enforce), user="jane"))
    await metered.post("/validate", b"[1]")
    denied, invalid = [s for s in metered.spans.get_finished_spans() if s.name == "admission.review"]
    assert denied.attributes is not None and invalid.attributes is not None
    assert denied.kind.name == "SERVER"
    assert denied.attributes["driftwarden.decision"] == "denied"
    assert denied.attributes["driftwarden.mode"] == "enforce"
    assert denied.attributes["driftwarden.violation"] is True
    assert denied.attributes["driftwarden.fields"] == ("spec.replicas",)
    assert denied.attributes["driftwarden.app"] == "driftwarden-system/web-app"
    assert denied.attributes["k8s.resource.type"] == "deployments"
    assert denied.attributes["k8s.namespace.name"] == "production"
    # The semantic conventions' own name attribute of the kind, beside the kind-neutral one.
    assert denied.attributes["k8s.deployment.name"] == denied.attributes["k8s.resource.name"]
    assert denied.status.status_code is StatusCode.ERROR
    assert invalid.status.status_code is StatusCode.ERROR
    assert invalid.attributes["driftwarden.endpoint"] == "validate"
    assert "driftwarden.decision" not in invalid.attributes


async def test_the_drift_stamp_carries_the_traceparent_of_the_review_span(metered: Metered) -> None:
    warn = _guarded("warn")
    answer = await metered.post("/mutate", admission_review(old=warn, new=_scaled(warn), user="jane"))
    patch = json.loads(base64.b64decode(answer["response"]["patch"]))
    (stamp,) = [json.loads(op["value"]) for op in patch if op["path"].endswith("driftwarden.io~1drift")]
    (span,) = [s for s in metered.spans.get_finished_spans() if s.name == "admission.review"]
    assert span.context is not None
    ctx = span.context
    assert stamp["traceparent"] == f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"
    assert ctx.trace_flags.sampled
    assert stamp["fields"] == ["spec.replicas"]
