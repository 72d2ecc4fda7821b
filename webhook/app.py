"""The webhook's aiohttp applications: admission reviews on one, probes and metrics on the other.

Orchestration over the pure core (webhook.admission). ``make_app`` is the admission application, which
answers only ``POST /validate`` and ``/mutate``: handlers read the body within the API server's limits,
turn bad input into a clear 4xx (never a 500), call ``decision.decide`` and answer with
``response.build_response``, with a span and metrics per review. A review the rules fail on gets the
failsafe's conservative answer (webhook.admission.failsafe), never a 500 and never an allow of a managed
change. ``make_probe_app`` is ``/healthz``, ``/readyz`` and ``/metrics``, which the server
(webhook.server) serves on a separate plain-HTTP port, as Kubernetes components do. No Kubernetes API
call happens here: every fact is in the review.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from aiohttp import web
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from driftwarden.bounded import SPAN_LIMIT, shorten
from driftwarden.errors import AdmissionRequestError
from driftwarden.serving import LogThrottle
from driftwarden.telemetry.metrics import Instruments, ScrapeReader, metrics_handler
from driftwarden.telemetry.semconv import name_attribute_of_resource
from driftwarden.telemetry.tracecontext import traceparent
from webhook.admission.decision import Decision, decide
from webhook.admission.failsafe import contain
from webhook.admission.limits import MAX_BODY_BYTES
from webhook.admission.patches import drift_patch, unstamped
from webhook.admission.request import AdmissionRequest, read_admission_review
from webhook.admission.response import build_response, encode_json
from webhook.admission.settings import DecisionSettings

log = logging.getLogger(__name__)

SETTINGS: web.AppKey[DecisionSettings] = web.AppKey("settings")
TRACER: web.AppKey[trace.Tracer] = web.AppKey("tracer")
CLOCK: web.AppKey[Callable[[], dt.datetime]] = web.AppKey("clock")
INSTRUMENTS: web.AppKey[Instruments] = web.AppKey("instruments")
METRICS: web.AppKey[ScrapeReader | None] = web.AppKey("metrics")
SERVING: web.AppKey[list[bool]] = web.AppKey("serving")
"""One mutable flag: False once shutdown begins, so /readyz takes the pod out of the Service first."""
FAILURES: web.AppKey[LogThrottle] = web.AppKey("failures")
"""Logs an unexpected failure with its traceback at most once a minute: hostile input cannot flood the log."""

_IDENTITY_ENCODINGS = frozenset({"", "identity"})


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message, "status": status}, status=status)


async def _read_review(request: web.Request) -> AdmissionRequest:
    """Body → AdmissionRequest; AdmissionRequestError carries the HTTP status to answer with."""
    if request.content_type != "application/json":
        raise AdmissionRequestError(
            f"Content-Type must be application/json, not {request.content_type!r}", status=415
        )
    if (request.charset or "utf-8").lower() != "utf-8":
        raise AdmissionRequestError(f"charset must be utf-8, not {request.charset!r}", status=415)
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in _IDENTITY_ENCODINGS:
        # The API server never compresses a review; the server does not decompress (no zip bombs).
        raise AdmissionRequestError(
            f"Content-Encoding {encoding[:40]!r} is not accepted: send the review as plain JSON", status=415
        )
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise AdmissionRequestError(f"body of {request.content_length} bytes is over 3 MiB", status=413)
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise AdmissionRequestError("body is over 3 MiB", status=413) from exc
    return read_admission_review(raw)


def _annotate(span: Span, review: AdmissionRequest, decision: Decision) -> None:
    # Field paths and names only: values never go into a span. One call: each set_attribute takes a lock.
    resource = review.resource.resource + (f"/{review.sub_resource}" if review.sub_resource else "")
    attributes: dict[str, Any] = {
        "driftwarden.decision": "allowed" if decision.allowed else "denied",
        "driftwarden.reason": decision.reason,
        "driftwarden.mode": decision.mode,
        "driftwarden.violation": decision.violation,
        "driftwarden.fields": list(decision.fields),
        "k8s.admission.operation": review.operation,
        "k8s.resource.name": review.name,
        "k8s.resource.type": resource,
        "enduser.id": review.user_name,
        "driftwarden.dry_run": review.dry_run,
    }
    if decision.app:
        attributes["driftwarden.app"] = decision.app
    if review.namespace:
        attributes["k8s.namespace.name"] = review.namespace
    named = name_attribute_of_resource(group=review.resource.group, resource=review.resource.resource)
    if named:  # k8s.deployment.name and the like, where the semantic conventions have one
        attributes[named] = review.name
    span.set_attributes(attributes)
    if not decision.allowed:
        span.set_status(Status(StatusCode.ERROR, shorten(decision.message, SPAN_LIMIT)))


def _for_mutation(review: AdmissionRequest, decision: Decision) -> Decision:
    """What /mutate answers: it stamps, and denies only scale requests.

    Whole objects are denied by /validate, which sees the object after every mutating webhook ran.
    Scale requests carry the parent's managedFields only in the mutating phase, so /mutate decides them.
    """
    if decision.allowed or review.sub_resource == "scale":
        return decision
    return replace(decision, allowed=True, message="")


_ALLOWED_VERDICTS = frozenset({"warned", "breakglass", "off", "error"})


def _decision_label(decision: Decision) -> str:
    """The metric's bounded ``decision`` label: allowed, denied, warned, breakglass, off or error."""
    if not decision.allowed:
        return "denied"
    verdict = decision.audit_annotations.get("decision", "")
    return verdict if verdict in _ALLOWED_VERDICTS else "allowed"


def _answer(
    request: web.Request, review: AdmissionRequest, decision: Decision, span: Span, *, mutate: bool
) -> tuple[Decision, dict[str, Any]]:
    if decision.reason == "internal-error":
        # The rules failed on this content: closed if it looks managed.
        decision = contain(review, request.app[SETTINGS], decision)
    elif mutate:
        decision = _for_mutation(review, decision)
    elif unstamped(review.object, decision, user=review.user_name):
        decision = _missed_stamp(request, decision)
    _annotate(span, review, decision)
    patch: list[dict[str, Any]] | None = None
    if mutate:
        patch = drift_patch(
            review.object, decision, user=review.user_name,
            at=request.app[CLOCK](), traceparent=traceparent(span),
        )  # fmt: skip
    return decision, build_response(review.uid, decision, patch=patch)


def _missed_stamp(request: web.Request, decision: Decision) -> Decision:
    """A warned edit the mutating configuration did not send to ``/mutate``: an audit annotation and a
    log line (at most one a minute) naming the cause; the answer is otherwise the same."""
    request.app[FAILURES].warning(
        "a warned edit reached /validate without its drift stamp: run `webhook install` with the same "
        "--default-mode and --breakglass-user/--breakglass-group as `webhook serve`"
    )
    return replace(decision, audit_annotations={**decision.audit_annotations, "stamp": "missing"})


def _contained(
    request: web.Request, review: AdmissionRequest, failed: Decision, span: Span, exc: Exception
) -> Decision:
    """The answer when answering failed on this input: the failsafe's, and one throttled log line."""
    request.app[FAILURES].warning("answering an admission review failed; answered by the failsafe", exc=exc)
    span.record_exception(exc)
    decision = contain(review, request.app[SETTINGS], failed)
    try:
        _annotate(span, review, decision)
    except Exception:  # the span is a record, not the answer
        span.set_status(Status(StatusCode.ERROR, "internal-error"))
    return decision


async def _handle(request: web.Request, *, mutate: bool) -> web.Response:
    tracer, started = request.app[TRACER], time.perf_counter()
    endpoint = "mutate" if mutate else "validate"
    # Started, not made current: nothing under it makes spans, and attaching and detaching a context (with
    # the context manager's generator) cost more than the span when tracing is off (issue 17).
    span = tracer.start_span(
        "admission.review", kind=trace.SpanKind.SERVER, attributes={"driftwarden.endpoint": endpoint}
    )
    try:
        try:
            review = await _read_review(request)
        except AdmissionRequestError as exc:
            span.set_status(Status(StatusCode.ERROR, str(exc)))
            request.app[INSTRUMENTS].record_admission(
                decision="invalid", operation="unknown", endpoint=endpoint,
                seconds=time.perf_counter() - started,
            )  # fmt: skip
            return _error(exc.status, str(exc))
        decided = decide(review, request.app[SETTINGS])  # never raises
        try:
            decision, body = _answer(request, review, decided, span, mutate=mutate)
        except Exception as exc:  # a bug this input reached: a conservative answer, never a 500
            decision = _contained(request, review, decided, span, exc)
            body = build_response(review.uid, decision)
    except BaseException as exc:  # reading the body failed or was cancelled: as start_as_current_span records
        if span.is_recording():
            span.record_exception(exc, escaped=True)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        span.end()
    request.app[INSTRUMENTS].record_admission(
        decision=_decision_label(decision), operation=review.operation, endpoint=endpoint,
        seconds=time.perf_counter() - started,
    )  # fmt: skip
    # One event line per decision (driftwarden.logs): names and field paths only, never values; nothing is
    # formatted, and no dict is built, unless INFO is on.
    log.info(
        "admission endpoint=%s operation=%s group=%s resource=%s subresource=%s namespace=%s name=%s user=%s "
        "allowed=%s violation=%s reason=%s mode=%s app=%s fields=%s dry_run=%s",
        endpoint, review.operation, review.resource.group, review.resource.resource, review.sub_resource,
        review.namespace, review.name, review.user_name, decision.allowed, decision.violation,
        decision.reason, decision.mode, decision.app, decision.fields, review.dry_run,
    )  # fmt: skip
    return web.Response(body=encode_json(body), content_type="application/json", charset="utf-8")


async def validate(request: web.Request) -> web.Response:
    return await _handle(request, mutate=False)


async def mutate(request: web.Request) -> web.Response:
    return await _handle(request, mutate=True)


async def healthz(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def readyz(request: web.Request) -> web.Response:
    if not request.app[SERVING][0]:
        return web.Response(status=503, text="shutting down")
    return web.Response(text="ok")


async def _stop_serving(app: web.Application) -> None:
    app[SERVING][0] = False


def make_app(
    settings: DecisionSettings,
    *,
    tracer: trace.Tracer,
    clock: Callable[[], dt.datetime] = _utcnow,
    instruments: Instruments | None = None,
    metrics: ScrapeReader | None = None,
) -> web.Application:
    """The admission application (``POST /validate``, ``/mutate``); the server adds TLS and the listener.

    ``instruments`` record every review (no-op by default); ``metrics`` (the reader of the same
    MeterProvider) is what ``make_probe_app`` serves as ``GET /metrics`` in the Prometheus text format.
    """
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[SETTINGS] = settings
    app[TRACER] = tracer
    app[CLOCK] = clock
    app[INSTRUMENTS] = instruments or Instruments.noop()
    app[METRICS] = metrics
    app[SERVING] = [True]
    app[FAILURES] = LogThrottle(log)
    app.on_shutdown.append(_stop_serving)
    app.router.add_post("/validate", validate)
    app.router.add_post("/mutate", mutate)
    return app


def make_probe_app(admission: web.Application) -> web.Application:
    """``/healthz``, ``/readyz`` (503 once ``admission`` shuts down) and ``/metrics`` if it has a reader."""
    app = web.Application(client_max_size=4096)  # GET only: no request here has a body worth reading
    app[SERVING] = admission[SERVING]
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    reader = admission[METRICS]
    if reader is not None:
        app.router.add_get("/metrics", metrics_handler(reader))
    return app
