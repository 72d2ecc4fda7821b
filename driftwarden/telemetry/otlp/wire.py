"""OTLP trace protobufs written straight to the wire format, for a cheaper export of driftwarden's spans.

The SDK's encoder builds a protobuf object per span, attribute and value in Python; that is most of what
exporting a span costs. This writes the same ``ExportTraceServiceRequest`` bytes directly: ``encode_span``
turns one ended span into its bytes (driftwarden.telemetry.otlp.batch calls it as each span ends),
``request`` joins
such spans into one request, grouped by resource and scope. Attributes that repeat from span to span are
encoded once and looked up after. Pure: spans in, bytes out, no I/O. Tests check that the bytes decode to
exactly what the SDK's own encoder produces.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from opentelemetry.sdk.resources import Resource
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


@functools.lru_cache(maxsize=8192, typed=True)
def _scalar_kv(number: int, key: str, value: str | bool | int | float) -> bytes:
    # typed: True and 1 (equal, same hash) must not share an entry.
    return _field(number, _key(key) + _field(2, _any_value(value)))


@functools.lru_cache(maxsize=1024)
def _strings_kv(number: int, key: str, value: tuple[str, ...]) -> bytes:
    return _field(number, _key(key) + _field(2, _any_value(value)))


def _kv(number: int, key: str, value: Any) -> bytes:
    """Field ``number``, a KeyValue. Most attributes repeat from span to span (decision, mode, user, paths),
    so a whole encoded attribute is looked up rather than built again."""
    kind = type(value)
    if kind is str or kind is bool or kind is int or kind is float:
        return _scalar_kv(number, key, value)
    if kind is tuple and all(type(v) is str for v in value):  # the SDK stores sequences as tuples
        return _strings_kv(number, key, value)
    return _field(number, _key(key) + _field(2, _any_value(value)))


def _attributes(number: int, attributes: Mapping[str, Any] | None) -> bytes:
    if not attributes:
        return b""
    # The SDK hands out a read-only view of a BoundedAttributes; iterating its plain dict is far cheaper
    # than going through two Mapping layers for every key and value.
    plain = getattr(attributes, "_dict", None)
    items = plain.items() if isinstance(plain, dict) else attributes.items()
    return b"".join([_kv(number, k, v) for k, v in items])


def _span_attributes(span: ReadableSpan) -> Mapping[str, Any] | None:
    """The span's own BoundedAttributes when the SDK exposes it (``ReadableSpan.attributes`` wraps it)."""
    own = getattr(span, "_attributes", None)
    return own if isinstance(own, Mapping) else span.attributes


def _flags(remote: bool) -> bytes:
    # OTLP SpanFlags as the SDK's encoder writes them: bit 8 "is_remote is known", bit 9 "is remote".
    return _FIXED32.pack(0x300 if remote else 0x100)


_LOCAL_FLAGS = b"\x85\x01" + _flags(False)
_REMOTE_FLAGS = b"\x85\x01" + _flags(True)
_TIMES = struct.Struct("<BQBQ")  # start_time_unix_nano (field 7) and end_time_unix_nano (field 8), fixed64


@functools.lru_cache(maxsize=256)
def _name_and_kind(name: str, kind: int) -> bytes:
    return _string(5, name) + b"\x30" + _varint(kind)


@functools.lru_cache(maxsize=1024)
def _status(code: int, description: str) -> bytes:
    return _field(15, _string(2, description) + (b"\x18" + _varint(code) if code else b""))


def _ids(trace_id: int, span_id: int) -> bytes:
    """trace_id (field 1, 16 bytes) and span_id (field 2, 8 bytes): fixed lengths, so constant tags."""
    return b"\x0a\x10" + trace_id.to_bytes(16, "big") + b"\x12\x08" + span_id.to_bytes(8, "big")


def _link(link: Any) -> bytes:
    linked = link.context
    body = _ids(linked.trace_id, linked.span_id)
    if linked.trace_state:
        body += _string(3, linked.trace_state.to_header())
    return _field(13, body + _attributes(4, link.attributes) + b"\x35" + _flags(linked.is_remote))


def _event(event: Any) -> bytes:
    body = _string(2, event.name) + _attributes(3, event.attributes)
    return _field(11, b"\x09" + _FIXED64.pack(event.timestamp) + body)


def _span(span: ReadableSpan) -> bytes:
    context = span.get_span_context()
    assert context is not None
    out = _ids(context.trace_id, context.span_id)
    if context.trace_state:
        out += _string(3, context.trace_state.to_header())
    parent = span.parent
    if parent is not None:
        out += b"\x22\x08" + parent.span_id.to_bytes(8, "big")
    out += _name_and_kind(span.name, _KIND.get(span.kind, 0))
    out += _TIMES.pack(0x39, span.start_time or 0, 0x41, span.end_time or 0)
    out += _attributes(9, _span_attributes(span))
    if span.dropped_attributes:
        out += b"\x50" + _varint(span.dropped_attributes)
    events, links = span.events, span.links
    if events:
        out += b"".join([_event(event) for event in events])
    if span.dropped_events:
        out += b"\x60" + _varint(span.dropped_events)
    if links:
        out += b"".join([_link(link) for link in links])
    if span.dropped_links:
        out += b"\x70" + _varint(span.dropped_links)
    status = span.status
    out += _status(_STATUS.get(status.status_code, 0), status.description or "")
    return out + (_REMOTE_FLAGS if parent is not None and parent.is_remote else _LOCAL_FLAGS)


ScopeKey = tuple[str, str, str]
"""An instrumentation scope's name, version and schema URL."""

EncodedSpan = tuple[Resource, ScopeKey, bytes]
"""One span as ``encode_span`` writes it, with what ``request`` groups it by."""


def encode_span(span: ReadableSpan) -> EncodedSpan:
    """One span's bytes (a ``ScopeSpans.spans`` entry), with its resource and scope for ``request``."""
    scope = span.instrumentation_scope
    key = (scope.name, scope.version or "", scope.schema_url or "") if scope is not None else ("", "", "")
    return span.resource, key, _field(2, _span(span))


def request(spans: Iterable[EncodedSpan]) -> bytes:
    """An ``ExportTraceServiceRequest`` holding ``spans``, grouped by resource and instrumentation scope."""
    groups: dict[int, tuple[Resource, dict[ScopeKey, list[bytes]]]] = {}
    for resource, key, data in spans:
        groups.setdefault(id(resource), (resource, {}))[1].setdefault(key, []).append(data)
    out = []
    for resource, scopes in groups.values():
        body = _field(1, _attributes(1, resource.attributes))
        for (name, version, schema_url), members in scopes.items():
            scope_body = _field(1, _string(1, name) + _string(2, version))
            scope_body += b"".join(members) + _string(3, schema_url)
            body += _field(2, scope_body)
        out.append(_field(1, body + _string(3, resource.schema_url or "")))
    return b"".join(out)


def encode(spans: Sequence[ReadableSpan]) -> bytes:
    """An ``ExportTraceServiceRequest`` holding ``spans`` (``request`` of each span's ``encode_span``)."""
    return request([encode_span(span) for span in spans])
