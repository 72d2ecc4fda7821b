"""driftwarden's metrics: one set of instrument names for both processes, and ``/metrics`` to scrape them.

``Instruments`` is built from a Meter (driftwarden.telemetry.setup.meter_provider) by the webhook and the
auditor alike, so the two can never disagree on a name or a label. ``ScrapeReader`` is OpenTelemetry's
Prometheus reader (opentelemetry-exporter-prometheus) on a prometheus_client registry of its own, and
``prometheus_text`` is prometheus_client's rendering of it in the Prometheus text format 0.0.4;
``metrics_handler`` and ``metrics_server`` serve it from aiohttp (the webhook adds the route to its HTTPS
app; the auditor runs the small plain-HTTP server). Labels carry Application names, kinds and decisions:
never object content. It must not format the exposition itself: the libraries do.

OpenTelemetry instrument names have no ``_total``; the Prometheus rendering adds it to counters, as the
OpenTelemetry → Prometheus compatibility rules (and the Collector) do.

The webhook counts every review, so its counter is the one kept as plain numbers (``AdmissionCounts``)
and read by the readers through an observable counter's callback when they collect: the SDK's work per
``add`` (attribute sets, a lock, the aggregation, for each reader) cost about 7 µs a review (issue 17).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web
from aiohttp.typedefs import Handler
from opentelemetry.context import Context
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import (
    CallbackOptions,
    Counter,
    Histogram,
    Meter,
    NoOpMeter,
    ObservableCounter,
    Observation,
)
from opentelemetry.util.types import Attributes
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, generate_latest

from driftwarden.serving import Listening, serving

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
"""The classic text format: prometheus_client's ``generate_latest`` writes it, every Prometheus reads it."""
SYNC_STATUSES = ("Synced", "OutOfSync", "Unknown")
HEALTH_STATUSES = ("Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown")
# Admission reviews are answered in milliseconds; heals and passes take tenths of seconds to a minute.
ADMISSION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
HEAL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
RECONCILE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class Gauge(Protocol):
    """The synchronous gauge ``Meter.create_gauge`` returns. The pinned OpenTelemetry API exports its
    class only under an underscored name, so driftwarden names what it uses of it: ``set``."""

    def set(self, amount: float, attributes: Attributes = None, context: Context | None = None) -> None: ...


AdmissionKey = tuple[str, str, str]
"""A review's ``decision``, ``operation`` and ``endpoint`` labels: a few dozen combinations at most."""


class AdmissionCounts:
    """Reviews answered, by label values: plain numbers the event loop adds to, the readers observe.

    Only the event loop writes; a reader's thread takes a copy, which the GIL makes whole (``dict.copy``
    runs no Python code), so it never sees a count half-written. Cumulative, as the counter is.
    """

    def __init__(self) -> None:
        self.counts: dict[AdmissionKey, int] = {}

    def add(self, key: AdmissionKey) -> None:
        counts = self.counts
        counts[key] = counts.get(key, 0) + 1

    def observe(self, _options: CallbackOptions) -> Iterator[Observation]:
        for (decision, operation, endpoint), count in self.counts.copy().items():
            yield Observation(count, {"decision": decision, "operation": operation, "endpoint": endpoint})


@dataclass(frozen=True)
class Instruments:
    """Every instrument driftwarden records; ``Instruments.noop()`` when nothing is measured.

    ``admission_requests`` is an observable counter that reads ``admission_counts``.
    """

    admission_requests: Counter | ObservableCounter
    admission_duration: Histogram
    drift_detected: Counter
    drift_healed: Counter
    heal_latency: Histogram
    reconcile_duration: Histogram
    app_sync_status: Gauge
    app_health_status: Gauge
    admission_counts: AdmissionCounts = field(default_factory=AdmissionCounts, compare=False)

    @classmethod
    def from_meter(cls, meter: Meter) -> Instruments:
        counts = AdmissionCounts()
        return cls(
            admission_requests=meter.create_observable_counter(
                "driftwarden_admission_requests", callbacks=[counts.observe], unit="1",
                description="Admission reviews answered, by decision, operation and endpoint"),
            admission_duration=meter.create_histogram(
                "driftwarden_admission_duration_seconds", unit="s",
                description="Time to read, decide and answer one admission review",
                explicit_bucket_boundaries_advisory=ADMISSION_BUCKETS),
            drift_detected=meter.create_counter(
                "driftwarden_drift_detected", unit="1",
                description="Out-of-band changes to Git-managed objects seen by the auditor"),
            drift_healed=meter.create_counter(
                "driftwarden_drift_healed", unit="1",
                description="Drifted objects put back to what Git says"),
            heal_latency=meter.create_histogram(
                "driftwarden_heal_latency_seconds", unit="s",
                description="From the out-of-band edit to the heal that undid it",
                explicit_bucket_boundaries_advisory=HEAL_BUCKETS),
            reconcile_duration=meter.create_histogram(
                "driftwarden_reconcile_duration_seconds", unit="s",
                description="One full reconcile pass of one Application",
                explicit_bucket_boundaries_advisory=RECONCILE_BUCKETS),
            app_sync_status=meter.create_gauge(
                "driftwarden_app_sync_status", unit="1",
                description="1 for the Application's current sync status, 0 for the others"),
            app_health_status=meter.create_gauge(
                "driftwarden_app_health_status", unit="1",
                description="1 for the Application's current health status, 0 for the others"),
            admission_counts=counts,
        )  # fmt: skip

    @classmethod
    def noop(cls) -> Instruments:
        return cls.from_meter(NoOpMeter("driftwarden"))

    def record_admission(self, *, decision: str, operation: str, endpoint: str, seconds: float) -> None:
        """One answered review; ``decision``: allowed, denied, warned, breakglass, off, error or invalid."""
        self.admission_counts.add((decision, operation, endpoint))
        labels = {"decision": decision, "operation": operation, "endpoint": endpoint}
        self.admission_duration.record(seconds, labels)

    def record_reconcile(self, app: str, *, seconds: float, sync: str, health: str) -> None:
        """One pass of ``app`` (``namespace/name``) and the sync and health status it left."""
        self.reconcile_duration.record(seconds, {"app": app})
        self.record_app_status(app, sync=sync, health=health)

    def record_app_status(self, app: str, *, sync: str, health: str) -> None:
        """Set the status gauges: 1 for the current status of each, 0 for every other known one."""
        for status in _with(SYNC_STATUSES, sync):
            self.app_sync_status.set(1 if status == sync else 0, {"app": app, "status": status})
        for status in _with(HEALTH_STATUSES, health):
            self.app_health_status.set(1 if status == health else 0, {"app": app, "status": status})

    def record_drift_detected(self, app: str, kind: str) -> None:
        """An out-of-band change to a managed object of ``kind`` (e.g. ``apps/Deployment``) of ``app``."""
        self.drift_detected.add(1, {"app": app, "kind": kind})

    def record_drift_healed(self, app: str, kind: str, latency: float | None = None) -> None:
        """A heal of an object of ``kind``; ``latency``: seconds since the edit, when its time is known."""
        self.drift_healed.add(1, {"app": app, "kind": kind})
        if latency is not None and latency >= 0:
            self.heal_latency.record(latency, {"app": app, "kind": kind})


def _with(known: Sequence[str], current: str) -> Iterable[str]:
    return known if current in known else (*known, current)


# --- /metrics ---------------------------------------------------------------------------------------


class ScrapeReader(PrometheusMetricReader):
    """OpenTelemetry's Prometheus reader, collected when ``/metrics`` is scraped and idle otherwise.

    It registers on a registry of its own, never prometheus_client's global one, so each MeterProvider
    (a process has one; tests make many) renders only its own instruments. No ``target_info`` family and no
    ``otel_scope_*`` labels: the metrics keep the names and labels docs/observability.md lists, and the
    service is the scrape target's job label already.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        super().__init__(disable_target_info=True, scope_info_enabled=False, registry=self.registry)


def prometheus_text(reader: ScrapeReader) -> str:
    """Collect ``reader`` now and render it (what ``GET /metrics`` answers); empty when nothing was
    recorded."""
    return generate_latest(reader.registry).decode()


def metrics_handler(reader: ScrapeReader) -> Handler:
    """An aiohttp handler for ``GET /metrics`` over ``reader``."""

    async def handle(_request: web.Request) -> web.Response:
        body = generate_latest(reader.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    return handle


@contextlib.asynccontextmanager
async def metrics_server(
    reader: ScrapeReader, *, host: str = "0.0.0.0", port: int = 8081
) -> AsyncIterator[Listening | None]:
    """Plain HTTP ``/metrics`` (and ``/healthz``) for the block; None, and nothing listening, when ``port``
    is 0 (off)."""
    if port == 0:
        yield None
        return
    app = web.Application()
    app.router.add_get("/metrics", metrics_handler(reader))
    app.router.add_get("/healthz", _ok)
    async with serving(app, host=host, port=port, what="metrics", shutdown_timeout=2.0) as listening:
        yield listening


async def _ok(_request: web.Request) -> web.Response:
    return web.Response(text="ok")
