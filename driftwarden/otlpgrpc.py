"""The OTLP/gRPC span exporter with driftwarden's own wire encoder (driftwarden.otlpwire).

Adapter: the SDK's gRPC exporter does the sending (channel, retries, backoff, reconnects, headers, TLS);
only the request changes. driftwarden.otlpwire writes the serialized ``ExportTraceServiceRequest`` itself,
and the stub here hands those bytes to gRPC as they are, instead of the SDK building a protobuf object
field by field and gRPC serializing it again. Imported only when OTLP/gRPC is configured.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace import ReadableSpan

from driftwarden.otlpwire import encode

EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


class RawTraceServiceStub:
    """``TraceService.Export`` whose request is already serialized: gRPC sends the bytes unchanged."""

    def __init__(self, channel: Any) -> None:  # a grpc.Channel (grpcio ships no type hints)
        # No request serializer: gRPC passes bytes through as the message.
        self.Export = channel.unary_unary(
            EXPORT_METHOD,
            request_serializer=None,
            response_deserializer=ExportTraceServiceResponse.FromString,
        )


class FastGrpcSpanExporter(OTLPSpanExporter):
    """``OTLPSpanExporter`` that sends driftwarden.otlpwire's bytes (the same message, built faster)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        # The SDK makes its client from ``_stub`` now and again whenever it reconnects.
        self._stub = RawTraceServiceStub
        self._client = RawTraceServiceStub(self._channel)  # type: ignore[assignment]  # typed None there

    def _translate_data(self, data: Sequence[ReadableSpan]) -> bytes:  # type: ignore[override]
        # The request the SDK's client sends is opaque to it: bytes suit the raw stub above.
        return encode(data)
