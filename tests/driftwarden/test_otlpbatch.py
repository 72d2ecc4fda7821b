"""driftwarden.telemetry.otlp.batch: spans become OTLP bytes as they end, and leave in batches from one
thread.

The exporter here records the batches it is handed; every payload is decoded with the OpenTelemetry
protobufs and compared with what the SDK's own encoder makes of the very same spans.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from driftwarden.telemetry.otlp.batch import WireBatchSpanProcessor
from driftwarden.telemetry.otlp.export import EncodedBatch
from tests.support.waiting import eventually


class Recording(SpanExporter):
    """Keeps every batch; fails the first ``failures`` exports, by result or by raising."""

    def __init__(self, *, failures: int = 0, raises: bool = False) -> None:
        self.batches: list[EncodedBatch] = []
        self.failures, self.raises = failures, raises
        self.shut = False
        self.calls = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        assert isinstance(spans, EncodedBatch)
        self.calls += 1
        if self.calls <= self.failures:
            if self.raises:
                raise ConnectionError("collector gone")
            return SpanExportResult.FAILURE
        self.batches.append(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.shut = True


def _traced(
    processor: WireBatchSpanProcessor, **provider: Any
) -> tuple[TracerProvider, InMemorySpanExporter]:
    mirror = InMemorySpanExporter()
    resource = Resource.create({"service.name": "driftwarden-webhook"})
    tracing = TracerProvider(resource=resource, **provider)
    tracing.add_span_processor(processor)
    tracing.add_span_processor(SimpleSpanProcessor(mirror))  # the same spans, as the SDK sees them
    return tracing, mirror


def _spans(tracing: TracerProvider, count: int, *, scope: str = "driftwarden.webhook") -> None:
    tracer = tracing.get_tracer(scope)
    for number in range(count):
        with tracer.start_as_current_span("admission.review") as span:
            span.set_attributes({"driftwarden.decision": "denied", "k8s.resource.name": f"web-{number}"})


def _decoded(batches: list[EncodedBatch]) -> ExportTraceServiceRequest:
    merged = ExportTraceServiceRequest()
    for batch in batches:
        merged.MergeFromString(batch.payload)
    return merged


def test_what_leaves_is_exactly_what_the_sdk_would_encode() -> None:
    exporter = Recording()
    processor = WireBatchSpanProcessor(exporter, schedule_delay=60)
    tracing, mirror = _traced(processor)
    _spans(tracing, 3)
    _spans(tracing, 2, scope="driftwarden.auditor")
    assert exporter.batches == []  # nothing yet: fewer than a batch, and the delay has not passed
    assert processor.force_flush()
    (batch,) = exporter.batches
    assert batch.count == len(batch) == 5
    assert ExportTraceServiceRequest.FromString(batch.payload) == encode_spans(mirror.get_finished_spans())
    processor.shutdown()


def test_a_full_batch_is_sent_by_the_thread_without_waiting_for_the_delay() -> None:
    exporter = Recording()
    processor = WireBatchSpanProcessor(exporter, max_export_batch_size=64, schedule_delay=60)
    tracing, mirror = _traced(processor)
    _spans(tracing, 150)

    async def sent() -> bool:
        return sum(b.count for b in exporter.batches) >= 64  # a full batch woke the thread

    asyncio.run(eventually(sent, seconds=10))
    assert all(b.count <= 64 for b in exporter.batches)
    processor.shutdown()  # sends the rest
    assert sum(b.count for b in exporter.batches) == 150
    names = [s.attributes and s.attributes["k8s.resource.name"] for s in mirror.get_finished_spans()]
    decoded = _decoded(exporter.batches)
    sent_names = [
        {a.key: a.value.string_value for a in span.attributes}["k8s.resource.name"]
        for rs in decoded.resource_spans for ss in rs.scope_spans for span in ss.spans
    ]  # fmt: skip
    assert sent_names == names  # in the order they ended, none twice, none lost
    assert exporter.shut


def test_a_full_queue_drops_new_spans_and_counts_them(caplog: pytest.LogCaptureFixture) -> None:
    exporter = Recording()
    processor = WireBatchSpanProcessor(
        exporter, max_queue_size=10, max_export_batch_size=10, schedule_delay=60
    )
    with processor._export_lock:  # the thread may not drain the queue while it fills
        tracing, _ = _traced(processor)
        _spans(tracing, 15)
    assert processor.dropped == 5
    assert "span export queue full (10): dropping spans" in caplog.text
    assert processor.force_flush()
    assert sum(b.count for b in exporter.batches) == 10
    processor.shutdown()


@pytest.mark.parametrize("raises", [False, True], ids=["failed-result", "exception"])
def test_a_failed_export_is_reported_and_the_next_batch_still_goes(raises: bool) -> None:
    exporter = Recording(failures=1, raises=raises)
    processor = WireBatchSpanProcessor(exporter, schedule_delay=60)
    tracing, _ = _traced(processor)
    _spans(tracing, 2)
    assert processor.force_flush() is False
    _spans(tracing, 3)
    assert processor.force_flush() is True
    assert [b.count for b in exporter.batches] == [3]
    processor.shutdown()


def test_unsampled_spans_and_spans_after_shutdown_are_not_exported() -> None:
    exporter = Recording()
    processor = WireBatchSpanProcessor(exporter, schedule_delay=60)
    tracing, _ = _traced(processor, sampler=ALWAYS_OFF)
    _spans(tracing, 4)
    processor.shutdown()
    processor.shutdown()  # twice is fine
    sampled, _ = _traced(processor)
    _spans(sampled, 2)
    assert processor.force_flush()
    assert exporter.batches == [] and exporter.shut


def test_the_batch_size_must_fit_the_queue() -> None:
    with pytest.raises(ValueError, match="max_export_batch_size"):
        WireBatchSpanProcessor(Recording(), max_queue_size=10, max_export_batch_size=20)
