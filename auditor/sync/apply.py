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

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from auditor.kube.cluster import Cluster
from auditor.ledger import Ledger
from auditor.status import ResourceResult, result_for
from auditor.sync.changeset import Action, ChangeSet
from auditor.sync.takeover import takeover_patch
from driftwarden.errors import DriftwardenError
from driftwarden.objectref import ObjectRef, ResourceKey

CRD = ("apiextensions.k8s.io", "CustomResourceDefinition")
Manifests = Mapping[ResourceKey, Mapping[str, Any]]


@dataclass(frozen=True)
class SyncOutcome:
    """What one sync did, object by object."""

    results: tuple[ResourceResult, ...]

    @property
    def failed(self) -> tuple[ResourceResult, ...]:
        return tuple(r for r in self.results if r.status == "SyncFailed")

    @property
    def changed(self) -> bool:
        return any(r.status in ("Synced", "Pruned") for r in self.results)


def _namespace_manifest(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


async def ensure_namespace(cluster: Cluster, name: str) -> None:
    """CreateNamespace=true: apply the destination Namespace (not tracked, so it is never pruned)."""
    await cluster.apply(_namespace_manifest(name))


async def _apply(
    cluster: Cluster, action: Action, *, manifests: Manifests, take_over: Manifests, ledger: Ledger
) -> ResourceResult | None:
    if action.type not in ("create", "update"):
        return result_for(action)
    if why := ledger.paused(action.ref):
        return ResourceResult(action.ref, "SyncFailed", why)
    manifest = manifests.get(action.ref.key)
    if manifest is None:
        return result_for(action, error="no desired manifest for this object")
    try:
        live = take_over.get(action.ref.key)
        if live is not None:
            await take_over_kubectl_fields(cluster, action.ref, live)
        ledger.own_write(action.ref, await cluster.apply(manifest))
        if (action.ref.group, action.ref.kind) == CRD:
            await cluster.wait_established(action.ref.name)
    except DriftwardenError as exc:
        return result_for(action, error=str(exc))
    return result_for(action)


async def _prune(cluster: Cluster, action: Action) -> ResourceResult | None:
    if action.type == "prune":
        try:
            await cluster.delete(action.ref, propagation="Background")
        except DriftwardenError as exc:
            return result_for(action, error=str(exc))
    return result_for(action)


async def take_over_kubectl_fields(cluster: Cluster, ref: ObjectRef, live: Mapping[str, Any]) -> None:
    """Strict self-heal: make the fields kubectl wrote ours first, so the apply removes what Git lacks."""
    patch = takeover_patch(live)
    if patch:
        await cluster.json_patch(ref, patch)


async def apply_all(
    cluster: Cluster,
    changeset: ChangeSet,
    *,
    manifests: Manifests,
    ledger: Ledger,
    take_over: Manifests,
    create_namespace: str = "",
) -> SyncOutcome:
    """Apply what drifted per ``changeset``, stage by stage; prune nothing.

    ``manifests``: the desired manifest of each object. ``take_over``: the live objects whose kubectl
    fields become ours before their apply (strict self-heal; empty otherwise). ``create_namespace``: the
    destination Namespace to apply first (``CreateNamespace=true``), "" for none. ``ledger`` says which
    objects to leave alone (a field fight the heal gave up on) and is told every object stored.
    """
    if create_namespace:
        await ensure_namespace(cluster, create_namespace)
    results: list[ResourceResult] = []
    for stage in changeset.stages():
        for action in stage:
            result = await _apply(cluster, action, manifests=manifests, take_over=take_over, ledger=ledger)
            if result is not None:
                results.append(result)
        if any((a.ref.group, a.ref.kind) == CRD for a in stage):
            await cluster.mapper.refresh()  # kinds the next stages apply may have just appeared
    return SyncOutcome(tuple(results))


async def prune_all(cluster: Cluster, changeset: ChangeSet) -> SyncOutcome:
    """Delete what left Git per ``changeset``, in its order; run after ``apply_all``.

    Objects not to prune (``Prune=false``, pruning disabled or refused) are results too, without a request.
    """
    results: list[ResourceResult] = []
    for action in changeset.prunes:
        result = await _prune(cluster, action)
        if result is not None:
            results.append(result)
    return SyncOutcome(tuple(results))
