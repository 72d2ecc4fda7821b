"""AdmissionReview (admission.k8s.io/v1) out: the response to a Decision, within the API server's limits.

Role: turn a ``Decision`` into the AdmissionReview response: ``allowed``, a 403 status with the denial
message under 1 KB, warnings under 120 characters without control characters, audit annotations with keys
the API server accepts, and a base64 JSONPatch when the mutating endpoint stamps.

This module must not decide anything, do I/O, log or await.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from webhook.admission.decision import Decision
from webhook.admission.limits import (
    MAX_ANNOTATION_BYTES,
    MAX_MESSAGE_BYTES,
    MAX_WARNING_CHARS,
    MAX_WARNINGS,
    clip,
    clip_bytes,
    sanitize,
    valid_audit_key,
)
from webhook.admission.request import ADMISSION_API_VERSION, ADMISSION_KIND


def build_response(
    request_uid: str, decision: Decision, *, patch: Sequence[Any] | None = None
) -> dict[str, Any]:
    """The AdmissionReview response for ``decision``; ``patch`` (JSONPatch operations) only if allowed."""
    response: dict[str, Any] = {"uid": request_uid, "allowed": decision.allowed}
    if not decision.allowed:
        message = sanitize(decision.message) or "denied by driftwarden"
        response["status"] = {
            "code": 403,
            "reason": "Forbidden",
            "status": "Failure",
            "message": clip_bytes(message, max_bytes=MAX_MESSAGE_BYTES),
        }
    if warnings := _warnings(decision.warnings):
        response["warnings"] = warnings
    if annotations := _audit_annotations(decision.audit_annotations):
        response["auditAnnotations"] = annotations
    if patch and decision.allowed:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(encode_json(list(patch))).decode("ascii")
    return {"apiVersion": ADMISSION_API_VERSION, "kind": ADMISSION_KIND, "response": response}


def encode_json(document: object) -> bytes:
    """``document`` as compact UTF-8 JSON: orjson, or the stdlib for what orjson refuses (a lone surrogate,
    an integer beyond 64 bits), which escapes it rather than fail the answer."""
    try:
        return orjson.dumps(document)
    except TypeError:  # orjson.JSONEncodeError is one
        return json.dumps(document, separators=(",", ":")).encode()


def _warnings(warnings: Iterable[str]) -> list[str]:
    out: list[str] = []
    for warning in warnings:
        text = clip(sanitize(warning).strip(), max_chars=MAX_WARNING_CHARS)
        # The API server drops duplicates anyway; dropping them here keeps the count honest.
        if text and text not in out:
            out.append(text)
    return out[:MAX_WARNINGS]


def _audit_annotations(annotations: Mapping[str, str]) -> dict[str, str]:
    return {
        key: clip_bytes(sanitize(value), max_bytes=MAX_ANNOTATION_BYTES)
        for key, value in annotations.items()
        if valid_audit_key(key) and isinstance(value, str)
    }
