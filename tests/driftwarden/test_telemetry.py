"""driftwarden.telemetry.setup: OTEL_* settings read from the mapping given, and exports that really leave.

The export tests run a real OTLP/HTTP receiver (aiohttp on 127.0.0.1) and decode what arrives with the
OpenTelemetry protobufs: the endpoint comes only from the mapping, never from the process environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from aiohttp import web
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import (
    TraceServiceServicer,
    add_TraceServiceServicer_to_server,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from driftwarden.errors import ConfigError
from driftwarden.telemetry.metrics import Instruments
from driftwarden.telemetry.otlp.batch import WireBatchSpanProcessor
from driftwarden.telemetry.otlp.export import GrpcBatchExporter, HttpBatchExporter
from driftwarden.telemetry.setup import (
    OtlpTarget,
    batch_span_processor,
    meter_provider,
    otlp_target,
    sampler,
    sdk_batch_span_processor,
    span_export,
    tracer_provider,
)
from tests.support.waiting import eventually


def test_no_endpoint_means_no_exporter() -> None:
    assert otlp_target({}, "traces") is None
    assert otlp_target({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "metrics") is None
    provider = tracer_provider("svc", env={})
    assert provider._active_span_processor._span_processors == ()
    metering = meter_provider("svc", env={})
    assert metering.exporting is False
    metering.shutdown()


def test_grpc_uses_the_base_endpoint_as_it_is() -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}
    assert otlp_target(env, "traces") == OtlpTarget("grpc", "http://collector:4317", {}, None, None)


def test_http_appends_the_signal_path_to_the_base_endpoint_but_not_to_a_per_signal_one() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "https://metrics.example/custom",
    }
    traces, metrics = otlp_target(env, "traces"), otlp_target(env, "metrics")
    assert traces is not None and traces.endpoint == "http://collector:4318/v1/traces"
    assert metrics is not None and metrics.endpoint == "https://metrics.example/custom"


def test_per_signal_settings_win_and_none_turns_a_signal_off() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "2500",
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
        "OTEL_METRICS_EXPORTER": "none",
    }
    target = otlp_target(env, "traces")
    assert target is not None
    assert (target.protocol, target.timeout, target.insecure) == ("http/protobuf", 2.5, True)
    assert otlp_target(env, "metrics") is None


def test_headers_are_parsed_url_decoded_and_never_echoed_when_malformed() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317",
        "OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Bearer%20s3cr3t, x-tenant = blue",
    }
    target = otlp_target(env, "traces")
    assert target is not None and target.headers == {"authorization": "Bearer s3cr3t", "x-tenant": "blue"}
    with pytest.raises(ConfigError) as bad:
        otlp_target({**env, "OTEL_EXPORTER_OTLP_HEADERS": "tokenWithoutKey-s3cr3t"}, "traces")
    assert "s3cr3t" not in str(bad.value)


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", "not supported"),
        ("OTEL_TRACES_EXPORTER", "zipkin", "not supported"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon", "milliseconds"),
    ],
)
def test_bad_settings_are_config_errors(name: str, value: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        otlp_target({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", name: value}, "traces")


@pytest.mark.parametrize(
    ("env", "says"),
    [
        (
            {"OTEL_BSP_SCHEDULE_DELAY": "soon"},
            "OTEL_BSP_SCHEDULE_DELAY='soon' is not a number of milliseconds",
        ),
        ({"OTEL_BSP_SCHEDULE_DELAY": "0"}, "OTEL_BSP_SCHEDULE_DELAY='0' must be positive"),
        ({"OTEL_BSP_MAX_QUEUE_SIZE": "-5"}, "OTEL_BSP_MAX_QUEUE_SIZE='-5' must be positive"),
        ({"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "many"}, "is not a number of spans"),
        ({"OTEL_BSP_MAX_QUEUE_SIZE": "100"}, r"OTEL_BSP_MAX_EXPORT_BATCH_SIZE \(512\) must not exceed"),
    ],
)
def test_bad_batch_settings_are_config_errors(env: dict[str, str], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        batch_span_processor(InMemorySpanExporter(), env)


def test_the_batch_processor_takes_the_otel_bsp_settings() -> None:
    env = {"OTEL_BSP_SCHEDULE_DELAY": "250", "OTEL_BSP_MAX_QUEUE_SIZE": "100",
           "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "10"}  # fmt: skip
    processor = batch_span_processor(InMemorySpanExporter(), env)
    try:
        assert (processor.schedule_delay, processor.max_queue_size, processor.max_export_batch_size) == (
            0.25, 100, 10,
        )  # fmt: skip
    finally:
        processor.shutdown()
    default = batch_span_processor(InMemorySpanExporter(), {})
    try:
        assert (default.schedule_delay, default.max_queue_size, default.max_export_batch_size) == (
            5,
            2048,
            512,
        )
    finally:
        default.shutdown()


def test_a_bad_metric_export_interval_is_a_config_error() -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_METRIC_EXPORT_INTERVAL": "-1"}
    with pytest.raises(ConfigError, match="OTEL_METRIC_EXPORT_INTERVAL='-1' must be positive"):
        meter_provider("svc", env=env)


def test_sdk_disabled_exports_nothing_and_service_name_can_be_overridden() -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_SDK_DISABLED": "true"}
    assert tracer_provider("svc", env=env)._active_span_processor._span_processors == ()
    renamed = tracer_provider("svc", env={"OTEL_SERVICE_NAME": "other"})
    assert renamed.resource.attributes["service.name"] == "other"


@dataclass
class Receiver:
    """A real OTLP/HTTP endpoint: what each POST carried, by path."""

    url: str = ""
    bodies: dict[str, list[bytes]] = field(default_factory=dict)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    got = Receiver()

    async def accept(request: web.Request) -> web.Response:
        got.bodies.setdefault(request.path, []).append(await request.read())
        return web.Response(body=b"", content_type="application/x-protobuf")

    app = web.Application()
    app.router.add_post("/v1/{signal}", accept)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    got.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield got
    await runner.cleanup()


async def test_spans_are_exported_to_the_endpoint_of_the_mapping(receiver: Receiver) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}
    provider = tracer_provider("driftwarden-test", env=env)
    with (
        provider.get_tracer("t").start_as_current_span("outer"),
        provider.get_tracer("t").start_span("inner"),
    ):
        pass
    # The exporter posts from the calling thread; the receiver lives on this event loop.
    assert await asyncio.to_thread(provider.force_flush)
    await asyncio.to_thread(provider.shutdown)
    request = ExportTraceServiceRequest()
    request.ParseFromString(b"".join(receiver.bodies["/v1/traces"]))
    (resource_spans,) = request.resource_spans
    service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}["service.name"]
    assert service == "driftwarden-test"
    names = sorted(s.name for scope in resource_spans.scope_spans for s in scope.spans)
    assert names == ["inner", "outer"]


@dataclass
class GrpcReceiver:
    """A real OTLP/gRPC TraceService: every request it decoded."""

    endpoint: str = ""
    requests: list[ExportTraceServiceRequest] = field(default_factory=list)


@pytest.fixture
def grpc_receiver() -> Iterator[GrpcReceiver]:
    got = GrpcReceiver()

    class Traces(TraceServiceServicer):
        def Export(self, request: ExportTraceServiceRequest, context: Any) -> ExportTraceServiceResponse:
            got.requests.append(request)
            return ExportTraceServiceResponse()

    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    add_TraceServiceServicer_to_server(Traces(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    got.endpoint = f"http://127.0.0.1:{port}"
    yield got
    server.stop(grace=None)


def test_the_span_export_switch_is_read_from_the_mapping() -> None:
    assert span_export({}) == "wire"
    assert span_export({"DRIFTWARDEN_SPAN_EXPORT": ""}) == "wire"
    assert span_export({"DRIFTWARDEN_SPAN_EXPORT": "wire"}) == "wire"
    assert span_export({"DRIFTWARDEN_SPAN_EXPORT": " SDK "}) == "sdk"
    with pytest.raises(ConfigError, match="DRIFTWARDEN_SPAN_EXPORT='otlp' is not supported"):
        span_export({"DRIFTWARDEN_SPAN_EXPORT": "otlp"})
    with pytest.raises(ConfigError, match="DRIFTWARDEN_SPAN_EXPORT"):
        tracer_provider(
            "svc", env={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "DRIFTWARDEN_SPAN_EXPORT": "both"}
        )


def _processor(provider: TracerProvider) -> Any:
    (processor,) = provider._active_span_processor._span_processors
    return processor


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
@pytest.mark.parametrize("path", ["wire", "sdk"])
async def test_both_span_export_paths_export_real_spans(
    path: str, protocol: str, receiver: Receiver, grpc_receiver: GrpcReceiver
) -> None:
    endpoint = grpc_receiver.endpoint if protocol == "grpc" else receiver.url
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
           "DRIFTWARDEN_SPAN_EXPORT": path}  # fmt: skip
    provider = tracer_provider("driftwarden-test", env=env)
    processor = _processor(provider)
    if path == "sdk":  # the SDK's own processor and exporter, none of driftwarden's classes
        assert type(processor) is BatchSpanProcessor
        assert type(processor.span_exporter).__module__.startswith("opentelemetry.exporter.otlp.proto.")
    else:
        assert type(processor) is WireBatchSpanProcessor
        assert type(processor.exporter) is (GrpcBatchExporter if protocol == "grpc" else HttpBatchExporter)
    tracer = provider.get_tracer("driftwarden.webhook")
    with (
        tracer.start_as_current_span("admission.review", attributes={"driftwarden.decision": "denied"}),
        tracer.start_span("inner", attributes={"driftwarden.fields": ("spec.replicas",)}),
    ):
        pass
    assert await asyncio.to_thread(provider.force_flush)
    await asyncio.to_thread(provider.shutdown)
    if protocol == "grpc":
        requests = grpc_receiver.requests
    else:
        requests = [ExportTraceServiceRequest.FromString(body) for body in receiver.bodies["/v1/traces"]]
    spans = {}
    for request in requests:
        for resource_spans in request.resource_spans:
            service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            assert service["service.name"] == "driftwarden-test"
            spans |= {s.name: s for scope in resource_spans.scope_spans for s in scope.spans}
    assert sorted(spans) == ["admission.review", "inner"]
    review, inner = spans["admission.review"], spans["inner"]
    assert inner.parent_span_id == review.span_id and inner.trace_id == review.trace_id
    assert {a.key: a.value.string_value for a in review.attributes} == {"driftwarden.decision": "denied"}
    (fields,) = inner.attributes
    assert [v.string_value for v in fields.value.array_value.values] == ["spec.replicas"]


async def test_the_sdk_processor_takes_the_otel_bsp_settings_from_the_mapping() -> None:
    # A batch of 2 leaves as soon as it is full; with the SDK's defaults (512, every 5 s) it would wait
    # longer than the 3 s allowed here.
    env = {"OTEL_BSP_SCHEDULE_DELAY": "600000", "OTEL_BSP_MAX_QUEUE_SIZE": "4",
           "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "2"}  # fmt: skip
    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(sdk_batch_span_processor(exported, env))
    for name in ("one", "two"):
        provider.get_tracer("t").start_span(name).end()

    async def sent() -> bool:
        return len(exported.get_finished_spans()) == 2

    try:
        await eventually(sent, seconds=3)
    finally:
        await asyncio.to_thread(provider.shutdown)
    with pytest.raises(ConfigError, match="must not exceed"):
        sdk_batch_span_processor(exported, {"OTEL_BSP_MAX_QUEUE_SIZE": "10"})


async def test_metrics_are_exported_to_the_endpoint_of_the_mapping(receiver: Receiver) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}
    metering = meter_provider("driftwarden-test", env=env)
    assert metering.exporting
    instruments = Instruments.from_meter(metering.provider.get_meter("t"))
    instruments.record_admission(decision="denied", operation="UPDATE", endpoint="validate", seconds=0.002)
    instruments.record_drift_healed("ns/app", "apps/Deployment", latency=0.4)
    assert await asyncio.to_thread(metering.provider.force_flush)
    await asyncio.to_thread(metering.shutdown)
    names: set[str] = set()
    for body in receiver.bodies["/v1/metrics"]:
        request = ExportMetricsServiceRequest()
        request.ParseFromString(body)
        names |= {m.name for rm in request.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    assert {
        "driftwarden_admission_requests",
        "driftwarden_admission_duration_seconds",
        "driftwarden_drift_healed",
        "driftwarden_heal_latency_seconds",
    } <= names


@pytest.mark.parametrize(
    ("settings", "description"),
    [
        ({}, "ParentBased{root:AlwaysOnSampler"),
        ({"OTEL_TRACES_SAMPLER": "always_off"}, "AlwaysOffSampler"),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"},
         "TraceIdRatioBased{0.25}"),
        ({"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"},
         "ParentBased{root:TraceIdRatioBased{0.1}"),
    ],
)  # fmt: skip
def test_the_sampler_comes_from_the_mapping(settings: dict[str, str], description: str) -> None:
    assert sampler(settings).get_description().startswith(description)


def test_a_ratio_of_zero_records_nothing_and_bad_samplers_are_config_errors() -> None:
    provider = tracer_provider(
        "svc", env={"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"}
    )
    with provider.get_tracer("t").start_as_current_span("dropped") as span:
        assert not span.is_recording()
    with pytest.raises(ConfigError, match="not supported"):
        sampler({"OTEL_TRACES_SAMPLER": "jaeger_remote"})
    with pytest.raises(ConfigError, match="between 0 and 1"):
        sampler({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "3"})


def test_without_an_exporter_spans_are_not_recorded_but_still_carry_a_trace_context() -> None:
    # Issue 17: a span recorded only to be dropped cost the webhook about 30 µs per review.
    quiet = tracer_provider("svc", env={}).get_tracer("t")
    with quiet.start_as_current_span("admission.review") as span:
        assert not span.is_recording()
        context = span.get_span_context()
        assert context.is_valid and context.trace_id != 0 and not context.trace_flags.sampled
    shown = tracer_provider("svc", env={}, console=True).get_tracer("t")
    with contextlib.redirect_stdout(io.StringIO()), shown.start_as_current_span("admission.review") as span:
        assert span.is_recording()
    exporting = tracer_provider("svc", env={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"})
    try:  # the configured sampler (every span by default), not ALWAYS_OFF; no span is sent anywhere here
        assert exporting.sampler.get_description() == sampler({}).get_description()
    finally:
        exporting.shutdown()
