"""Begin and end break-glass holds (auditor.holds): status.holds, the object's annotation, Events, notes.

Orchestration shared by the watch-driven heal (a break-glass edit begins a hold; expiry or release ends
it) and the reconcile pass (it leaves held objects alone and ends holds Git has overtaken). Each step is
an Event on the Application and on the object, and a notification. The status is read fresh before each
write, since the heal and the pass both write ``status.holds``. It must not decide whether a hold holds
(auditor.holds does) and must not heal anything itself.
"""

from __future__ import annotations

from collections.abc import Sequence

from auditor.application import Application
from auditor.clients import AuditorClients
from auditor.holds import Hold, begin, entries, holds_of
from auditor.ledger import Ledger
from auditor.notify import NotificationEvent
from auditor.objects import AppKey
from driftwarden import contract
from driftwarden.contract import rfc3339
from driftwarden.objectref import ObjectRef, ResourceKey

BEGIN_REASON = "BreakGlassHold"
END_REASON = "BreakGlassHoldEnded"


def application_ref(app: AppKey) -> ObjectRef:
    return ObjectRef(contract.GROUP, contract.VERSION, contract.APPLICATION_KIND, app.namespace, app.name)


async def current_holds(clients: AuditorClients, app: AppKey) -> dict[ResourceKey, Hold]:
    found = await clients.store.get_application(app) or {}
    return dict(holds_of(found.get("status") or {}))


async def begin_hold(
    clients: AuditorClients,
    ledger: Ledger,
    app: Application,
    ref: ObjectRef,
    *,
    user: str,
    fields: Sequence[str],
    manifest: dict[str, object],
) -> Hold:
    """Put ``ref`` on hold for ``app.guard.breakglass_hold`` (a further edit renews and widens it)."""
    holds = await current_holds(clients, app.key)
    hold = begin(ref, user=user, fields=fields, manifest=manifest, now=clients.clock(),
                 seconds=app.guard.breakglass_hold, previous=holds.get(ref.key))  # fmt: skip
    holds[ref.key] = hold
    await clients.store.patch_application_status(app.key, {"holds": entries(holds.values())})
    annotations = {contract.ANNOTATION_DRIFT: None, contract.ANNOTATION_HOLD: hold.annotation()}
    ledger.own_write(ref, await clients.cluster.merge_patch(ref, {"metadata": {"annotations": annotations}}))
    until = rfc3339(hold.until)
    message = (
        f"{ref} is on hold until {until}: {user or 'someone'} changed {', '.join(hold.fields) or 'it'} "
        f"through break-glass. driftwarden leaves it alone until then, until Git changes those fields, or "
        f"until `driftwarden app release {app.name} --resource {ref.kind}/{ref.name}`; then it heals it."
    )
    await clients.events.record_event(application_ref(app.key), reason=BEGIN_REASON, message=message,
                                      type="Warning")  # fmt: skip
    await clients.events.record_event(ref, reason=BEGIN_REASON, message=f"on hold until {until} ({user})",
                                      type="Warning")  # fmt: skip
    if clients.notifier is not None:
        clients.notifier.notify(NotificationEvent(app.key, "breakglass_hold", (ref,), hold.fields,
                                                  manager=user, detail=f"on hold until {until}"))  # fmt: skip
    return hold


async def end_hold(
    clients: AuditorClients, ledger: Ledger, app: AppKey, hold: Hold, *, reason: str, unmark: bool
) -> None:
    """End ``hold`` (``unmark``: the object still carries the annotation, remove it): then it is healed."""
    holds = await current_holds(clients, app)
    if holds.pop(hold.ref.key, None) is not None:
        await clients.store.patch_application_status(app, {"holds": entries(holds.values())})
    if unmark:
        patch = {"metadata": {"annotations": {contract.ANNOTATION_HOLD: None}}}
        ledger.own_write(hold.ref, await clients.cluster.merge_patch(hold.ref, patch))
    message = f"{hold.ref}: the break-glass hold ({hold.user}) ended: {reason}; Git's state applies again"
    await clients.events.record_event(application_ref(app), reason=END_REASON, message=message)
    await clients.events.record_event(hold.ref, reason=END_REASON, message=f"hold ended: {reason}")
    if clients.notifier is not None:
        clients.notifier.notify(NotificationEvent(app, "hold_ended", (hold.ref,), hold.fields,
                                                  manager=hold.user, detail=f"ended: {reason}"))  # fmt: skip
