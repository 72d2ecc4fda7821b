"""W3C trace context for the drift stamp: the traceparent of a span, and the span context in one.

The mutating webhook writes the ``traceparent`` of its admission span into the ``driftwarden.io/drift``
annotation (driftwarden.contract.DriftStamp); the auditor reads it back to link its heal span to the edit.
Both go through OpenTelemetry's own W3C propagator, so the format is written and validated in one place.
It must not create spans or do I/O.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.trace import Span, SpanContext
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_W3C = TraceContextTextMapPropagator()
_HEADER = "traceparent"


def traceparent(span: Span) -> str:
    """``00-<trace-id>-<span-id>-<flags>`` for ``span``; empty when it has no valid context."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier, context=trace.set_span_in_context(span))
    return carrier.get(_HEADER, "")


def span_context(value: str) -> SpanContext | None:
    """The remote span context a traceparent names; None when ``value`` is not a valid one."""
    if not value:
        return None
    found = trace.get_current_span(_W3C.extract({_HEADER: value})).get_span_context()
    return found if found.is_valid else None
