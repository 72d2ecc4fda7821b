"""AdmissionReview (admission.k8s.io/v1) in: parse the request the API server sends.

Role: turn the body of an admission call into a frozen ``AdmissionRequest``: ``read_admission_review``
decodes the bytes within the limits of webhook.admission.limits, ``parse_admission_review`` checks the
decoded document. Malformed input raises AdmissionRequestError (status 400) saying what is wrong. The
answer is built by webhook.admission.response.

Decoding is stricter than Python's ``json`` and as strict as the API server's own encoder: the body must be
UTF-8, nest at most ``MAX_NESTING_DEPTH`` levels (checked before parsing, so no input reaches a
RecursionError), and hold no lone surrogate, ``NaN`` or ``Infinity``, none of which the API server ever
writes. A duplicate key keeps its last value, as the API server's decoder does. orjson decodes first (about
half the stdlib's time); it refuses everything above as well, and whatever it refuses goes through the
stdlib path, which accepts or refuses it exactly as before and says why. (Integers beyond 64 bits become
floats in orjson, as the API server's own decoder makes them float64; the stdlib path still decodes them
when orjson refuses the document.)

This module must not decide anything, do I/O, log or await. Objects inside the request are kept as
given (any JSON value): webhook.admission.decision copes with garbage, so one odd field does not cost a 400.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NoReturn, cast

import orjson

from driftwarden.errors import AdmissionRequestError
from webhook.admission.limits import MAX_NESTING_DEPTH, nesting_depth

ADMISSION_API_VERSION = "admission.k8s.io/v1"
ADMISSION_KIND = "AdmissionReview"
OPERATIONS = ("CREATE", "UPDATE", "DELETE", "CONNECT")

Operation = Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]


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


# A \\uD800-\\uDFFF escape; it may still be half of a valid pair, which the exact check then accepts.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def read_admission_review(raw: bytes) -> AdmissionRequest:
    """Decode and parse a request body; AdmissionRequestError (400) says what is wrong with it."""
    return parse_admission_review(decode_json(raw))


def decode_json(raw: bytes) -> object:
    """``raw`` as JSON, within the limits; AdmissionRequestError (400) otherwise."""
    # No body nests deeper than it has opening brackets: counting them (C speed) spares most reviews the scan.
    if raw.count(b"[") + raw.count(b"{") > MAX_NESTING_DEPTH:
        depth = nesting_depth(raw)
        if depth > MAX_NESTING_DEPTH:
            limit = MAX_NESTING_DEPTH
            raise AdmissionRequestError(f"body nests {depth} levels deep, over the limit of {limit}")
    try:
        return orjson.loads(raw)  # strict UTF-8, no lone surrogate, NaN or Infinity: the fast path
    except orjson.JSONDecodeError:
        pass  # the stdlib path below refuses it with a reason, or decodes what orjson would not (1e400)
    return _decode_strictly(raw)


def _decode_strictly(raw: bytes) -> object:
    try:
        text = raw.decode("utf-8")  # strict: an encoded surrogate is not UTF-8 either
    except UnicodeDecodeError as exc:
        reason = f"{exc.reason} at byte {exc.start}"
        raise AdmissionRequestError(f"body is not JSON: not UTF-8 ({reason})") from exc
    try:
        document = json.loads(text, parse_constant=_no_constant)
    except RecursionError as exc:  # not reachable within the depth limit; kept as the last guard
        raise AdmissionRequestError("body is not JSON: nested too deep") from exc
    except ValueError as exc:
        raise AdmissionRequestError(f"body is not JSON: {exc}") from exc
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(document):
        raise AdmissionRequestError("body is not JSON the API server writes: a string holds a lone surrogate")
    return document


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def _has_lone_surrogate(document: object) -> bool:
    try:
        json.dumps(document, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


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
