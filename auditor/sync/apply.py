"""Carry out a ChangeSet: staged server-side apply of what drifted, then prune (orchestration).

Two steps, each a span of its own in a reconcile pass: ``apply_all`` runs the stages in order (Namespaces
and CRDs first; a CRD is waited on until Established before anything of its kind is applied), then
``prune_all`` deletes what left Git, after every apply and in reverse stage order (namespaced objects
first, Namespaces and CRDs last). Each object is applied or pruned on its own, so one failing object does
not stop the others; its error is reported in its result. Only ``create``/``update`` actions are
applied — objects already in sync are left alone. Every object stored is recorded in the ledger (our
own write, not drift), and an object the ledger has paused (a field fight) is not applied. It takes
exactly what it uses, never a whole Comparison, and must not decide what to sync: the ChangeSet did.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from auditor.application import IgnoreDifference, SyncPolicy
from auditor.diff.ignore import applied_manifest, release_patch
from auditor.diff.objectdiff import rules_for
from auditor.kube.cluster import Cluster, Propagation
from auditor.ledger import Ledger
from auditor.status import ResourceResult, result_for
from auditor.sync.changeset import Action, ChangeSet
from auditor.sync.replace import APPLY, WriteMode, write_mode, write_object
from auditor.sync.takeover import takeover_patch
from driftwarden.errors import DriftwardenError, KubeError
from driftwarden.objectref import ObjectRef, ResourceKey

CRD = ("apiextensions.k8s.io", "CustomResourceDefinition")
Manifests = Mapping[ResourceKey, Mapping[str, Any]]
RELEASE_ATTEMPTS = 3


@dataclass(frozen=True)
class SyncOutcome:
    """What one sync did, object by object."""

    results: tuple[ResourceResult, ...]
    error: str = ""
    """Why the sync stopped before its end (a hook failed, a wave was not healthy in time), or ""."""

    @property
    def failed(self) -> tuple[ResourceResult, ...]:
        return tuple(r for r in self.results if r.status == "SyncFailed")

    @property
    def changed(self) -> bool:
        """Whether the sync stored or deleted anything (a history entry is due)."""
        return any(r.changed and r.status in ("Synced", "Pruned") for r in self.results)


def _version(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def _namespace_manifest(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


async def ensure_namespace(cluster: Cluster, name: str, *, manifests: Manifests) -> None:
    """CreateNamespace=true: create the destination Namespace when it is missing (untracked, never pruned).

    When Git has that Namespace, its own apply (stage 0) creates it: applying a bare one as the same field
    manager would drop the labels and annotations Git and the contract put on it.
    """
    ref = ObjectRef("", "v1", "Namespace", "", name)
    if ref.key in manifests or await cluster.get(ref) is not None:
        return
    await cluster.apply(_namespace_manifest(name))


async def apply_object(
    cluster: Cluster,
    manifest: Mapping[str, Any],
    *,
    live: Mapping[str, Any] | None,
    ignore: Sequence[IgnoreDifference] = (),
    strict: bool = False,
    mode: WriteMode = APPLY,
) -> dict[str, Any]:
    """Apply one desired ``manifest`` over ``live`` (None: it does not exist) and return what was stored.

    ``strict``: kubectl's fields become ours first, so the apply removes what Git lacks. ``ignore``: the
    ignoreDifferences rules to hold (empty with ``RespectIgnoreDifferences=false``): driftwarden gives up
    the ignored fields it owns, and what it applies leaves out those the live object has. ``mode``:
    ``Replace=true``/``Force=true`` (``auditor.sync.replace``).
    """
    ref = ObjectRef.from_manifest(manifest)
    if live is not None and strict and (patch := takeover_patch(live)):
        live = await cluster.json_patch(ref, patch)
    rules = rules_for(ref, ignore)
    if live is not None and rules:
        live = await _release(cluster, ref, live, rules)
        manifest = applied_manifest(manifest, live, rules) if live is not None else manifest
    return await write_object(cluster, manifest, live=live, mode=mode)


async def _release(
    cluster: Cluster, ref: ObjectRef, live: Mapping[str, Any], rules: Sequence[IgnoreDifference]
) -> Mapping[str, Any] | None:
    """Give up driftwarden's ownership of ignored fields; the object as it is now (None: it is gone)."""
    current: Mapping[str, Any] | None = live
    for attempt in range(RELEASE_ATTEMPTS):
        patch = release_patch(current, rules) if current is not None else []
        if not patch:
            return current
        try:
            return await cluster.json_patch(ref, patch)
        except KubeError as exc:
            # Another writer (the autoscaler, say) changed it since it was read: read it again.
            if exc.status not in (409, 422) or attempt == RELEASE_ATTEMPTS - 1:
                raise
            current = await cluster.get(ref)
    return current


async def _apply(
    cluster: Cluster,
    action: Action,
    *,
    manifests: Manifests,
    live: Manifests,
    ledger: Ledger,
    ignore: Sequence[IgnoreDifference],
    strict: bool,
    held: Mapping[ResourceKey, str],
    policy: SyncPolicy | None,
) -> ResourceResult | None:
    if action.type not in ("create", "update"):
        return result_for(action)
    if why := ledger.paused(action.ref) or held.get(action.ref.key, ""):
        return ResourceResult(action.ref, "SyncFailed" if ledger.paused(action.ref) else "Held", why)
    manifest = manifests.get(action.ref.key)
    if manifest is None:
        return result_for(action, error="no desired manifest for this object")
    try:
        current = live.get(action.ref.key)
        mode = write_mode(manifest, policy) if policy is not None else APPLY
        stored = await apply_object(cluster, manifest, live=current, ignore=ignore, strict=strict, mode=mode)
        ledger.own_write(action.ref, stored)
        if current is not None and _version(stored) == _version(current):
            return ResourceResult(action.ref, "Synced", f"{action.ref.kind} unchanged", changed=False)
        if (action.ref.group, action.ref.kind) == CRD:
            await cluster.wait_established(action.ref.name)
    except DriftwardenError as exc:
        return result_for(action, error=str(exc))
    return result_for(action)


async def _prune(cluster: Cluster, action: Action, propagation: Propagation) -> ResourceResult | None:
    if action.type == "prune":
        try:
            await cluster.delete(action.ref, propagation=propagation)
        except DriftwardenError as exc:
            return result_for(action, error=str(exc))
    return result_for(action)


async def apply_all(
    cluster: Cluster,
    changeset: ChangeSet,
    *,
    manifests: Manifests,
    ledger: Ledger,
    live: Manifests,
    ignore: Sequence[IgnoreDifference] = (),
    strict: bool = False,
    create_namespace: str = "",
    held: Mapping[ResourceKey, str] | None = None,
    policy: SyncPolicy | None = None,
) -> SyncOutcome:
    """Apply what drifted per ``changeset``, stage by stage; prune nothing.

    ``manifests``: the desired manifest of each object; ``live``: the live objects (see ``apply_object``
    for ``ignore`` and ``strict``). ``create_namespace``: the destination Namespace to apply first
    (``CreateNamespace=true``), "" for none. ``ledger`` says which objects to leave alone (a field fight
    the heal gave up on) and is told every object stored. ``held``: objects on a break-glass hold, with
    why; they are left alone too. ``policy``: the Application's, for its ``Replace``/``Force`` options
    (each object's own annotation wins).
    """
    if create_namespace:
        await ensure_namespace(cluster, create_namespace, manifests=manifests)
    results: list[ResourceResult] = []
    for stage in changeset.stages():
        for action in stage:
            result = await _apply(cluster, action, manifests=manifests, live=live, ledger=ledger,
                                  ignore=ignore, strict=strict, held=held or {}, policy=policy)  # fmt: skip
            if result is not None:
                results.append(result)
        if any((a.ref.group, a.ref.kind) == CRD for a in stage):
            await cluster.mapper.refresh()  # kinds the next stages apply may have just appeared
    return SyncOutcome(tuple(results))


async def prune_all(
    cluster: Cluster, changeset: ChangeSet, *, propagation: Propagation = "Background"
) -> SyncOutcome:
    """Delete what left Git per ``changeset``, in its order; run after ``apply_all``.

    Objects not to prune (``Prune=false``, pruning disabled or refused) are results too, without a request.
    """
    results: list[ResourceResult] = []
    for action in changeset.prunes:
        result = await _prune(cluster, action, propagation)
        if result is not None:
            results.append(result)
    return SyncOutcome(tuple(results))
