"""OpenTelemetry setup shared by the webhook and the auditor: traces and metrics.

Configured by the standard ``OTEL_*`` environment variables (passed in as a mapping by the entry point)
plus one console flag. Every exporter setting (endpoint, headers, timeout, insecure) is read from that
mapping and handed to the exporter explicitly, so a test or the demo can point one process at a collector
without touching the real environment. With no exporter configured, spans are created and dropped
in-process and metrics are only aggregated in memory for ``/metrics``: no network traffic. It must not
create spans or instruments itself; the processes do that with the tracer and meter it returns.

Variables: ``OTEL_SERVICE_NAME``, ``OTEL_SDK_DISABLED``, ``OTEL_EXPORTER_OTLP_ENDPOINT`` (and the per-signal
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` / ``..._METRICS_ENDPOINT``), ``OTEL_EXPORTER_OTLP_PROTOCOL``
(``grpc`` or ``http/protobuf``, also per signal), ``OTEL_EXPORTER_OTLP_HEADERS``, ``..._TIMEOUT``,
``..._INSECURE``, ``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER`` (``none`` turns a signal's export
off), ``OTEL_TRACES_SAMPLER`` (+ ``_ARG``), ``OTEL_BSP_SCHEDULE_DELAY`` (milliseconds),
``OTEL_BSP_MAX_QUEUE_SIZE``, ``OTEL_BSP_MAX_EXPORT_BATCH_SIZE`` and ``OTEL_METRIC_EXPORT_INTERVAL``
(milliseconds); and driftwarden's ``DRIFTWARDEN_SPAN_EXPORT`` (``wire``, the default: driftwarden's span
encoder; ``sdk``: the SDK's own batch processor and OTLP exporter, the way back if an SDK release and
driftwarden.telemetry.otlp ever disagree).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)

from driftwarden.errors import ConfigError
from driftwarden.telemetry.metrics import ScrapeReader
from driftwarden.telemetry.otlp.batch import WireBatchSpanProcessor

Signal = Literal["traces", "metrics"]
SpanExport = Literal["wire", "sdk"]
"""Which span export path: driftwarden's encoder (driftwarden.telemetry.otlp) or the SDK's own."""
SPAN_EXPORT = "DRIFTWARDEN_SPAN_EXPORT"
DEFAULT_METRIC_EXPORT_INTERVAL_MS = 60_000
SDK_EXPORT_TIMEOUT_MS = 30_000
"""The SDK's own default; given so that its processor does not read ``OTEL_BSP_EXPORT_TIMEOUT`` itself."""


@dataclass(frozen=True)
class OtlpTarget:
    """Where and how one signal is exported over OTLP, read from the ``OTEL_*`` mapping."""

    protocol: str
    endpoint: str
    headers: Mapping[str, str]
    timeout: float | None
    insecure: bool | None


def _per_signal(env: Mapping[str, str], signal: Signal, name: str) -> str:
    """``OTEL_EXPORTER_OTLP_<SIGNAL>_<NAME>``, else ``OTEL_EXPORTER_OTLP_<NAME>``, else empty."""
    return env.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_{name}") or env.get(f"OTEL_EXPORTER_OTLP_{name}", "")


def _headers(raw: str) -> dict[str, str]:
    """``key1=value1,key2=value2`` (values URL-encoded, as the spec says) → a dict."""
    headers: dict[str, str] = {}
    for item in raw.split(","):
        name, sep, value = item.partition("=")
        if not item.strip():
            continue
        if not sep or not name.strip():
            # The value may be a credential: name the variable, never echo it.
            raise ConfigError("OTEL_EXPORTER_OTLP_HEADERS must be a list of key=value pairs")
        headers[unquote(name.strip()).lower()] = unquote(value.strip())
    return headers


def otlp_target(env: Mapping[str, str], signal: Signal) -> OtlpTarget | None:
    """The OTLP target of ``signal``, or None when no endpoint is set or the signal's exporter is ``none``."""
    exporters = env.get(f"OTEL_{signal.upper()}_EXPORTER", "otlp").strip().lower()
    if exporters == "none":
        return None
    if exporters not in {"otlp", ""}:
        raise ConfigError(f"OTEL_{signal.upper()}_EXPORTER={exporters!r} is not supported (otlp or none)")
    specific = env.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT", "")
    base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")
    if not (specific or base):
        return None
    protocol = _per_signal(env, signal, "PROTOCOL") or "grpc"
    if protocol not in {"grpc", "http/protobuf"}:
        raise ConfigError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported (grpc or http/protobuf)"
        )
    endpoint = specific
    if not endpoint:
        # Over HTTP the base endpoint gets the signal's path; a per-signal endpoint is used as it is.
        endpoint = base if protocol == "grpc" else f"{base.rstrip('/')}/v1/{signal}"
    timeout = _per_signal(env, signal, "TIMEOUT")
    insecure = _per_signal(env, signal, "INSECURE").strip().lower()
    try:
        seconds = float(timeout) / 1000 if timeout else None
    except ValueError as exc:
        raise ConfigError(f"OTEL_EXPORTER_OTLP_TIMEOUT={timeout!r} is not a number of milliseconds") from exc
    return OtlpTarget(
        protocol=protocol, endpoint=endpoint, headers=_headers(_per_signal(env, signal, "HEADERS")),
        timeout=seconds, insecure=(insecure == "true") if insecure else None,
    )  # fmt: skip


def span_export(env: Mapping[str, str]) -> SpanExport:
    """``DRIFTWARDEN_SPAN_EXPORT``: ``wire`` (default) or ``sdk``; see ``tracer_provider``."""
    raw = env.get(SPAN_EXPORT, "").strip().lower() or "wire"
    if raw not in {"wire", "sdk"}:
        raise ConfigError(f"{SPAN_EXPORT}={raw!r} is not supported (wire or sdk)")
    return "sdk" if raw == "sdk" else "wire"


def _exporter_options(target: OtlpTarget) -> dict[str, Any]:
    """What every OTLP exporter of the SDK is told explicitly; the gRPC ones also take ``insecure``."""
    options: dict[str, Any] = {
        "endpoint": target.endpoint, "headers": dict(target.headers) or None, "timeout": target.timeout,
    }  # fmt: skip
    if target.protocol == "grpc":
        options["insecure"] = target.insecure
    return options


# The exporters are imported lazily: grpc is slow to import and not needed when no exporter is configured.


def _span_exporter(target: OtlpTarget, path: SpanExport) -> SpanExporter:
    options = _exporter_options(target)
    if path == "wire":
        from driftwarden.telemetry.otlp.export import GrpcBatchExporter, HttpBatchExporter  # noqa: PLC0415

        return GrpcBatchExporter(**options) if target.protocol == "grpc" else HttpBatchExporter(**options)
    if target.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter as GrpcSpans,
        )

        return GrpcSpans(**options)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter as HttpSpans,
    )

    return HttpSpans(**options)


def _metric_exporter(target: OtlpTarget) -> MetricExporter:
    options = _exporter_options(target)
    if target.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (  # noqa: PLC0415
            OTLPMetricExporter as Grpc,
        )

        return Grpc(**options)
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # noqa: PLC0415
        OTLPMetricExporter as Http,
    )

    return Http(**options)


def _disabled(env: Mapping[str, str]) -> bool:
    return env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def _resource(service_name: str, env: Mapping[str, str]) -> Resource:
    return Resource.create({SERVICE_NAME: env.get("OTEL_SERVICE_NAME") or service_name})


def sampler(env: Mapping[str, str]) -> Sampler:
    """``OTEL_TRACES_SAMPLER`` (+ ``OTEL_TRACES_SAMPLER_ARG``, a ratio); every span by default."""
    name = env.get("OTEL_TRACES_SAMPLER", "parentbased_always_on").strip().lower()
    raw = env.get("OTEL_TRACES_SAMPLER_ARG", "").strip()
    try:
        ratio = float(raw) if raw else 1.0
    except ValueError as exc:
        raise ConfigError(f"OTEL_TRACES_SAMPLER_ARG={raw!r} is not a number") from exc
    if not 0.0 <= ratio <= 1.0:
        raise ConfigError(f"OTEL_TRACES_SAMPLER_ARG={raw!r} must be between 0 and 1")
    base = name.removeprefix("parentbased_")
    if base not in {"always_on", "always_off", "traceidratio"}:
        raise ConfigError(f"OTEL_TRACES_SAMPLER={name!r} is not supported")
    root: Sampler = {"always_on": ALWAYS_ON, "always_off": ALWAYS_OFF}.get(base) or TraceIdRatioBased(ratio)
    return ParentBased(root) if name.startswith("parentbased_") else root


def tracer_provider(service_name: str, *, env: Mapping[str, str], console: bool = False) -> TracerProvider:
    """A TracerProvider for ``service_name`` (``OTEL_SERVICE_NAME`` wins) with the configured exporters.

    Spans go out through a batch processor that exports from its own thread, never on the event loop:
    driftwarden's, which encodes each span as it ends (driftwarden.telemetry.otlp), or with
    ``DRIFTWARDEN_SPAN_EXPORT=sdk`` the SDK's own ``BatchSpanProcessor`` and OTLP exporter, untouched.
    """
    configured = sampler(env)  # checked even when unused: a bad setting is an error at start-up
    target = None if _disabled(env) else otlp_target(env, "traces")
    # With nowhere to send spans, none is recorded (issue 17: recording a span only to drop it cost the
    # webhook about 30 µs per review); each still gets a trace context, for the drift stamp's traceparent.
    chosen = configured if target is not None or console else ALWAYS_OFF
    provider = TracerProvider(resource=_resource(service_name, env), sampler=chosen)
    if target is not None:
        path = span_export(env)
        exporter = _span_exporter(target, path)
        processor = sdk_batch_span_processor if path == "sdk" else batch_span_processor
        provider.add_span_processor(processor(exporter, env))
    if console:
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    return provider


@dataclass(frozen=True)
class Metering:
    """A MeterProvider and the Prometheus reader that ``/metrics`` renders (driftwarden.telemetry.metrics)."""

    provider: MeterProvider
    scrape: ScrapeReader
    exporting: bool
    """True when an OTLP metric exporter pushes every ``OTEL_METRIC_EXPORT_INTERVAL`` too."""

    def shutdown(self) -> None:
        """Flush the OTLP exporter (if any) and stop the readers; safe to call twice."""
        self.provider.shutdown()


def _positive(env: Mapping[str, str], name: str, default: float, *, unit: str = "milliseconds") -> float:
    """``env[name]`` as a positive number, ``default`` when unset; ConfigError naming the variable."""
    raw = env.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is not a number of {unit}") from exc
    if value <= 0:
        raise ConfigError(f"{name}={raw!r} must be positive")
    return value


@dataclass(frozen=True)
class BatchSettings:
    """``OTEL_BSP_*``, read from the mapping (never by the SDK from the process environment)."""

    max_queue_size: int
    max_export_batch_size: int
    schedule_delay_millis: float

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> BatchSettings:
        queue = int(_positive(env, "OTEL_BSP_MAX_QUEUE_SIZE", 2048, unit="spans"))
        batch = int(_positive(env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512, unit="spans"))
        if batch > queue:
            raise ConfigError(
                f"OTEL_BSP_MAX_EXPORT_BATCH_SIZE ({batch}) must not exceed OTEL_BSP_MAX_QUEUE_SIZE ({queue})"
            )
        return cls(queue, batch, _positive(env, "OTEL_BSP_SCHEDULE_DELAY", 5000))


def batch_span_processor(exporter: SpanExporter, env: Mapping[str, str]) -> WireBatchSpanProcessor:
    """driftwarden's span batch processor, tuned by ``OTEL_BSP_*`` as the SDK's own would be."""
    settings = BatchSettings.from_env(env)
    return WireBatchSpanProcessor(
        exporter,
        max_queue_size=settings.max_queue_size,
        max_export_batch_size=settings.max_export_batch_size,
        schedule_delay=settings.schedule_delay_millis / 1000,
    )


def sdk_batch_span_processor(exporter: SpanExporter, env: Mapping[str, str]) -> BatchSpanProcessor:
    """The SDK's own span batch processor (``DRIFTWARDEN_SPAN_EXPORT=sdk``), tuned by the same settings."""
    settings = BatchSettings.from_env(env)
    return BatchSpanProcessor(
        exporter,
        max_queue_size=settings.max_queue_size,
        schedule_delay_millis=settings.schedule_delay_millis,
        max_export_batch_size=settings.max_export_batch_size,
        export_timeout_millis=SDK_EXPORT_TIMEOUT_MS,
    )


def meter_provider(service_name: str, *, env: Mapping[str, str]) -> Metering:
    """A MeterProvider for ``service_name`` that /metrics can scrape, and that pushes OTLP when configured.

    The scrape reader aggregates in memory (cumulative) and does no work until scraped; the OTLP reader
    exports from its own thread every ``OTEL_METRIC_EXPORT_INTERVAL`` milliseconds (default 60 s).
    """
    scrape = ScrapeReader()
    readers: list[MetricReader] = [scrape]
    target = None if _disabled(env) else otlp_target(env, "metrics")
    if target is not None:
        readers.append(
            PeriodicExportingMetricReader(
                _metric_exporter(target),
                export_interval_millis=_positive(
                    env, "OTEL_METRIC_EXPORT_INTERVAL", DEFAULT_METRIC_EXPORT_INTERVAL_MS
                ),
            )
        )
    provider = MeterProvider(metric_readers=readers, resource=_resource(service_name, env))
    return Metering(provider=provider, scrape=scrape, exporting=target is not None)
