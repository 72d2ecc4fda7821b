"""Reading Kubernetes objects that may be garbage: the object helpers of the admission core.

Role: the request's objects are kept as any JSON value (webhook.admission.request), so every read of
metadata, labels, annotations or a name goes through these helpers, which turn a missing or mistyped
member into an empty one instead of an exception.

This module must not do I/O, log, await, or decide anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def metadata_of(obj: object) -> Mapping[str, Any]:
    """``obj.metadata`` if both are mappings, else an empty mapping (objects may be garbage)."""
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    return meta if isinstance(meta, Mapping) else {}


def string_map(value: object) -> Mapping[str, str]:
    """Labels or annotations as str -> str, dropping anything else (objects may be garbage)."""
    if not isinstance(value, Mapping):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}


def text(value: object) -> str:
    """``value`` if it is a string, else empty."""
    return value if isinstance(value, str) else ""
