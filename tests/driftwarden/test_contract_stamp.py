"""The drift stamp, its RFC 3339 time and its W3C traceparent: one format, written and read the same way."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from driftwarden.contract import ANNOTATION_DRIFT, DriftStamp, drift_stamp, rfc3339
from driftwarden.telemetry.tracecontext import span_context, traceparent

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_the_stamp_is_compact_json_in_the_contracts_order() -> None:
    stamp = DriftStamp("jane", rfc3339(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)), ("spec.replicas",), "t")
    assert stamp.encode() == (
        '{"user":"jane","at":"2026-01-02T03:04:05Z","fields":["spec.replicas"],"traceparent":"t"}'
    )


@given(st.text(), st.text(), st.lists(st.text(), max_size=4).map(tuple), st.text())
def test_decode_reads_what_encode_writes(user: str, at: str, fields: tuple[str, ...], parent: str) -> None:
    stamp = DriftStamp(user, at, fields, parent)
    assert DriftStamp.decode(stamp.encode()) == stamp


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("not json", None),
        ("[1, 2]", None),
        ('"text"', None),
        ("{}", DriftStamp("", "", (), "")),
        ('{"user": 5, "fields": ["a", 1], "at": null}', DriftStamp("", "", (), "")),
        ('{"user": "bob", "fields": "spec"}', DriftStamp("bob", "", (), "")),
    ],
)
def test_decode_tolerates_what_a_person_may_write(value: object, expected: DriftStamp | None) -> None:
    assert DriftStamp.decode(value) == expected


def test_drift_stamp_reads_the_annotation_of_any_json_object() -> None:
    stamped = {"metadata": {"annotations": {ANNOTATION_DRIFT: json.dumps({"user": "jane"})}}}
    assert drift_stamp(stamped) == DriftStamp("jane", "", (), "")
    for garbage in (None, [], {"metadata": "x"}, {"metadata": {"annotations": ["x"]}}, {"metadata": {}}):
        assert drift_stamp(garbage) is None


def test_rfc3339_refuses_a_naive_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        rfc3339(datetime(2026, 1, 2))


def test_traceparent_round_trips_through_the_w3c_format() -> None:
    with TracerProvider().get_tracer("test").start_as_current_span("admission.review") as span:
        written = traceparent(span)
    ctx = span.get_span_context()
    assert written == f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"
    read = span_context(written)
    assert read is not None and read.is_remote
    assert (read.trace_id, read.span_id, read.trace_flags) == (ctx.trace_id, ctx.span_id, ctx.trace_flags)


def test_no_traceparent_for_an_invalid_span() -> None:
    assert traceparent(NonRecordingSpan(SpanContext(0, 0, is_remote=False, trace_flags=TraceFlags(0)))) == ""


@pytest.mark.parametrize(
    "value",
    [
        "",
        "garbage",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",  # three parts
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # zero span id
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # the forbidden version
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",  # version 00 has no more parts
        "00-xyz-00f067aa0ba902b7-01",
    ],
)
def test_span_context_refuses_what_is_not_a_traceparent(value: str) -> None:
    assert span_context(value) is None


def test_span_context_of_a_valid_traceparent() -> None:
    read = span_context(TRACEPARENT)
    assert read is not None
    assert f"{read.trace_id:032x}" == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert f"{read.span_id:016x}" == "00f067aa0ba902b7"
    assert read.trace_flags.sampled
