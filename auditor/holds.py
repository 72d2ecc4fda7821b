"""Break-glass holds: an object edited through break-glass is left alone for a while instead of healed.

A hold is recorded by the auditor in the Application's ``status.holds`` (the authority: only the auditor
writes status) and pointed at by the ``driftwarden.io/hold`` annotation on the object (``{user, until}``).
It ends when it expires (``spec.guard.breakglassHold``, default 1h), when Git changes the held fields, or
when the annotation is removed (``driftwarden app release``); then the object is healed. An annotation
without a status entry is no hold: writing one by hand stops nothing.

Pure: plain dicts and datetimes in, frozen values out. No I/O, no clock reads (``now`` is passed in).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from auditor.diff.normalize import resolve_pointer
from auditor.durations import format_duration
from auditor.objects import annotations_of
from driftwarden.contract import ANNOTATION_HOLD, rfc3339
from driftwarden.objectref import ObjectRef, ResourceKey


@dataclass(frozen=True)
class Hold:
    """One object on hold: who edited it through break-glass, which fields, since and until when."""

    ref: ObjectRef
    user: str
    fields: tuple[str, ...]
    """JSON pointers of the fields the edit changed (as the diff names them), never values."""
    since: dt.datetime
    until: dt.datetime
    git: str
    """A digest of Git's values at ``fields`` when the hold began: a different one means Git changed them."""

    def entry(self) -> dict[str, Any]:
        """The ``status.holds[]`` entry."""
        return {
            "group": self.ref.group, "version": self.ref.version, "kind": self.ref.kind,
            "namespace": self.ref.namespace, "name": self.ref.name, "object": str(self.ref),
            "user": self.user, "fields": list(self.fields), "since": rfc3339(self.since),
            "until": rfc3339(self.until), "git": self.git,
        }  # fmt: skip

    def annotation(self) -> str:
        """The ``driftwarden.io/hold`` annotation's value."""
        return json.dumps({"user": self.user, "until": rfc3339(self.until)}, separators=(",", ":"))


def git_digest(manifest: Mapping[str, Any], pointers: Iterable[str]) -> str:
    """A fingerprint of what Git says at ``pointers`` (absent fields count too)."""
    values = []
    for pointer in sorted(set(pointers)):
        location = resolve_pointer(manifest, pointer)
        node: Any = manifest
        for step in location or ():
            node = node[step]
        values.append([pointer, node if location is not None else None])
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:16]


def begin(
    ref: ObjectRef,
    *,
    user: str,
    fields: Sequence[str],
    manifest: Mapping[str, Any],
    now: dt.datetime,
    seconds: float,
    previous: Hold | None = None,
) -> Hold:
    """A hold of ``ref`` from ``now`` for ``seconds``; a further break-glass edit widens and renews it."""
    held = tuple(dict.fromkeys([*(previous.fields if previous else ()), *fields]))
    return Hold(ref, user, held, now, now + dt.timedelta(seconds=seconds), git_digest(manifest, held))


def _time(value: object) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


def from_entry(entry: Mapping[str, Any]) -> Hold | None:
    """The hold a ``status.holds[]`` entry records; None when it is not one."""
    since, until = _time(entry.get("since")), _time(entry.get("until"))
    fields = entry.get("fields")
    if since is None or until is None or not isinstance(fields, list) or not entry.get("name"):
        return None
    ref = ObjectRef(*(str(entry.get(k) or "") for k in ("group", "version", "kind", "namespace", "name")))
    return Hold(ref, str(entry.get("user") or ""), tuple(str(f) for f in fields), since, until,
                str(entry.get("git") or ""))  # fmt: skip


def holds_of(status: Mapping[str, Any]) -> dict[ResourceKey, Hold]:
    """The holds an Application's status records, by object."""
    found = (from_entry(e) for e in status.get("holds") or [] if isinstance(e, Mapping))
    return {hold.ref.key: hold for hold in found if hold is not None}


def entries(holds: Iterable[Hold]) -> list[dict[str, Any]]:
    return [hold.entry() for hold in sorted(holds, key=lambda h: h.ref.key)]


def marked(obj: Mapping[str, Any] | None) -> bool:
    """Whether the object carries the ``driftwarden.io/hold`` annotation."""
    return obj is not None and ANNOTATION_HOLD in annotations_of(obj)


def ended(
    hold: Hold, *, now: dt.datetime, live: Mapping[str, Any] | None, manifest: Mapping[str, Any]
) -> str:
    """Why ``hold`` is over (``expired``, Git changed the fields, released), or "" while it holds."""
    if now >= hold.until:
        return f"expired after {format_duration((hold.until - hold.since).total_seconds())}"
    if git_digest(manifest, hold.fields) != hold.git:
        return f"Git changed {', '.join(hold.fields)}"
    if live is None:
        return "the object was deleted"
    if not marked(live):
        return "released (its driftwarden.io/hold annotation was removed)"
    return ""
