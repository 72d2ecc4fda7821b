"""Pure decisions of the watch-driven heal: who drifted an object, backoff, field fights, drift records.

Who drifted an object is the user the API server authenticated, as the webhook's drift stamp records it
(driftwarden.contract.drift_stamp; the webhook replaces any stamp a requester writes). A field manager
is a name the writer chose, so it never stands for the user: without a stamp the record says the user
is unknown. Healing may stop for good (a fight) only against a controller: a ``system:`` user (service
accounts and Kubernetes' own components), or, without a stamp, a manager name of Kubernetes' own
controllers. A person who edits again and again is healed again and again, with backoff.

No I/O, no clock reads (``now`` is passed in), no logging. ``HealBook`` is the one stateful piece: a
plain in-memory record per object that the heal orchestration (auditor.heal) consults and updates.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from driftwarden import contract
from driftwarden.contract import DriftStamp, rfc3339

FIGHT_HEALS = 5
"""Rapid re-drifts in a row by the same other manager that make a fight."""
RAPID = 1.0
"""Seconds after a heal within which drifting again counts as "again and again" (a controller fighting
back reverts within moments; a person editing does not). Only rapid re-drifts back off or make fights."""
BACKOFF_INITIAL = 0.25
BACKOFF_MAX = 30.0
DRIFT_RECORDS = 20
UNKNOWN_USER = "unknown (no drift stamp: the webhook did not flag this edit)"
"""What a drift record says for the user when no drift stamp named one: the system cannot know."""
CONTROLLER_MANAGERS: Mapping[str, str] = {
    "kube-controller-manager": "system:kube-controller-manager",
    "cloud-controller-manager": "system:cloud-controller-manager",
    "kube-scheduler": "system:kube-scheduler",
}
"""Field manager names of Kubernetes' own controllers, and the identities they run as."""
OWN_WRITE_WINDOW = 5.0
"""Seconds within which driftwarden's newest apply on an object is taken as the cause of its watch event."""


def last_writer(obj: Mapping[str, Any], *, exclude: Iterable[str] = (contract.FIELD_MANAGER,)) -> str:
    """The field manager (other than ours) with the newest managedFields entry that writes the object.

    Status entries do not count (status is no drift); scale entries do (an HPA scales the object).
    """
    skip = set(exclude)
    entries = [
        e
        for e in (obj.get("metadata") or {}).get("managedFields") or []
        if isinstance(e, Mapping)
        and e.get("manager") not in skip
        and e.get("subresource") in (None, "", "scale")
    ]
    if not entries:
        return ""
    newest = max(entries, key=lambda e: str(e.get("time", "")))
    return str(newest.get("manager", ""))


@dataclass(frozen=True)
class Writer:
    """Who changed an object: ``user`` as the webhook's stamp names it ("" when none did), and the
    ``manager`` of the newest managedFields entry, a name the writer chose."""

    user: str
    manager: str

    @classmethod
    def of(cls, live: Mapping[str, Any] | None, stamp: DriftStamp | None) -> Writer:
        manager = last_writer(live) if live is not None else "deleted"
        return cls(stamp.user if stamp is not None else "", manager)

    @property
    def identity(self) -> str:
        """The controller identity it is known to be, or ""."""
        if self.user:
            return self.user if self.user.startswith("system:") and self.user != "system:anonymous" else ""
        return CONTROLLER_MANAGERS.get(self.manager, "")

    @property
    def name(self) -> str:
        """Who it is, for a streak of re-drifts: the user when known, else the manager."""
        return self.user or f"manager {self.manager}"

    def describe(self) -> str:
        """Words for people: the user, and the field manager for what it is."""
        who = self.user or "an unknown user"
        return f"{who} (field manager {self.manager!r})" if self.manager else who


def written_by_driftwarden(obj: Mapping[str, Any], *, now: dt.datetime) -> bool:
    """True when driftwarden's own apply is the newest write to the main resource, made moments ago.

    A sync or rollback run from the command line writes as driftwarden from another process, so the
    heal's ledger does not know its resourceVersion; the object itself says who wrote last. Another
    manager's write in the same second counts as theirs (drift), never as ours; and only a write within
    ``OWN_WRITE_WINDOW`` counts, since an edit that only removes fields leaves no entry of its own.
    """
    entries = [e for e in (obj.get("metadata") or {}).get("managedFields") or [] if isinstance(e, Mapping)]
    ours = [str(e.get("time", "")) for e in entries
            if e.get("manager") == contract.FIELD_MANAGER and e.get("operation") == "Apply"]  # fmt: skip
    others = [str(e.get("time", "")) for e in entries
              if e.get("manager") != contract.FIELD_MANAGER and not e.get("subresource")]  # fmt: skip
    if not ours or any(max(ours) <= other for other in others):
        return False
    try:
        written = dt.datetime.fromisoformat(max(ours).replace("Z", "+00:00"))
    except ValueError:
        return False
    return abs((now - written).total_seconds()) <= OWN_WRITE_WINDOW


def drift_record(
    *, ref: str, fields: Sequence[str], manager: str, user: str, at: dt.datetime, action: str
) -> dict[str, Any]:
    """One entry of ``status.drift``: who, when, which fields (paths, never values), what was done.

    ``user`` is the authenticated user the drift stamp names; "" becomes UNKNOWN_USER, never a manager.
    """
    return {
        "object": ref,
        "fields": list(fields)[:20],
        "manager": manager,
        "user": user or UNKNOWN_USER,
        "at": rfc3339(at),
        "action": action,
    }


def stray_owners(live: Mapping[str, Any], desired: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A JSON patch removing the ownerReferences of ``live`` that Git does not declare; [] if none.

    The webhook lets no one but the GitOps identity add an owner (deleting it would have the garbage
    collector delete the object), so an owner Git does not declare is drift: a heal takes it off. The
    ``test`` makes the patch fail rather than drop an owner added meanwhile.
    """
    owners = (live.get("metadata") or {}).get("ownerReferences")
    if not isinstance(owners, list) or not owners or (live.get("metadata") or {}).get("deletionTimestamp"):
        return []
    wanted = {
        str(o.get("uid"))
        for o in (desired.get("metadata") or {}).get("ownerReferences") or []
        if isinstance(o, Mapping)
    }
    kept = [o for o in owners if isinstance(o, Mapping) and str(o.get("uid")) in wanted]
    if len(kept) == len(owners):
        return []
    path = "/metadata/ownerReferences"
    return [{"op": "test", "path": path, "value": owners}, {"op": "replace", "path": path, "value": kept}]


def append_drift(records: Sequence[Mapping[str, Any]], record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``records`` plus ``record``, newest last, keeping the last ``DRIFT_RECORDS``."""
    return [*(dict(r) for r in records), dict(record)][-DRIFT_RECORDS:]


@dataclass
class ObjectHeals:
    """What the heal loop remembers about one object."""

    last_heal: float | None = None
    streak: int = 0
    streak_manager: str = ""
    backoff: float = 0.0
    fight: tuple[Writer, tuple[str, ...]] | None = None
    fight_desired: str = ""


@dataclass(frozen=True)
class Verdict:
    """What to do with a drifted object now."""

    heal: bool
    delay: float = 0.0
    fight: tuple[Writer, tuple[str, ...]] | None = None
    """Set when a fight was just detected: (the controller, fields)."""


class HealBook:
    """Per-object heal history: backoff when an object drifts again and again, fights with a controller."""

    def __init__(self) -> None:
        self._objects: dict[str, ObjectHeals] = {}

    def state(self, key: str) -> ObjectHeals:
        return self._objects.setdefault(key, ObjectHeals())

    def decide(self, key: str, *, writer: Writer, fields: Sequence[str], desired: str, now: float) -> Verdict:
        """Heal now, after a backoff, or not at all (a fight is on and Git has not changed since).

        Only a controller can win a fight; a person, or a writer nobody can name, is healed every time.
        """
        item = self.state(key)
        if item.fight is not None:
            if desired == item.fight_desired:
                return Verdict(heal=False)
            item.fight, item.streak = None, 0  # Git changed: try again
        rapid = item.last_heal is not None and now - item.last_heal <= RAPID
        if not rapid:
            item.streak, item.backoff = 0, 0.0
            return Verdict(heal=True)
        item.streak = item.streak + 1 if writer.name == item.streak_manager else 1
        item.streak_manager = writer.name
        if writer.identity and item.streak >= FIGHT_HEALS:
            item.fight, item.fight_desired = (writer, tuple(fields)), desired
            return Verdict(heal=False, fight=item.fight)
        item.backoff = BACKOFF_INITIAL if item.backoff == 0 else min(item.backoff * 2, BACKOFF_MAX)
        return Verdict(heal=True, delay=item.backoff)

    def healed(self, key: str, *, now: float) -> None:
        """Record a heal of ``key`` at ``now``."""
        self.state(key).last_heal = now
