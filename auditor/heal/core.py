"""Pure decisions of the watch-driven heal: who drifted an object, backoff, field fights, drift records.

The webhook's drift stamp is read with driftwarden.contract.drift_stamp.

No I/O, no clock reads (``now`` is passed in), no logging. ``HealBook`` is the one stateful piece: a
plain in-memory record per object that the heal orchestration (auditor.heal) consults and updates.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from driftwarden import contract
from driftwarden.contract import rfc3339

FIGHT_HEALS = 5
"""Rapid re-drifts in a row by the same other manager that make a fight."""
RAPID = 1.0
"""Seconds after a heal within which drifting again counts as "again and again" (a controller fighting
back reverts within moments; a person editing does not). Only rapid re-drifts back off or make fights."""
BACKOFF_INITIAL = 0.25
BACKOFF_MAX = 30.0
DRIFT_RECORDS = 20
OWN_WRITE_WINDOW = 5.0
"""Seconds within which driftwarden's newest apply on an object is taken as the cause of its watch event."""


def last_writer(obj: Mapping[str, Any], *, exclude: Iterable[str] = (contract.FIELD_MANAGER,)) -> str:
    """The field manager (other than ours) with the newest managedFields entry on the main resource."""
    skip = set(exclude)
    entries = [
        e
        for e in (obj.get("metadata") or {}).get("managedFields") or []
        if isinstance(e, Mapping) and e.get("manager") not in skip and not e.get("subresource")
    ]
    if not entries:
        return ""
    newest = max(entries, key=lambda e: str(e.get("time", "")))
    return str(newest.get("manager", ""))


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
    """One entry of ``status.drift``: who, when, which fields (paths, never values), what was done."""
    return {
        "object": ref,
        "fields": list(fields)[:20],
        "manager": manager,
        "user": user,
        "at": rfc3339(at),
        "action": action,
    }


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
    fight: tuple[str, tuple[str, ...]] | None = None
    fight_desired: str = ""


@dataclass(frozen=True)
class Verdict:
    """What to do with a drifted object now."""

    heal: bool
    delay: float = 0.0
    fight: tuple[str, tuple[str, ...]] | None = None
    """Set when a fight was just detected: (manager, fields)."""


class HealBook:
    """Per-object heal history: backoff when an object drifts again and again, fights with one manager."""

    def __init__(self) -> None:
        self._objects: dict[str, ObjectHeals] = {}

    def state(self, key: str) -> ObjectHeals:
        return self._objects.setdefault(key, ObjectHeals())

    def decide(self, key: str, *, manager: str, fields: Sequence[str], desired: str, now: float) -> Verdict:
        """Heal now, after a backoff, or not at all (a fight is on and Git has not changed since)."""
        item = self.state(key)
        if item.fight is not None:
            if desired == item.fight_desired:
                return Verdict(heal=False)
            item.fight, item.streak = None, 0  # Git changed: try again
        rapid = item.last_heal is not None and now - item.last_heal <= RAPID
        if not rapid:
            item.streak, item.backoff = 0, 0.0
            return Verdict(heal=True)
        item.streak = item.streak + 1 if manager == item.streak_manager else 1
        item.streak_manager = manager
        if manager and item.streak >= FIGHT_HEALS:
            item.fight, item.fight_desired = (manager, tuple(fields)), desired
            return Verdict(heal=False, fight=item.fight)
        item.backoff = BACKOFF_INITIAL if item.backoff == 0 else min(item.backoff * 2, BACKOFF_MAX)
        return Verdict(heal=True, delay=item.backoff)

    def healed(self, key: str, *, now: float) -> None:
        """Record a heal of ``key`` at ``now``."""
        self.state(key).last_heal = now
