"""The ledger the reconcile pass and the watch-driven heal share: what Git wants, our writes, paused fights.

Three facts, each written by one side and read by the other, so neither has to call the other:

- **desired**: per object, the manifest the last compared pass says Git wants and the Application that
  says it. The Reconciler writes it right after comparing (before anything is applied), so a heal never
  heals toward the past; the Healer reads it, and watches every kind it names.
- **own versions**: the resourceVersion of each object as our own last write stored it. Both write it
  (a sync's apply, a heal's apply); the Healer reads it to know a watch event as our own write coming back.
- **paused fights**: objects whose field fight the Healer gave up on until Git changes. The Healer writes
  them; a sync reads them and leaves those objects alone, saying why. A pass that brings a new desired
  state for an object lifts its pause.

In-memory state of one auditor term (a new leader starts with an empty ledger). Each desired manifest is
kept packed (auditor.compact: compact JSON, a fraction of the dicts' memory), as the heal reads it
rarely. It must not do I/O, log, read a clock or hold anything but plain data; ``new_kinds`` and
``kinds_changed`` only wait for the next ``want`` or ``forget``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass
from typing import Any

from auditor.application import Application
from auditor.compact import Packed, fingerprint, pack, unpack
from auditor.objects import AppKey, GroupKind
from driftwarden.objectref import ObjectRef, ResourceKey

OWN_VERSIONS = 4
"""Our last writes remembered per object."""


@dataclass(frozen=True)
class Desired:
    """What Git says one object must be, and the Application that says it."""

    app: Application
    packed: Packed
    digest: str

    @property
    def manifest(self) -> dict[str, Any]:
        """The manifest Git says (a new copy each time when it is kept packed)."""
        return unpack(self.packed)


@dataclass(frozen=True)
class Pause:
    """A field fight the heal gave up on: who keeps taking which fields back, against which desired state."""

    manager: str
    fields: tuple[str, ...]
    digest: str
    """The desired state's digest when the fight was called; a different one lifts the pause."""

    @property
    def reason(self) -> str:
        fields = ", ".join(self.fields) or "it"
        return f"not applied: field manager {self.manager!r} keeps changing {fields} (DriftFight)"


def digest(manifest: Mapping[str, Any]) -> str:
    """A short fingerprint of a desired manifest: equal digests, equal desired states."""
    return fingerprint(manifest).hex()[:16]


class Ledger:
    """Shared by one Reconciler and one Healer of the same auditor term; safe on one event loop."""

    def __init__(self) -> None:
        self._desired: dict[ResourceKey, Desired] = {}
        self._own: dict[ResourceKey, tuple[str, ...]] = {}
        self._paused: dict[ResourceKey, Pause] = {}
        self._wanted = asyncio.Event()

    # What Git wants: written by the Reconciler, read by the Healer.

    def want(self, app: Application, manifests: Iterable[dict[str, Any]]) -> None:
        """``app`` now wants exactly ``manifests``: replaces what it wanted before, lifts stale pauses."""
        for key in [k for k, d in self._desired.items() if d.app.key == app.key]:
            del self._desired[key]
        for manifest in manifests:
            key = ObjectRef.from_manifest(manifest).key
            self._desired[key] = Desired(app, pack(manifest), digest(manifest))
        for key, pause in list(self._paused.items()):
            wanted = self._desired.get(key)
            if wanted is None or wanted.digest != pause.digest:
                del self._paused[key]  # Git changed (or dropped it) since the fight: heal and sync again
        self._wanted.set()

    def forget(self, app: AppKey) -> None:
        """``app`` is being deleted: it wants nothing any more, so nothing of it is healed."""
        for key in [k for k, d in self._desired.items() if d.app.key == app]:
            del self._desired[key]
            self._paused.pop(key, None)
        self._wanted.set()  # kinds no one wants any more stop being watched

    def desired(self, key: ResourceKey) -> Desired | None:
        return self._desired.get(key)

    def kinds(self) -> set[GroupKind]:
        """Every (group, kind) some Application wants an object of."""
        return {(key.group, key.kind) for key in self._desired}

    async def kinds_changed(self, known: Set[GroupKind]) -> set[GroupKind]:
        """The wanted kinds, once they differ from ``known`` (a kind appeared, or none wants one any more)."""
        while True:
            self._wanted.clear()
            kinds = self.kinds()
            if kinds != set(known):
                return kinds
            await self._wanted.wait()

    async def new_kinds(self, known: Set[GroupKind]) -> list[GroupKind]:
        """The wanted kinds not in ``known``, sorted; waits for the next ``want`` until there is one."""
        while True:
            self._wanted.clear()
            new = sorted(self.kinds() - known)
            if new:
                return new
            await self._wanted.wait()

    # Our own writes: written by both, read by the Healer.

    def own_write(self, ref: ObjectRef, stored: Mapping[str, Any]) -> None:
        """We stored ``ref`` as ``stored`` (what the API server returned): its watch event is no drift."""
        version = (stored.get("metadata") or {}).get("resourceVersion")
        if version:
            # A heal writes twice (the apply, then the stamp's removal): both come back as watch events.
            self._own[ref.key] = (*self._own.get(ref.key, ())[-(OWN_VERSIONS - 1) :], str(version))

    def is_own(self, key: ResourceKey, version: str) -> bool:
        return bool(version) and version in self._own.get(key, ())

    # Paused fights: written by the Healer, read by the Reconciler.

    def pause(self, key: ResourceKey, *, manager: str, fields: Iterable[str], digest: str) -> None:
        self._paused[key] = Pause(manager, tuple(fields), digest)

    def paused(self, ref: ObjectRef) -> str:
        """Why a sync must not apply ``ref`` now (a fight the heal gave up until Git changes), else ""."""
        pause = self._paused.get(ref.key)
        return pause.reason if pause is not None else ""
