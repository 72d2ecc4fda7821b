"""driftwarden.telemetry.otlp.wire writes exactly the OTLP request the SDK's own encoder builds, only
faster."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)

from driftwarden.telemetry.otlp.wire import encode


def _spans(make: Callable[[Any], None], *, resource: Resource | None = None) -> list[ReadableSpan]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=resource or Resource.create({"service.name": "driftwarden-webhook"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    make(provider)
    return list(exporter.get_finished_spans())


def _same(spans: list[ReadableSpan]) -> None:
    ours = ExportTraceServiceRequest.FromString(encode(spans))
    assert ours == encode_spans(spans)


def admission(provider: TracerProvider) -> None:
    tracer = provider.get_tracer("driftwarden.webhook", "0.1.0")
    with tracer.start_as_current_span("admission.review", kind=SpanKind.SERVER) as span:
        fields = ["spec.replicas", "spec.template.spec.containers[name=web].image"]
        span.set_attributes({"driftwarden.decision": "denied", "driftwarden.violation": True,
                             "driftwarden.fields": fields, "k8s.namespace.name": "production",
                             "count": -3, "ratio": 0.25, "empty": ""})  # fmt: skip
        span.set_status(Status(StatusCode.ERROR, "driftwarden: Deployment production/web is managed by Git"))


def story(provider: TracerProvider) -> None:
    remote = SpanContext(0x1234, 0x5678, is_remote=True, trace_flags=TraceFlags(1))
    tracer = provider.get_tracer("driftwarden.auditor")
    with tracer.start_as_current_span("auditor.heal", links=[Link(remote, {"why": "flagged"})]) as heal:
        heal.add_event("healed", {"object": "apps/Deployment production/web"})
        with tracer.start_as_current_span("apply", kind=SpanKind.CLIENT) as child:
            child.set_status(Status(StatusCode.OK))
    parent = set_span_in_context(NonRecordingSpan(remote))
    with tracer.start_as_current_span("under-a-remote-parent", context=parent):
        pass
    with provider.get_tracer("other-scope").start_as_current_span("second scope", kind=SpanKind.CONSUMER):
        pass


@pytest.mark.parametrize("make", [admission, story], ids=["admission", "linked-story"])
def test_the_bytes_decode_to_the_sdks_own_request(make: Callable[[Any], None]) -> None:
    _same(_spans(make))


values = st.one_of(
    st.text(max_size=20), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False), st.lists(st.text(max_size=5), max_size=3),
    st.lists(st.booleans(), max_size=3), st.lists(st.integers(min_value=0, max_value=2), max_size=3),
)  # fmt: skip


@given(st.dictionaries(st.text(min_size=1, max_size=10), values, max_size=8), st.text(max_size=10))
def test_any_attributes_encode_like_the_sdk(attributes: dict[str, Any], name: str) -> None:
    def make(provider: TracerProvider) -> None:
        with provider.get_tracer("t").start_as_current_span(name or "span") as span:
            span.set_attributes(attributes)

    _same(_spans(make))


def test_equal_values_of_different_types_are_not_confused_by_the_cache() -> None:
    # True == 1 and hash(True) == hash(1): each must still encode as its own type, in either order.
    for first, second in ((True, 1), (1, True), (1.0, 1), (("a",), ["a"])):

        def make(provider: TracerProvider, first: Any = first, second: Any = second) -> None:
            tracer = provider.get_tracer("t")
            for value in (first, second, first):
                with tracer.start_as_current_span("span") as span:
                    span.set_attribute("same.key", value)

        _same(_spans(make))
