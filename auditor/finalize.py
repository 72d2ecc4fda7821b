"""When an Application is deleted: delete its objects (the resources finalizer) or release them.

As Argo CD's ``resources-finalizer``: with ``resources-finalizer.driftwarden.io`` (foreground propagation,
also spelled ``.../foreground``) or ``resources-finalizer.driftwarden.io/background`` on the Application,
its objects are deleted, each after checking its tracking id, in reverse stage order (namespaced objects,
then cluster-scoped ones, then Namespaces and CRDs); once they are gone the finalizer is removed and the
API server deletes the Application. Without it they are orphaned *and released*: the ``driftwarden.io/app``
label and the tracking, guard, break-glass and drift annotations are removed, so nothing guards them. An
object marked ``Delete=false`` (driftwarden's or Argo CD's sync-options) is released instead of deleted.

Orchestration over the cluster adapter and the Application store; it must not decide what Git wants.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from auditor.clients import AuditorClients
from auditor.kube.cluster import Propagation
from auditor.kube.discovery import UnknownKindError
from auditor.objects import AppKey, delete_disabled
from auditor.sync.changeset import KIND_ORDER, stage_of
from driftwarden import contract
from driftwarden.cancellation import stop_if_cancelled
from driftwarden.errors import TemporaryError
from driftwarden.objectref import ObjectRef

log = logging.getLogger(__name__)

FINALIZER = "resources-finalizer.driftwarden.io"
FOREGROUND_FINALIZER = f"{FINALIZER}/foreground"
BACKGROUND_FINALIZER = f"{FINALIZER}/background"
FINALIZERS: Mapping[str, Propagation] = {
    FINALIZER: "Foreground",
    FOREGROUND_FINALIZER: "Foreground",
    BACKGROUND_FINALIZER: "Background",
}
RELEASED_ANNOTATIONS = (
    contract.ANNOTATION_TRACKING_ID,
    contract.ANNOTATION_GUARD,
    contract.ANNOTATION_DRIFT,
    contract.ANNOTATION_GUARD_ALLOW,
    contract.ANNOTATION_HOLD,
)
GONE_TIMEOUT = 120.0
_POLL = 0.5


def finalizer_of(obj: Mapping[str, Any]) -> str | None:
    """Our resources finalizer on the Application ``obj``, or None."""
    found = (obj.get("metadata") or {}).get("finalizers") or []
    return next((f for f in found if f in FINALIZERS), None)


def deletion_order(objects: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Objects in the order to delete them: an object before the Namespace or CRD that holds it."""
    rank = {kind: i for i, kind in enumerate(KIND_ORDER)}

    def order(obj: Mapping[str, Any]) -> tuple[int, int, str, str]:
        ref = ObjectRef.from_manifest(obj)
        return (-stage_of(ref), -rank.get(ref.kind, len(KIND_ORDER)), ref.namespace, ref.name)

    return sorted(objects, key=order)


def _key(obj: Mapping[str, Any]) -> AppKey:
    meta = obj.get("metadata") or {}
    return AppKey(str(meta.get("namespace", "")), str(meta.get("name", "")))


def _kinds(obj: Mapping[str, Any]) -> list[tuple[str, str]]:
    resources = (obj.get("status") or {}).get("resources") or []
    return sorted({(str(r.get("group", "")), str(r.get("kind", ""))) for r in resources if r.get("kind")})


async def owned_objects(clients: AuditorClients, app: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The live objects whose tracking id names ``app``, of the kinds its status recorded."""
    found: list[dict[str, Any]] = []
    for kind in _kinds(app):
        try:
            found += await clients.cluster.list_managed(_key(app), kinds=[kind])
        except UnknownKindError:
            continue  # a kind no longer served (its CRD is gone): nothing of it is left
    return found


async def release(clients: AuditorClients, obj: Mapping[str, Any]) -> None:
    """Remove the contract's label and annotations from ``obj``: no Application guards it any more."""
    patch = {
        "metadata": {
            "labels": {contract.LABEL_APP: None},
            "annotations": dict.fromkeys(RELEASED_ANNOTATIONS),
        }
    }
    await clients.cluster.merge_patch(ObjectRef.from_manifest(obj), patch)


async def orphan(clients: AuditorClients, app: Mapping[str, Any]) -> list[ObjectRef]:
    """The Application ``app`` is gone without the finalizer: release every object it owned."""
    released = []
    for obj in await owned_objects(clients, app):
        await release(clients, obj)
        released.append(ObjectRef.from_manifest(obj))
    return released


async def _delete_all(
    clients: AuditorClients, objects: Sequence[Mapping[str, Any]], how: Propagation
) -> None:
    for obj in deletion_order(objects):
        if delete_disabled(obj):
            await release(clients, obj)  # Delete=false: kept, and no longer guarded
            continue
        if (obj.get("metadata") or {}).get("deletionTimestamp"):
            continue  # already going
        uid = (obj.get("metadata") or {}).get("uid")
        await clients.cluster.delete(ObjectRef.from_manifest(obj), propagation=how, uid=uid)


async def finalize(clients: AuditorClients, app: Mapping[str, Any]) -> list[ObjectRef]:
    """Delete the objects of ``app`` (being deleted, with our finalizer), wait until they are gone, then
    remove the finalizer. ``TemporaryError`` when they are not gone within ``GONE_TIMEOUT``."""
    finalizer = finalizer_of(app)
    if finalizer is None:
        return []
    objects = await owned_objects(clients, app)
    await _delete_all(clients, objects, FINALIZERS[finalizer])
    async with asyncio.timeout(GONE_TIMEOUT):
        while left := [o for o in await owned_objects(clients, app) if not delete_disabled(o)]:
            if any(not (o.get("metadata") or {}).get("deletionTimestamp") for o in left):
                await _delete_all(clients, left, FINALIZERS[finalizer])  # one created meanwhile
            await asyncio.sleep(_POLL)
    current = await clients.store.get_application(_key(app))
    if current is None:
        return [ObjectRef.from_manifest(o) for o in objects]
    meta = current.get("metadata") or {}
    remaining = [f for f in meta.get("finalizers") or [] if f != finalizer]
    await clients.store.set_finalizers(
        _key(app), remaining, resource_version=str(meta.get("resourceVersion"))
    )
    return [ObjectRef.from_manifest(o) for o in objects]


async def guarded(work: Callable[[], Awaitable[Any]], what: str, *, retry: float = 5.0) -> None:
    """Run ``work()`` until it succeeds; a failure is logged and tried again after ``retry`` seconds."""
    while True:
        try:
            await work()
            return
        except asyncio.CancelledError:
            raise
        except (TemporaryError, TimeoutError) as exc:
            log.warning("%s: %s; trying again", what, exc)
        except Exception:
            log.exception("%s failed; trying again", what)
        stop_if_cancelled()  # asked to stop while a library swallowed it: do not try again
        await asyncio.sleep(retry)
