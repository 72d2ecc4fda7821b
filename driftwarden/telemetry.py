"""OpenTelemetry setup shared by the webhook and the auditor.

Configured by the standard ``OTEL_*`` environment variables (passed in as a mapping by the entry point)
plus one console flag. With no exporter configured, spans are created and dropped in-process: no network
traffic. It must not create spans itself; the processes do that with the tracer it returns.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)

from driftwarden.errors import ConfigError


def _otlp_exporter(env: Mapping[str, str]) -> SpanExporter | None:
    if not (env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")):
        return None
    protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    # The exporters read their own OTEL_EXPORTER_OTLP_* variables (endpoint, headers, timeout). Imported
    # lazily: grpc is slow to import and not needed when no exporter is configured.
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Grpc  # noqa: PLC0415

        return Grpc()
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as Http  # noqa: PLC0415

        return Http()
    raise ConfigError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported (grpc or http/protobuf)")


def tracer_provider(service_name: str, *, env: Mapping[str, str], console: bool = False) -> TracerProvider:
    """A TracerProvider for ``service_name`` (``OTEL_SERVICE_NAME`` wins) with the configured exporters."""
    name = env.get("OTEL_SERVICE_NAME") or service_name
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
    exporter = _otlp_exporter(env)
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    if console:
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    return provider
