"""OTLP span exporters that send batches driftwarden.telemetry.otlp.wire has already encoded (gRPC and HTTP).

Adapter: the SDK's exporters still do the sending (channel or session, retries, backoff, reconnects,
headers, TLS, compression); only what they send changes. ``driftwarden.telemetry.otlp.batch`` encodes every
span as it
ends and hands these exporters an ``EncodedBatch``: a ready ``ExportTraceServiceRequest`` that goes on the
wire as it is, instead of the SDK building a protobuf object per span, attribute and value and serializing
it again. Imported only when an OTLP endpoint is configured. It must not encode or batch anything itself.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as SdkGrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as SdkHttpSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

log = logging.getLogger(__name__)

EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@dataclass(frozen=True)
class EncodedBatch:
    """A serialized ``ExportTraceServiceRequest`` of ``count`` spans
    (driftwarden.telemetry.otlp.wire.request)."""

    payload: bytes
    count: int

    def __len__(self) -> int:  # the SDK's exporters count what they export with len()
        return self.count


class RawTraceServiceStub:
    """``TraceService.Export`` whose request is already serialized: gRPC sends the bytes unchanged."""

    def __init__(self, channel: Any) -> None:  # a grpc.Channel (grpcio ships no type hints)
        # No request serializer: gRPC passes bytes through as the message.
        self.Export = channel.unary_unary(
            EXPORT_METHOD,
            request_serializer=None,
            response_deserializer=ExportTraceServiceResponse.FromString,
        )


class GrpcBatchExporter(SdkGrpcSpanExporter):
    """The SDK's OTLP/gRPC span exporter, sending ``EncodedBatch`` payloads through a raw stub."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        # The SDK makes its client from ``_stub`` now and again whenever it reconnects.
        self._stub = RawTraceServiceStub
        self._client = RawTraceServiceStub(self._channel)  # type: ignore[assignment]  # typed None there

    def _translate_data(self, data: Sequence[ReadableSpan]) -> bytes:  # type: ignore[override]
        if not isinstance(data, EncodedBatch):
            raise TypeError("GrpcBatchExporter exports driftwarden.telemetry.otlp.batch's EncodedBatch only")
        return data.payload


class HttpBatchExporter(SdkHttpSpanExporter):
    """The SDK's OTLP/HTTP (protobuf) span exporter, posting ``EncodedBatch`` payloads as they are."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if not isinstance(spans, EncodedBatch):
            raise TypeError("HttpBatchExporter exports driftwarden.telemetry.otlp.batch's EncodedBatch only")
        if self._shutdown:
            return SpanExportResult.FAILURE
        result = self._client.export(spans.payload)  # the SDK's session: retries and backoff included
        if result.success:
            return SpanExportResult.SUCCESS
        log.warning("OTLP/HTTP export of %d spans failed (status %s)", spans.count, result.status_code)
        return SpanExportResult.FAILURE
