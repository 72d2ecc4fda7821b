"""``Replace=true`` and ``Force=true``: how one object is written when server-side apply is not wanted.

As Argo CD's sync options, per Application (``syncPolicy.syncOptions``) or per object
(``argocd.argoproj.io/sync-options`` or ``driftwarden.io/sync-options``): ``Replace=true`` writes the object
with a PUT (``kubectl replace``; a create when it does not exist), so fields Git does not declare are gone
whoever wrote them; ``Force=true`` deletes the object and creates it again when the apply or the replace is
refused as invalid (422) because a field is immutable (a Job's template); any other invalid object is left
as it is, since it could not be created again either. Without ``Force`` an immutable field
fails with a message that says which option would make the change. Thin I/O over ``auditor.kube.cluster``;
errors are ``driftwarden.errors``. It must not decide whether an object is synced (the ChangeSet did).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from auditor.application import SyncPolicy
from auditor.kube.cluster import Cluster
from auditor.objects import object_sync_options
from driftwarden.errors import KubeError, KubeUnavailableError
from driftwarden.objectref import ObjectRef

REPLACE = "Replace"
FORCE = "Force"
GONE_TIMEOUT = 60.0
REPLACE_ATTEMPTS = 3
_POLL = 0.1


@dataclass(frozen=True)
class WriteMode:
    """How an object is written: ``replace`` (PUT) instead of apply, ``force`` (recreate when invalid)."""

    replace: bool = False
    force: bool = False

    @property
    def tolerates_invalid(self) -> bool:
        """A dry run refused for an immutable field is no comparison error: the write itself settles it."""
        return self.replace or self.force


APPLY = WriteMode()
"""Server-side apply, as every object is written unless an option says otherwise."""


def write_mode(manifest: Mapping[str, Any], policy: SyncPolicy) -> WriteMode:
    """The object's own ``Replace``/``Force`` option wins over the Application's."""
    own = object_sync_options(manifest)

    def on(key: str) -> bool:
        value = own.get(key)
        return value.lower() == "true" if value is not None else policy.enabled(key)

    return WriteMode(replace=on(REPLACE), force=on(FORCE))


def immutable(exc: KubeError) -> bool:
    """The API server refused a change to a field that cannot change (``field is immutable``)."""
    return exc.status == 422 and "immutable" in str(exc)


def refused_write(ref: ObjectRef, exc: KubeError, mode: WriteMode) -> KubeError:
    """The error to report for a write refused as invalid: the way out first, the API server's words after."""
    if not immutable(exc):
        return exc
    how = "Force=true" if mode.replace else "Replace=true,Force=true"
    return KubeError(
        f"{ref}: a field that cannot change (immutable) differs from Git; add the sync option {how} "
        f"(the Application's syncOptions or the object's argocd.argoproj.io/sync-options) to delete and "
        f"recreate it — API server: {exc}",
        status=exc.status,
        reason=exc.reason,
    )


async def wait_gone(cluster: Cluster, ref: ObjectRef, *, uid: str) -> None:
    """Return once the object ``uid`` at ``ref`` is gone (another object there by now does not count)."""
    try:
        async with asyncio.timeout(GONE_TIMEOUT):
            while True:
                obj = await cluster.get(ref)
                if obj is None or (obj.get("metadata") or {}).get("uid") != uid:
                    return
                await asyncio.sleep(_POLL)
    except TimeoutError as exc:
        raise KubeUnavailableError(f"{ref} was deleted but is still there after {GONE_TIMEOUT:g}s") from exc


async def recreate(cluster: Cluster, manifest: Mapping[str, Any], live: Mapping[str, Any]) -> dict[str, Any]:
    """Delete ``live`` (its dependents with it, in the background) and create ``manifest`` in its place."""
    ref = ObjectRef.from_manifest(manifest)
    uid = str((live.get("metadata") or {}).get("uid") or "")
    await cluster.delete(ref, propagation="Background", uid=uid or None)
    await wait_gone(cluster, ref, uid=uid)
    return await cluster.apply(manifest)


async def _replace(cluster: Cluster, manifest: Mapping[str, Any], live: Mapping[str, Any]) -> dict[str, Any]:
    """PUT ``manifest`` over the object as it is now: a controller writing its status in between (a Job's)
    changes the resourceVersion, so a conflict reads it again and tries again, a few times."""
    current: Mapping[str, Any] | None = live
    for _ in range(REPLACE_ATTEMPTS - 1):
        if current is None:
            return await cluster.apply(manifest)  # gone meanwhile: create it
        try:
            return await cluster.replace(manifest, resource_version=_version(current))
        except KubeError as exc:
            if exc.status != 409:
                raise
            current = await cluster.get(ObjectRef.from_manifest(manifest))
    if current is None:
        return await cluster.apply(manifest)
    return await cluster.replace(manifest, resource_version=_version(current))


def _version(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


async def write_object(
    cluster: Cluster, manifest: Mapping[str, Any], *, live: Mapping[str, Any] | None, mode: WriteMode
) -> dict[str, Any]:
    """Write ``manifest`` over ``live`` (None: absent) per ``mode``; the object as stored."""
    ref = ObjectRef.from_manifest(manifest)
    try:
        if mode.replace and live is not None:
            return await _replace(cluster, manifest, live)
        return await cluster.apply(manifest)
    except KubeError as exc:
        # Only an immutable field: an object refused for anything else would be deleted and not come back.
        if not immutable(exc) or not mode.force or live is None:
            raise refused_write(ref, exc, mode) from exc
        return await recreate(cluster, manifest, live)
