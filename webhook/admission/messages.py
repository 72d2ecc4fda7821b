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

import heapq
import json
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from driftwarden.fieldsv1 import Path, canonical_json, element_json
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
    "owner-added",
    "finalizer-added",
    "stamp-forged",
    "delete-managed",
    "spoofed-marker",
    "strict",
    "internal-error",
]

MAX_FIELD_WARNINGS = 5
MAX_FIELDS = 500
"""Fields rendered per decision; beyond that only their number is kept (rendering is the costly part)."""
MAX_DRIFT_FIELDS = 50
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
    "owner-added": "its owners come from Git (deleting a new owner would delete it): {fields}",
    "finalizer-added": "only Git and Kubernetes' own controllers may add finalizers to it: {fields}",
    "stamp-forged": "only driftwarden's mutating webhook writes its drift stamp ({fields})",
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
    count: int = 0
    """How many paths there are in all, when more than ``paths`` names (0: just those)."""

    def with_path(self, path: Path, reason: Reason) -> Finding:
        """This finding as a violation that involves ``path`` too, with ``reason`` unless it was one."""
        count = self.count + 1 if self.count else 0
        return Finding(self.reason if self.violation else reason, True, (*self.paths, path), count)


@dataclass(frozen=True)
class Subject:
    """The managed object as text: ``display`` like ``Deployment production/web``, and its app."""

    display: str
    app: str
    secret: bool
    find_app: str = ""
    """For a Scale (no labels, no annotations): where the Application's name is, since it cannot be named."""


def render_fields(paths: Collection[Path], *, secret: bool) -> tuple[str, ...]:
    """Sorted, unique rendered paths; for a Secret, cut at the data key and with element values masked.

    At most MAX_FIELDS of them: the first ones in path order, so that an edit of a hundred thousand
    fields costs a heap pass, not a hundred thousand renderings.
    """
    chosen: Collection[Path] = paths if len(paths) <= MAX_FIELDS else heapq.nsmallest(MAX_FIELDS, paths)
    if secret:
        chosen = [_secret_safe(path) for path in chosen]
    return tuple(sorted({render_path(path, redact_values=secret) for path in chosen}))


def rendered(finding: Finding, *, secret: bool) -> tuple[tuple[str, ...], int]:
    """The finding's fields rendered, and how many there are in all (more beyond MAX_FIELDS)."""
    fields = render_fields(finding.paths, secret=secret)
    unnamed = max(finding.count, len(finding.paths)) - len(finding.paths)
    return fields, len(fields) + unnamed + max(len(finding.paths) - MAX_FIELDS, 0)


def listed(fields: tuple[str, ...], total: int) -> Sequence[str]:
    """``fields`` padded to ``total`` items, so that a count of the ones not shown includes the unrendered."""
    return fields if total <= len(fields) else [*fields, *[""] * (total - len(fields))]


def drift_fields(fields: tuple[str, ...], total: int = 0) -> tuple[str, ...]:
    """The fields a drift stamp records, capped so that the annotation stays small however large the edit."""
    total = max(total, len(fields))
    if total <= MAX_DRIFT_FIELDS:
        return fields
    return (*fields[: MAX_DRIFT_FIELDS - 1], f"and {total - MAX_DRIFT_FIELDS + 1} more")


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
        fields = element_json(raw)
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
        return _render_scalar(element_json(raw))
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


def denial(finding: Finding, *, subject: Subject, fields: tuple[str, ...], total: int = 0) -> str:
    """The 403 message: the object, the fields, and the Application to change in Git instead."""
    claim = "claims to be" if finding.reason == "spoofed-marker" else "is"
    head = f"driftwarden: {subject.display} {claim} {_managed_by(subject)}; "
    tail = f". {_where_in_git(subject)}"
    if subject.find_app:  # the Scale has no driftwarden.io/guard annotation to read a mode from
        tail += " A Scale carries no annotations, so the webhook's default mode applies."
    template = _DETAIL.get(finding.reason, "this change is not allowed outside Git ({fields})")
    budget = max(MAX_MESSAGE_BYTES - len((head + template + tail).encode("utf-8", "surrogatepass")), 40)
    while True:
        text = head + template.format(fields=join_limited(listed(fields, total), max_chars=budget)) + tail
        # join_limited counts characters; non-ASCII paths take more bytes, so shrink until it fits.
        if len(text.encode("utf-8", "surrogatepass")) <= MAX_MESSAGE_BYTES or budget <= 40:
            return clip_bytes(text, max_bytes=MAX_MESSAGE_BYTES)
        budget //= 2


def drift_warnings(
    finding: Finding, *, subject: Subject, fields: tuple[str, ...], total: int = 0
) -> tuple[str, ...]:
    """Warn-mode warnings: what is drifting, one line per field (capped), and where to fix it."""
    lines = [f"driftwarden: {subject.display} is {_managed_by(subject)}"]
    lines.append(f"drift ({finding.reason}); the auditor will revert it unless Git changes")
    lines.extend(_field_lines("drift in", fields, total))
    return tuple(clip(line, max_chars=MAX_WARNING_CHARS) for line in lines)


def breakglass_warnings(
    finding: Finding, *, subject: Subject, fields: tuple[str, ...], total: int = 0
) -> tuple[str, ...]:
    """Break-glass warnings: the bypass is allowed and recorded, and Git still wins later."""
    lines = [f"driftwarden: break-glass change to Git-managed {subject.display} allowed and audited"]
    if finding.violation:
        # The auditor puts the object on hold (spec.guard.breakglassHold, 1h by default), then heals it.
        lines.append("the auditor holds this object for its breakglassHold (1h by default), then reverts it")
        lines.append("unless Git has the change; `driftwarden app release` ends the hold early")
        lines.extend(_field_lines("bypassed", fields, total))
    return tuple(clip(line, max_chars=MAX_WARNING_CHARS) for line in lines)


def _field_lines(label: str, fields: tuple[str, ...], total: int) -> list[str]:
    lines = [f"{label} {name}" for name in fields[:MAX_FIELD_WARNINGS]]
    total = max(total, len(fields))
    if total > MAX_FIELD_WARNINGS:
        lines.append(f"{label} {total - MAX_FIELD_WARNINGS} more fields")
    return lines


def audit(
    finding: Finding, *, verdict: str, mode: str, subject: Subject, fields: tuple[str, ...], total: int = 0
) -> Mapping[str, str]:
    """Audit annotations; the API server prefixes each key with the webhook's name."""
    notes = {"decision": verdict, "reason": finding.reason, "mode": mode, "object": subject.display}
    if subject.app:
        notes["app"] = subject.app
    if fields:
        notes["fields"] = join_limited(listed(fields, total), max_chars=_AUDIT_FIELDS_CHARS)
    return MappingProxyType(notes)
