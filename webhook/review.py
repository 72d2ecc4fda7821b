"""AdmissionReview (admission.k8s.io/v1) in and out: parse a request, build a response.

Role: turn the decoded JSON body of an admission call into a frozen ``AdmissionRequest`` (malformed input
raises AdmissionRequestError, status 400) and turn a ``Decision`` into the AdmissionReview response with
the API server's limits applied: warnings under 120 characters without control characters, the denial
message under 1 KB, audit annotation keys the API server accepts, a base64 JSONPatch.

This module must not decide anything, do I/O, log or await. Objects inside the request are kept as
given (any JSON value): webhook.decision copes with garbage, so one odd field does not cost a 400.
"""

from __future__ import annotations

import base64
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

from driftwarden.errors import AdmissionRequestError

if TYPE_CHECKING:
    from webhook.decision import Decision

ADMISSION_API_VERSION = "admission.k8s.io/v1"
ADMISSION_KIND = "AdmissionReview"
OPERATIONS = ("CREATE", "UPDATE", "DELETE", "CONNECT")
MAX_WARNING_CHARS = 119
MAX_WARNINGS = 20
MAX_MESSAGE_BYTES = 1000
MAX_ANNOTATION_BYTES = 1000
ELLIPSIS = "…"

Operation = Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]

# The API server prefixes each key with "<webhook name>/" and checks the result is a qualified name, so
# the key must be the name part of one: alphanumerics, '-', '_', '.', at most 63 characters.
_AUDIT_KEY = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")


@dataclass(frozen=True)
class GroupVersionKind:
    group: str
    version: str
    kind: str


@dataclass(frozen=True)
class GroupVersionResource:
    group: str
    version: str
    resource: str


@dataclass(frozen=True)
class AdmissionRequest:
    """The parts of ``AdmissionReview.request`` the decision reads; objects are raw JSON values."""

    uid: str
    kind: GroupVersionKind
    resource: GroupVersionResource
    sub_resource: str
    name: str
    namespace: str
    operation: Operation
    user_name: str
    user_groups: tuple[str, ...]
    object: Any
    old_object: Any
    dry_run: bool
    options: Mapping[str, Any] | None


def parse_admission_review(review: object) -> AdmissionRequest:
    """Parse a decoded AdmissionReview; AdmissionRequestError (400) says what is wrong with it."""
    if not isinstance(review, Mapping):
        raise AdmissionRequestError(f"AdmissionReview must be a JSON object, not {_type(review)}")
    if review.get("apiVersion") != ADMISSION_API_VERSION:
        raise AdmissionRequestError(
            f"AdmissionReview apiVersion must be {ADMISSION_API_VERSION!r}, not {review.get('apiVersion')!r}"
        )
    if review.get("kind") != ADMISSION_KIND:
        raise AdmissionRequestError(f"kind must be {ADMISSION_KIND!r}, not {review.get('kind')!r}")
    request = review.get("request")
    if not isinstance(request, Mapping):
        raise AdmissionRequestError("AdmissionReview has no request object")
    return _parse_request(request)


def _parse_request(request: Mapping[str, Any]) -> AdmissionRequest:
    uid = _text(request, "uid")
    if not uid:
        raise AdmissionRequestError("request.uid is missing or empty")
    operation = request.get("operation")
    if operation not in OPERATIONS:
        raise AdmissionRequestError(f"request.operation {operation!r} is not one of {', '.join(OPERATIONS)}")
    user = _mapping(request, "userInfo")
    return AdmissionRequest(
        uid=uid,
        kind=GroupVersionKind(**_strings(_mapping(request, "kind"), "kind", ("group", "version", "kind"))),
        resource=GroupVersionResource(
            **_strings(_mapping(request, "resource"), "resource", ("group", "version", "resource"))
        ),
        sub_resource=_text(request, "subResource"),
        name=_text(request, "name"),
        namespace=_text(request, "namespace"),
        operation=cast(Operation, operation),
        user_name=_text(user, "username", where="request.userInfo"),
        user_groups=_groups(user.get("groups")),
        object=request.get("object"),
        old_object=request.get("oldObject"),
        dry_run=_flag(request, "dryRun"),
        options=_optional_mapping(request, "options"),
    )


def _type(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _text(source: Mapping[str, Any], key: str, *, where: str = "request") -> str:
    value = source.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise AdmissionRequestError(f"{where}.{key} must be a string, not {_type(value)}")
    return value


def _mapping(source: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = _optional_mapping(source, key)
    return value if value is not None else {}


def _optional_mapping(source: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    value = source.get(key)
    if value is not None and not isinstance(value, Mapping):
        raise AdmissionRequestError(f"request.{key} must be an object, not {_type(value)}")
    return value


def _strings(source: Mapping[str, Any], where: str, keys: Sequence[str]) -> dict[str, str]:
    return {key: _text(source, key, where=f"request.{where}") for key in keys}


def _groups(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(group, str) for group in value):
        raise AdmissionRequestError("request.userInfo.groups must be a list of strings")
    return tuple(value)


def _flag(source: Mapping[str, Any], key: str) -> bool:
    value = source.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise AdmissionRequestError(f"request.{key} must be true or false, not {_type(value)}")
    return value


def sanitize(text: str) -> str:
    """``text`` without control characters or lone surrogates, which the API server rejects in warnings."""
    return "".join("?" if unicodedata.category(ch) in ("Cc", "Cs") else ch for ch in text)


def clip(text: str, *, max_chars: int) -> str:
    """``text`` cut to at most ``max_chars`` characters, ending with an ellipsis when cut."""
    if len(text) <= max_chars:
        return text
    return text[: max(max_chars - 1, 0)] + ELLIPSIS


def clip_bytes(text: str, *, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` of UTF-8 on a character boundary, with an ellipsis."""
    data = text.encode("utf-8", "replace")
    if len(data) <= max_bytes:
        return text
    room = max(max_bytes - len(ELLIPSIS.encode()), 0)
    return data[:room].decode("utf-8", "ignore") + ELLIPSIS


def join_limited(items: Sequence[str], *, max_chars: int) -> str:
    """``a, b, c and N more``: as many items as fit in ``max_chars``, then a count of the rest."""
    shown: list[str] = []
    for index, item in enumerate(items):
        rest = len(items) - index - 1
        tail = f" and {rest} more" if rest else ""
        candidate = ", ".join([*shown, item]) + tail
        if len(candidate) > max_chars:
            break
        shown.append(item)
    hidden = len(items) - len(shown)
    if shown or not items:
        return ", ".join(shown) + (f" and {hidden} more" if hidden else "")
    # Not even the first item fits whole: cut it, so the reader still sees where the list starts.
    tail = f" and {hidden - 1} more" if hidden > 1 else ""
    return clip(items[0], max_chars=max(max_chars - len(tail), 1)) + tail


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
        response["patch"] = base64.b64encode(json.dumps(list(patch)).encode()).decode("ascii")
    return {"apiVersion": ADMISSION_API_VERSION, "kind": ADMISSION_KIND, "response": response}


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


def valid_audit_key(key: object) -> bool:
    """Whether the API server accepts ``key`` once it prefixes it with the webhook name."""
    return isinstance(key, str) and _AUDIT_KEY.fullmatch(key) is not None
