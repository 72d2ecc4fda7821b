"""What the admission decision says to people: findings, rendered fields, messages, warnings, audit notes.

Role: the vocabulary of webhook.admission.decision (reason codes, ``Finding``, ``Subject``) and the text
built from it, within the API server's limits (webhook.admission.limits): a denial under 1 KB that names
the object, the fields and the Application to change in Git; warnings under 120 characters; audit
annotations with valid keys. Paths read like ``spec.template.spec.containers[name=web].image``.

Secrets: text is built from field paths and names only, never from object values. For a Secret, paths
under ``data``/``stringData`` stop at the key name and ``k:``/``v:`` element values are masked, because a
value-keyed element could only come from the data.

This module must not do I/O, log, await, or decide anything.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from driftwarden.fieldsv1 import Path, canonical_json
from webhook.admission.limits import MAX_MESSAGE_BYTES, MAX_WARNING_CHARS, clip, clip_bytes, join_limited

Reason = Literal[
    "unmanaged",
    "connect",
    "status-subresource",
    "gitops-identity",
    "breakglass",
    "exempt",
    "no-owned-fields",
    "owned-fields-changed",
    "ownership-unknown",
    "marker-removed",
    "manager-entry-removed",
    "manager-entry-spoofed",
    "delete-managed",
    "spoofed-marker",
    "strict",
    "internal-error",
]

MAX_FIELD_WARNINGS = 5
_SECRET_DATA = frozenset({"f:data", "f:stringData"})
_SIMPLE_NAME = re.compile(r"[A-Za-z0-9_-]+")
_AUDIT_FIELDS_CHARS = 900

# One clause per violation, finishing "driftwarden: <object> is managed by Git (Application <app>); ...".
_DETAIL: Mapping[str, str] = {
    "owned-fields-changed": "Git owns {fields}",
    "ownership-unknown": "no managedFields entry says which of its fields Git owns; changed: {fields}",
    "marker-removed": "its tracking marker and guard mode only change through Git: {fields}",
    "manager-entry-removed": "the GitOps field manager's managedFields entry must not be removed or altered",
    "manager-entry-spoofed": "only the GitOps identity may write as the GitOps field manager",
    "delete-managed": "delete it by removing it from Git",
    "spoofed-marker": "only the GitOps identity may set its tracking marker ({fields})",
    "strict": "the guard is strict, so no change outside Git is allowed: {fields}",
}


@dataclass(frozen=True)
class Finding:
    """What the rules found: a reason code, whether it is a violation, and the raw paths involved."""

    reason: Reason
    violation: bool
    paths: tuple[Path, ...] = ()


@dataclass(frozen=True)
class Subject:
    """The managed object as text: ``display`` like ``Deployment production/web``, and its app."""

    display: str
    app: str
    secret: bool
    find_app: str = ""
    """For a Scale (no labels, no annotations): where the Application's name is, since it cannot be named."""


def render_fields(paths: tuple[Path, ...], *, secret: bool) -> tuple[str, ...]:
    """Sorted, unique rendered paths; for a Secret, cut at the data key and with element values masked."""
    if secret:
        paths = tuple(_secret_safe(path) for path in paths)
    return tuple(sorted({render_path(path, redact_values=secret) for path in paths}))


def _secret_safe(path: Path) -> Path:
    if path[:1] and path[0] in _SECRET_DATA:
        key = path[1:2]
        return (path[0], *key) if key and key[0].startswith("f:") else path[:1]
    return path


def render_path(path: Path, *, redact_values: bool = False) -> str:
    """A readable path: ``spec.template.spec.containers[name=web].image``, ``metadata.labels.app``.

    With ``redact_values`` the values inside ``k:``/``v:`` elements are replaced by ``…`` (for Secrets).
    """
    text = "".join(_render_element(element, redact_values=redact_values) for element in path)
    return text.removeprefix(".") or "(object)"


def _render_element(element: str, *, redact_values: bool) -> str:
    prefix, _, raw = element.partition(":")
    if prefix == "f":
        return f".{raw}" if _SIMPLE_NAME.fullmatch(raw) else f"[{json.dumps(raw, ensure_ascii=False)}]"
    if prefix == "i":
        return f"[{raw}]"
    if prefix == "v":
        return "[=…]" if redact_values else f"[={_render_value(raw)}]"
    if prefix == "k":
        return f"[{_render_key(raw, redact_values=redact_values)}]"
    return "[?]"


def _render_key(raw: str, *, redact_values: bool) -> str:
    try:
        fields = json.loads(raw)
    except (ValueError, RecursionError):
        fields = None
    if not isinstance(fields, dict):
        return "…" if redact_values else raw
    parts = []
    for name in sorted(fields):
        value = "…" if redact_values else _render_scalar(fields[name])
        parts.append(f"{name}={value}")
    return ",".join(parts)


def _render_value(raw: str) -> str:
    try:
        return _render_scalar(json.loads(raw))
    except (ValueError, RecursionError):
        return raw


def _render_scalar(value: object) -> str:
    if isinstance(value, str) and _SIMPLE_NAME.fullmatch(value):
        return value
    return canonical_json(value)


def _managed_by(subject: Subject) -> str:
    return f"managed by Git (Application {subject.app})" if subject.app else "managed by Git"


def _where_in_git(subject: Subject) -> str:
    if subject.app:
        return f"Make this change in Git, in the source of Application {subject.app}."
    if subject.find_app:
        return f"Make this change in Git, in the source of the Application {subject.find_app}."
    return "Make this change in Git, in the source of the Application that manages it."


def denial(finding: Finding, *, subject: Subject, fields: tuple[str, ...]) -> str:
    """The 403 message: the object, the fields, and the Application to change in Git instead."""
    claim = "claims to be" if finding.reason == "spoofed-marker" else "is"
    head = f"driftwarden: {subject.display} {claim} {_managed_by(subject)}; "
    tail = f". {_where_in_git(subject)}"
    if subject.find_app:  # the Scale has no driftwarden.io/guard annotation to read a mode from
        tail += " A Scale carries no annotations, so the webhook's default mode applies."
    template = _DETAIL.get(finding.reason, "this change is not allowed outside Git ({fields})")
    budget = max(MAX_MESSAGE_BYTES - len((head + template + tail).encode()), 40)
    while True:
        text = head + template.format(fields=join_limited(fields, max_chars=budget)) + tail
        # join_limited counts characters; non-ASCII paths take more bytes, so shrink until it fits.
        if len(text.encode()) <= MAX_MESSAGE_BYTES or budget <= 40:
            return clip_bytes(text, max_bytes=MAX_MESSAGE_BYTES)
        budget //= 2


def drift_warnings(finding: Finding, *, subject: Subject, fields: tuple[str, ...]) -> tuple[str, ...]:
    """Warn-mode warnings: what is drifting, one line per field (capped), and where to fix it."""
    lines = [f"driftwarden: {subject.display} is {_managed_by(subject)}"]
    lines.append(f"drift ({finding.reason}); the auditor will revert it unless Git changes")
    lines.extend(_field_lines("drift in", fields))
    return tuple(clip(line, max_chars=MAX_WARNING_CHARS) for line in lines)


def breakglass_warnings(finding: Finding, *, subject: Subject, fields: tuple[str, ...]) -> tuple[str, ...]:
    """Break-glass warnings: the bypass is allowed and recorded, and Git still wins later."""
    lines = [f"driftwarden: break-glass change to Git-managed {subject.display} allowed and audited"]
    if finding.violation:
        # The auditor puts the object on hold (spec.guard.breakglassHold, 1h by default), then heals it.
        lines.append("the auditor holds this object for its breakglassHold (1h by default), then reverts it")
        lines.append("unless Git has the change; `driftwarden app release` ends the hold early")
        lines.extend(_field_lines("bypassed", fields))
    return tuple(clip(line, max_chars=MAX_WARNING_CHARS) for line in lines)


def _field_lines(label: str, fields: tuple[str, ...]) -> list[str]:
    lines = [f"{label} {name}" for name in fields[:MAX_FIELD_WARNINGS]]
    if len(fields) > MAX_FIELD_WARNINGS:
        lines.append(f"{label} {len(fields) - MAX_FIELD_WARNINGS} more fields")
    return lines


def audit(
    finding: Finding, *, verdict: str, mode: str, subject: Subject, fields: tuple[str, ...]
) -> Mapping[str, str]:
    """Audit annotations; the API server prefixes each key with the webhook's name."""
    notes = {"decision": verdict, "reason": finding.reason, "mode": mode, "object": subject.display}
    if subject.app:
        notes["app"] = subject.app
    if fields:
        notes["fields"] = join_limited(fields, max_chars=_AUDIT_FIELDS_CHARS)
    return MappingProxyType(notes)
