"""The webhook's HTTPS server: clear 4xx for bad input, TLS 1.2+, health endpoints on their own port,
certificate reload."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from certs.pki import CertRequest, issue, new_ca
from tests.support.guard import serving_pair
from webhook.admission.settings import make_settings
from webhook.app import make_app
from webhook.server import ServerSettings, WebhookServer


class Served:
    def __init__(self, server: WebhookServer, ca_pem: bytes, spans: InMemorySpanExporter, tmp: Path) -> None:
        self.server, self.ca_pem, self.spans, self.tmp = server, ca_pem, spans, tmp
        self.ssl = ssl.create_default_context(cadata=ca_pem.decode())

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.port}"


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    ca, cert, key = serving_pair(tmp_path)
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    app = make_app(make_settings(), tracer=provider.get_tracer("test"))
    settings = ServerSettings(cert, key, host="127.0.0.1", port=0, reload_interval=0.1, metrics_port=0)
    async with WebhookServer(app, settings) as server:
        yield Served(server, ca.cert_pem, spans, tmp_path)


def review(operation: str = "UPDATE", **request: Any) -> dict[str, Any]:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "ns"}}
    base = {
        "uid": "4f1e7f0a-1111-2222-3333-444455556666",
        "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
        "resource": {"group": "", "version": "v1", "resource": "configmaps"},
        "name": "cm",
        "namespace": "ns",
        "operation": operation,
        "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
        "object": obj,
        "oldObject": obj,
    }
    base.update(request)
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": base}


async def _post(
    served: Served, path: str, body: bytes, content_type: str = "application/json"
) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            served.url + path, data=body, headers={"Content-Type": content_type}, ssl=served.ssl
        ) as resp,
    ):
        text = await resp.text()
        return resp.status, json.loads(text) if resp.content_type == "application/json" else text


async def test_an_unmanaged_review_is_allowed_and_echoes_the_uid(served: Served) -> None:
    status, body = await _post(served, "/validate", json.dumps(review()).encode())
    assert status == 200
    assert body["apiVersion"] == "admission.k8s.io/v1"
    assert body["response"] == {"uid": "4f1e7f0a-1111-2222-3333-444455556666", "allowed": True}


@pytest.mark.parametrize(
    ("path", "body", "content_type", "status", "reason"),
    [
        ("/validate", b"{not json", "application/json", 400, "not JSON"),
        ("/validate", b"[1, 2]", "application/json", 400, "AdmissionReview"),
        ("/mutate", json.dumps({"apiVersion": "v1", "kind": "Pod"}).encode(), "application/json", 400,
         "AdmissionReview"),
        ("/validate", json.dumps({**review(), "request": {"operation": "UPDATE"}}).encode(),
         "application/json", 400, "uid"),
        ("/validate", json.dumps(review()).encode(), "text/plain", 415, "application/json"),
        ("/mutate", b"\xff\xfe", "application/json", 400, "not JSON"),
    ],
)  # fmt: skip
async def test_bad_input_gets_a_clear_4xx(
    served: Served, path: str, body: bytes, content_type: str, status: int, reason: str
) -> None:
    got, answer = await _post(served, path, body, content_type)
    assert got == status
    assert reason in answer["error"]


async def test_a_body_over_the_api_servers_limit_gets_413(served: Served) -> None:
    big = review()
    big["request"]["object"]["data"] = {"blob": "x" * (3 * 1024 * 1024 + 10)}
    status, answer = await _post(served, "/validate", json.dumps(big).encode())
    assert status == 413
    assert "3 MiB" in answer["error"]


async def test_health_and_readiness(served: Served) -> None:
    async with aiohttp.ClientSession() as session:
        for path in ("/healthz", "/readyz"):
            async with session.get(served.server.metrics_url + path) as resp:
                assert resp.status == 200
                assert await resp.text() == "ok"


async def test_the_admission_port_answers_only_validate_and_mutate(served: Served) -> None:
    async with aiohttp.ClientSession() as session:
        for path in ("/healthz", "/readyz", "/metrics"):
            async with session.get(served.url + path, ssl=served.ssl) as resp:
                assert resp.status == 404, path
        async with session.get(served.url + "/validate", ssl=served.ssl) as resp:
            assert resp.status == 405
        # ...and the probe port has no admission endpoint.
        async with session.post(served.server.metrics_url + "/validate", data=b"{}") as resp:
            assert resp.status == 404


async def test_readiness_turns_503_while_the_admission_port_shuts_down(tmp_path: Path) -> None:
    _, cert, key = serving_pair(tmp_path)
    app = make_app(make_settings(), tracer=TracerProvider().get_tracer("test"))
    settings = ServerSettings(cert, key, host="127.0.0.1", port=0, metrics_port=0)
    server = WebhookServer(app, settings)
    async with server, aiohttp.ClientSession() as session:
        probes = server.metrics_url
        await app.shutdown()  # what the admission runner does first on the way out
        async with session.get(probes + "/readyz") as resp:
            assert (resp.status, await resp.text()) == (503, "shutting down")
        async with session.get(probes + "/healthz") as resp:
            assert resp.status == 200


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
async def test_tls_below_1_2_is_refused(served: Served) -> None:
    assert served.server.tls.server_context().minimum_version == ssl.TLSVersion.TLSv1_2
    modern = ssl.create_default_context(cadata=served.ca_pem.decode())
    modern.maximum_version = ssl.TLSVersion.TLSv1_2
    _reader, writer = await asyncio.open_connection("127.0.0.1", served.server.port, ssl=modern)
    writer.close()
    old = ssl.create_default_context(cadata=served.ca_pem.decode())
    old.minimum_version = ssl.TLSVersion.TLSv1
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.set_ciphers("ALL:@SECLEVEL=0")
    with pytest.raises(OSError):  # ssl.SSLError or a reset, depending on who gives up first
        _reader, _writer = await asyncio.open_connection("127.0.0.1", served.server.port, ssl=old)


async def test_each_review_is_one_span_with_the_decision(served: Served) -> None:
    await _post(served, "/validate", json.dumps(review()).encode())
    (span,) = [s for s in served.spans.get_finished_spans() if s.name == "admission.review"]
    assert span.attributes is not None
    assert span.attributes["driftwarden.decision"] == "allowed"
    assert span.attributes["driftwarden.reason"] == "unmanaged"
    assert span.attributes["k8s.admission.operation"] == "UPDATE"
    assert span.attributes["enduser.id"] == "alice"


async def test_a_rotated_certificate_is_served_without_dropping_open_connections(served: Served) -> None:
    ca_pem = served.ca_pem
    new_ca_pair, _, _ = serving_pair(served.tmp / "next")  # a different CA altogether
    both = ssl.create_default_context(cadata=ca_pem.decode() + new_ca_pair.cert_pem.decode())
    body = json.dumps(review()).encode()
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:
        async with session.post(served.url + "/validate", data=body, headers=headers, ssl=both) as resp:
            assert resp.status == 200
        # Rotate: a new leaf from the new CA replaces the files on disk.
        now = dt.datetime.now(dt.UTC)
        leaf = issue(CertRequest("driftwarden-webhook", ip_addresses=("127.0.0.1",), server=True),
                     ca=new_ca_pair, now=now)  # fmt: skip
        served.server.tls.key_file.write_bytes(leaf.key_pem)
        served.server.tls.cert_file.write_bytes(leaf.cert_pem)
        for _ in range(100):
            if served.server.tls.reloads:
                break
            await asyncio.sleep(0.05)
        assert served.server.tls.reloads == 1
        # The kept-alive connection still works after the reload...
        async with session.post(served.url + "/validate", data=body, headers=headers, ssl=both) as resp:
            assert resp.status == 200
    # ...and a new connection is served with the new certificate, trusted only through the new CA.
    only_new = ssl.create_default_context(cadata=new_ca_pair.cert_pem.decode())
    async with (
        aiohttp.ClientSession() as fresh,
        fresh.post(served.url + "/validate", data=body, headers=headers, ssl=only_new) as resp,
    ):
        assert resp.status == 200


async def test_a_client_ca_is_required_and_reloaded_when_it_changes(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    day = dt.timedelta(days=1)
    old_ca, new_ca_pair = (
        new_ca("callers-1", now=now, validity=day),
        new_ca("callers-2", now=now, validity=day),
    )
    ca_file = tmp_path / "callers.crt"
    ca_file.write_bytes(old_ca.cert_pem)
    serving_ca, cert, key = serving_pair(tmp_path)
    app = make_app(make_settings(), tracer=TracerProvider().get_tracer("test"))
    settings = ServerSettings(
        cert, key, host="127.0.0.1", port=0, reload_interval=0.1, client_ca_file=ca_file
    )

    def caller(ca: Any, name: str) -> ssl.SSLContext:
        pair = issue(CertRequest(name, client=True), ca=ca, now=now)
        (tmp_path / f"{name}.crt").write_bytes(pair.cert_pem)
        (tmp_path / f"{name}.key").write_bytes(pair.key_pem)
        context = ssl.create_default_context(cadata=serving_ca.cert_pem.decode())
        context.load_cert_chain(str(tmp_path / f"{name}.crt"), str(tmp_path / f"{name}.key"))
        return context

    async def answered(context: ssl.SSLContext, port: int) -> bool:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
            writer.write(b"GET /validate HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = await reader.readline()
            writer.close()
            return answer.startswith(b"HTTP/1.1 405")
        except (OSError, ssl.SSLError):
            return False

    async with WebhookServer(app, settings) as server:
        first, second = caller(old_ca, "first"), caller(new_ca_pair, "second")
        anonymous = ssl.create_default_context(cadata=serving_ca.cert_pem.decode())
        assert [await answered(c, server.port) for c in (first, second, anonymous)] == [True, False, False]
        ca_file.write_bytes(new_ca_pair.cert_pem)  # the callers' CA rotates
        for _ in range(100):
            if server.tls.reloads:
                break
            await asyncio.sleep(0.05)
        assert [await answered(c, server.port) for c in (first, second, anonymous)] == [False, True, False]
