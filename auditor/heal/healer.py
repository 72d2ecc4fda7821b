"""Watch-driven self-heal: one object at a time, between full passes (orchestration).

Every kind the Applications manage is watched (label ``driftwarden.io/app``), resumed after a dropped
connection and relisted after 410 Gone (driftwarden.kube.watch); a kind the API server does not serve is
tried again with back-off, and a kind no Application wants any more stops being watched
(auditor.heal.watches). An event whose resourceVersion is our own
write is ignored. Any other change to a managed object is re-diffed against what Git says (SSA dry run)
and, with ``selfHeal``, healed at once; a deleted one is recreated. A webhook drift stamp
(``driftwarden.io/drift``) is removed with the heal, and the heal span links to the edit's trace.
Repeated heals back off; a controller that keeps taking the same fields back gets a ``DriftFight``
condition, Event and notification naming it, and the object is left alone until Git changes. A person
never wins that way (auditor.heal.core.Writer): their edits are healed every time. Owners Git does not
declare are removed with the heal (the webhook lets no one else add one).

What Git wants, and which writes were ours, it reads from the ledger (auditor.ledger) that the reconcile
pass writes; a paused fight it writes there for the pass to read. It must not call the reconcile pass,
and it heals only toward what the ledger says: never toward a manifest it rendered or guessed itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from opentelemetry.trace import Link

from auditor.application import Application
from auditor.clients import AuditorClients
from auditor.compact import fingerprint
from auditor.diff.compare import strict_diff
from auditor.diff.normalize import normalize
from auditor.diff.objectdiff import ObjectDiff, diff_object
from auditor.heal.core import (
    HealBook,
    Writer,
    append_drift,
    drift_record,
    stray_owners,
    written_by_driftwarden,
)
from auditor.heal.holding import Holds
from auditor.heal.watches import KindWatches
from auditor.ledger import Desired, Ledger
from auditor.notify import NotificationEvent
from auditor.objects import GroupKind
from auditor.status import set_condition
from auditor.sync.apply import apply_object
from auditor.sync.takeover import STRICT_OPTION
from driftwarden import contract
from driftwarden.contract import DriftStamp, drift_stamp
from driftwarden.errors import DriftwardenError
from driftwarden.kube.watch import Informer
from driftwarden.objectref import ObjectRef, ResourceKey
from driftwarden.telemetry.semconv import name_attribute
from driftwarden.telemetry.tracecontext import span_context

log = logging.getLogger(__name__)

DRIFT_FIGHT = "DriftFight"
STALE_RETRIES = 3
"""Fresh reads of an object whose watch event was stale, before judging the newest copy seen."""


def _version(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))


def _link(stamp: DriftStamp | None) -> list[Link]:
    """A span link to the admission span that flagged the edit (W3C traceparent in the drift stamp)."""
    context = span_context(stamp.traceparent) if stamp else None
    return [Link(context)] if context is not None else []


class KeyedLocks:
    """One lock per object while a check holds or waits for it, none kept for the others (10,000 objects
    watched would otherwise keep 10,000 locks)."""

    def __init__(self) -> None:
        self._held: dict[ResourceKey, tuple[asyncio.Lock, int]] = {}

    def __len__(self) -> int:
        return len(self._held)

    @contextlib.asynccontextmanager
    async def hold(self, key: ResourceKey) -> AsyncIterator[None]:
        lock, users = self._held.get(key) or (asyncio.Lock(), 0)
        self._held[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._held[key]
            if users == 1:
                del self._held[key]
            else:
                self._held[key] = (lock, users - 1)


class Healer:
    """Heals managed objects as their watch events arrive; ``run`` watches each kind the ledger wants.

    It reads what Git wants and which writes were ours from ``ledger``, records its own heals there, and
    pauses there the objects whose field fight it gave up, so a sync leaves them alone too.
    """

    def __init__(self, clients: AuditorClients, ledger: Ledger) -> None:
        self.clients = clients
        self.ledger = ledger
        self.cluster = clients.cluster
        self.tracer = clients.tracer
        self.book = HealBook()
        self.holds = Holds(clients, ledger, self.recheck)
        self._locks = KeyedLocks()
        self.watches = KindWatches(ledger, self._watch)
        self._shapes: dict[ResourceKey, bytes | None] = {}
        """Each object as last seen, normalised (its fingerprint): events that change nothing Git could own
        are skipped."""
        self.heals = 0
        self.checks = 0

    @property
    def _watches(self) -> dict[GroupKind, asyncio.Task[None]]:
        """The running watches by kind (auditor.heal.watches)."""
        return self.watches.tasks

    async def run(self) -> None:
        """Watch each kind some Application wants, from when it appears until none wants it (or this ends)."""
        try:
            await self.watches.run()
        finally:
            await self.stop()

    async def stop(self) -> None:
        await self.holds.stop()
        await self.watches.stop()

    async def _watch(self, group: str, kind: str) -> None:
        """Resolve the kind (``UnknownKindError`` when it is not served) and watch it until cancelled."""
        path = await self.cluster.collection_path(group, kind)
        await Informer(self.clients.api, path, label_selector=contract.LABEL_APP).run(self.on_event)

    async def on_event(self, kind: str, obj: dict[str, Any]) -> None:
        ref = ObjectRef.from_manifest(obj)
        desired = self.ledger.desired(ref.key)
        if desired is None:
            return
        version = str((obj.get("metadata") or {}).get("resourceVersion", ""))
        shape = fingerprint(normalize(obj)) if kind != "DELETED" else None
        before, self._shapes[ref.key] = self._shapes.get(ref.key), shape
        if kind != "DELETED" and self.ledger.is_own(ref.key, version):
            return  # our own write coming back
        if shape is not None and shape == before and drift_stamp(obj) is None:
            return  # only status or bookkeeping changed (controllers write status all the time)
        self.checks += 1
        async with self._locks.hold(ref.key):
            try:
                seen = self.clients.monotonic()
                await self._check(ref, None if kind == "DELETED" else obj, desired, seen=seen)
            except DriftwardenError as exc:
                log.warning("heal of %s failed: %s", ref, exc)

    async def recheck(self, ref: ObjectRef) -> None:
        """Judge ``ref`` again now, as if its watch event had just come (a break-glass hold ended)."""
        desired = self.ledger.desired(ref.key)
        if desired is None:
            return
        async with self._locks.hold(ref.key):
            await self._check(ref, await self.cluster.get(ref), desired, seen=self.clients.monotonic())

    async def _check(
        self, ref: ObjectRef, live: dict[str, Any] | None, desired: Desired, *, seen: float
    ) -> None:
        """``seen``: when the edit's watch event arrived (within milliseconds of the edit itself)."""
        if live is None:  # the label-selected watch says DELETED too when someone removes the app label
            live = await self.cluster.get(ref)
        dry = await self.cluster.dry_run_apply(desired.manifest)
        for _ in range(STALE_RETRIES):
            if live is None or _version(dry) == _version(live):
                break
            # The event's copy is stale: the dry run saw a newer version (a controller's write, or our own
            # heal). Judging the stale copy would "heal" an edit already undone and blame whoever wrote last
            # (the Deployment controller, for one); skipping it could miss a drift hidden behind a
            # status-only write. So judge the newest version.
            live = await self.cluster.get(ref)
            if live is None:
                return  # deleted meanwhile: its DELETED event is checked in turn
            dry = await self.cluster.dry_run_apply(desired.manifest)
        strict = desired.app.sync_policy.enabled(STRICT_OPTION)
        diff = strict_diff(diff_object(dry, live, ignore=desired.app.ignore_differences), live, strict=strict)
        stamp = drift_stamp(live) if live is not None else None
        owners = stray_owners(live, desired.manifest) if live is not None else []  # owners Git did not set
        in_sync = diff.in_sync and not owners
        if await self.holds.leave_alone(ref, desired, live, stamp, diff) or (in_sync and stamp is None):
            return  # on hold after a break-glass edit (auditor.heal.holding), or nothing to heal
        if live is not None and stamp is None and written_by_driftwarden(live, now=self.clients.clock()):
            return  # `app sync`/`rollback` (another process) wrote it: the pass judges that, it is no drift
        automated = desired.app.sync_policy.automated
        writer = Writer.of(live, stamp)
        if automated is None or not automated.self_heal:
            await self._report(ref, desired, diff, writer, stamp, action="reported")
            return
        verdict = self.book.decide(
            str(ref.key),
            writer=writer,
            fields=diff.changed_paths,
            desired=desired.digest,
            now=self.clients.monotonic(),
        )
        if verdict.fight is not None:
            fighter, fields = verdict.fight
            self.ledger.pause(ref.key, manager=fighter.manager, fields=fields, digest=desired.digest)
            await self._fight(ref, desired, fighter, fields)
            return
        if not verdict.heal:
            return
        if verdict.delay:
            await asyncio.sleep(verdict.delay)
        await self._heal(ref, desired, diff, writer, stamp, seen=seen, live=live)

    async def _heal(
        self, ref: ObjectRef, desired: Desired, diff: ObjectDiff, writer: Writer, stamp: DriftStamp | None,
        *, seen: float, live: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        with self.tracer.start_as_current_span("auditor.heal", links=_link(stamp)) as span:
            span.set_attribute("driftwarden.app", str(desired.app.key))
            span.set_attribute("k8s.namespace.name", ref.namespace)
            span.set_attribute("k8s.resource.name", ref.name)
            span.set_attribute("driftwarden.kind", ref.kind)
            span.set_attribute("driftwarden.fields", list(diff.changed_paths))
            span.set_attribute("driftwarden.manager", writer.manager)
            if writer.user:
                span.set_attribute("enduser.id", writer.user)
            if named := name_attribute(group=ref.group, kind=ref.kind):
                span.set_attribute(named, ref.name)  # k8s.deployment.name and the like
            policy = desired.app.sync_policy
            stored = await apply_object(
                self.cluster, desired.manifest, live=live, strict=policy.enabled(STRICT_OPTION),
                ignore=desired.app.ignore_differences if policy.respect_ignore_differences else (),
            )  # fmt: skip
            self.ledger.own_write(ref, stored)  # before the next write: its watch event is ours too
            if owners := stray_owners(stored, desired.manifest):  # the webhook lets nobody else add one
                self.ledger.own_write(ref, await self.cluster.json_patch(ref, owners))
            if stamp is not None:  # a merge patch: removing a stamp already gone is no error
                remove = {"metadata": {"annotations": {contract.ANNOTATION_DRIFT: None}}}
                self.ledger.own_write(ref, await self.cluster.merge_patch(ref, remove))
            # The record and Events are part of the heal's trace (their API requests are its children).
            await self._healed(ref, desired, diff, writer, stamp, seen=seen)

    async def _healed(
        self, ref: ObjectRef, desired: Desired, diff: ObjectDiff, writer: Writer, stamp: DriftStamp | None,
        *, seen: float,
    ) -> None:  # fmt: skip
        self.book.healed(str(ref.key), now=self.clients.monotonic())
        self.heals += 1
        if self.clients.notifier is not None:
            paths = diff.changed_paths
            self.clients.notifier.notify(
                NotificationEvent(desired.app.key, "drift_healed", (ref,), paths, manager=writer.describe())
            )
        latency = self.clients.monotonic() - seen
        self.clients.instruments.record_drift_healed(str(desired.app.key), ref.group_kind, latency)
        log.info(
            "heal app=%s object=%s action=%s fields=%s manager=%s user=%s seconds=%.3f", desired.app.key, ref,
            diff.action, diff.changed_paths, writer.manager, writer.user, latency,
        )  # fmt: skip  # one event line per heal (driftwarden.logs): field paths, never values
        await self._report(ref, desired, diff, writer, stamp, action="healed")

    async def _report(
        self,
        ref: ObjectRef,
        desired: Desired,
        diff: ObjectDiff,
        writer: Writer,
        stamp: DriftStamp | None,
        *,
        action: str,
    ) -> None:
        fields = list(diff.changed_paths) or list(stamp.fields if stamp else ())
        what = "recreated" if diff.action == "create" else "reverted"
        message = f"{ref}: {', '.join(fields) or 'deleted'} changed by {writer.describe()}"
        self.clients.instruments.record_drift_detected(str(desired.app.key), ref.group_kind)
        events = self.clients.events
        app_ref = self._app_ref(desired.app)
        await events.record_event(app_ref, reason="DriftDetected", message=message, type="Warning")
        if action == "healed":
            await events.record_event(app_ref, reason="SelfHealed", message=f"{ref} {what} to Git's state")
            await events.record_event(
                ref, reason="SelfHealed", message=f"{what} to Git's state ({', '.join(fields)})"
            )
        record = drift_record(
            ref=str(ref), fields=fields, manager=writer.manager, user=writer.user, at=self.clients.clock(),
            action=action,
        )  # fmt: skip
        store = self.clients.store
        current = await store.get_application(desired.app.key) or {}
        drift = append_drift(((current.get("status") or {}).get("drift")) or [], record)
        await store.patch_application_status(desired.app.key, {"drift": drift})

    async def _fight(
        self, ref: ObjectRef, desired: Desired, fighter: Writer, fields: tuple[str, ...]
    ) -> None:
        """Give up a fight against a controller, loudly: a condition, an Event and a notification."""
        message = (
            f"{ref}: field manager {fighter.manager!r} (controller {fighter.identity}) keeps changing "
            f"{', '.join(fields) or 'it'} back; driftwarden stopped healing it until Git changes. Remove "
            f"the field from Git, or stop {fighter.manager} from managing it (an HPA on spec.replicas: "
            "drop replicas from Git)."
        )
        store = self.clients.store
        current = await store.get_application(desired.app.key) or {}
        conditions = (current.get("status") or {}).get("conditions") or []
        updated = set_condition(conditions, type=DRIFT_FIGHT, message=message, at=self.clients.clock())
        await store.patch_application_status(desired.app.key, {"conditions": updated})
        await self.clients.events.record_event(
            self._app_ref(desired.app), reason="DriftFight", message=message, type="Warning"
        )
        if self.clients.notifier is not None:
            self.clients.notifier.notify(
                NotificationEvent(desired.app.key, "drift_fight", (ref,), fields, manager=fighter.describe())
            )

    @staticmethod
    def _app_ref(app: Application) -> ObjectRef:
        return ObjectRef(contract.GROUP, contract.VERSION, contract.APPLICATION_KIND, app.namespace, app.name)
