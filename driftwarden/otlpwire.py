"""OTLP trace protobufs written straight to the wire format, for a cheaper export of driftwarden's spans.

The SDK's encoder builds a protobuf object per span, attribute and value in Python; that is most of what
exporting a span costs. This writes the same ``ExportTraceServiceRequest`` bytes directly. Pure: spans in,
bytes out, no I/O. Tests check that the bytes decode to exactly what the SDK's own encoder produces.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

_KIND = {
    SpanKind.INTERNAL: 1,
    SpanKind.SERVER: 2,
    SpanKind.CLIENT: 3,
    SpanKind.PRODUCER: 4,
    SpanKind.CONSUMER: 5,
}
_STATUS = {StatusCode.UNSET: 0, StatusCode.OK: 1, StatusCode.ERROR: 2}
_FIXED64 = struct.Struct("<Q")
_DOUBLE = struct.Struct("<d")
_FIXED32 = struct.Struct("<I")
_SMALL = [bytes((i,)) for i in range(128)]


def _varint(value: int) -> bytes:
    if 0 <= value < 128:
        return _SMALL[value]
    if value < 0:
        value += 1 << 64  # int64 goes as its two's complement, ten bytes
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _string(number: int, text: str) -> bytes:
    return _field(number, text.encode()) if text else b""


def _any_value(value: Any) -> bytes:
    """An AnyValue; attribute values are str, bool, int, float, bytes or a sequence of those."""
    if isinstance(value, bool):
        body = b"\x10\x01" if value else b"\x10\x00"
    elif isinstance(value, str):
        body = _field(1, value.encode())
    elif isinstance(value, int):
        body = b"\x18" + _varint(value)
    elif isinstance(value, float):
        body = b"\x21" + _DOUBLE.pack(value)
    elif isinstance(value, bytes):
        body = _field(7, value)
    elif isinstance(value, Sequence):
        body = _field(5, b"".join(_field(1, _any_value(v)) for v in value))
    else:
        body = _field(1, str(value).encode())
    return body


@functools.lru_cache(maxsize=4096)
def _key(key: str) -> bytes:
    """A KeyValue's key field; the same few keys come back on every span, so each is encoded once."""
    return _field(1, key.encode())


def _attributes(number: int, attributes: Mapping[str, Any] | None) -> bytes:
    if not attributes:
        return b""
    return b"".join(_field(number, _key(k) + _field(2, _any_value(v))) for k, v in attributes.items())


def _flags(remote: bool) -> bytes:
    # OTLP SpanFlags as the SDK's encoder writes them: bit 8 "is_remote is known", bit 9 "is remote".
    return _FIXED32.pack(0x300 if remote else 0x100)


def _link(link: Any) -> bytes:
    linked = link.context
    body = _field(1, linked.trace_id.to_bytes(16, "big")) + _field(2, linked.span_id.to_bytes(8, "big"))
    if linked.trace_state:
        body += _string(3, linked.trace_state.to_header())
    return _field(13, body + _attributes(4, link.attributes) + b"\x35" + _flags(linked.is_remote))


def _span(span: ReadableSpan) -> bytes:
    context = span.get_span_context()
    assert context is not None
    parts = [_field(1, context.trace_id.to_bytes(16, "big")), _field(2, context.span_id.to_bytes(8, "big"))]
    if context.trace_state:
        parts.append(_string(3, context.trace_state.to_header()))
    if span.parent is not None:
        parts.append(_field(4, span.parent.span_id.to_bytes(8, "big")))
    parts += [
        _string(5, span.name),
        b"\x30" + _varint(_KIND.get(span.kind, 0)),
        b"\x39" + _FIXED64.pack(span.start_time or 0),
        b"\x41" + _FIXED64.pack(span.end_time or 0),
        _attributes(9, span.attributes),
    ]
    if span.dropped_attributes:
        parts.append(b"\x50" + _varint(span.dropped_attributes))
    for event in span.events:
        body = (
            b"\x09"
            + _FIXED64.pack(event.timestamp)
            + _string(2, event.name)
            + _attributes(3, event.attributes)
        )
        parts.append(_field(11, body))
    if span.dropped_events:
        parts.append(b"\x60" + _varint(span.dropped_events))
    parts += [_link(link) for link in span.links]
    if span.dropped_links:
        parts.append(b"\x70" + _varint(span.dropped_links))
    code = _STATUS.get(span.status.status_code, 0)
    parts.append(
        _field(15, _string(2, span.status.description or "") + (b"\x18" + _varint(code) if code else b""))
    )
    parts.append(b"\x85\x01" + _flags(span.parent.is_remote if span.parent is not None else False))
    return b"".join(parts)


def encode(spans: Sequence[ReadableSpan]) -> bytes:
    """An ``ExportTraceServiceRequest`` holding ``spans``, grouped by resource and instrumentation scope."""
    groups: dict[int, tuple[Any, dict[tuple[str, str, str], list[ReadableSpan]]]] = {}
    for span in spans:
        scope = span.instrumentation_scope
        key = (scope.name, scope.version or "", scope.schema_url or "") if scope is not None else ("", "", "")
        groups.setdefault(id(span.resource), (span.resource, {}))[1].setdefault(key, []).append(span)
    out = []
    for resource, scopes in groups.values():
        body = _field(1, _attributes(1, resource.attributes))
        for (name, version, schema_url), members in scopes.items():
            scope_body = _field(1, _string(1, name) + _string(2, version))
            scope_body += b"".join(_field(2, _span(s)) for s in members) + _string(3, schema_url)
            body += _field(2, scope_body)
        out.append(_field(1, body + _string(3, resource.schema_url or "")))
    return b"".join(out)
