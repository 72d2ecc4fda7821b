"""Carry out a ChangeSet: staged server-side apply of what drifted, then prune (orchestration).

Two steps, each a span of its own in a reconcile pass: ``apply_all`` runs the stages in order (Namespaces
and CRDs first; a CRD is waited on until Established before anything of its kind is applied), then
``prune_all`` deletes what left Git, after every apply and in reverse stage order (namespaced objects
first, Namespaces and CRDs last). Each object is applied or pruned on its own, so one failing object does
not stop the others; its error is reported in its result. Only ``create``/``update`` actions are
applied — objects already in sync are left alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from auditor.diff.compare import Comparison
from auditor.kube.cluster import Cluster
from auditor.objects import ObjectRef
from auditor.status import ResourceResult, result_for
from auditor.sync.changeset import Action
from auditor.sync.takeover import STRICT_OPTION, takeover_patch
from driftwarden.errors import DriftwardenError

CRD = ("apiextensions.k8s.io", "CustomResourceDefinition")
Paused = Callable[[ObjectRef], str]
Applied = Callable[[ObjectRef, Mapping[str, Any]], None]


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
    cluster: Cluster, comparison: Comparison, action: Action, *, paused: Paused, applied: Applied
) -> ResourceResult | None:
    if action.type not in ("create", "update"):
        return result_for(action)
    if why := paused(action.ref):
        return ResourceResult(action.ref, "SyncFailed", why)
    manifest = comparison.manifest_for(action.ref)
    if manifest is None:
        return result_for(action, error="no desired manifest for this object")
    try:
        await take_over_kubectl_fields(cluster, comparison, action.ref)
        applied(action.ref, await cluster.apply(manifest))
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


async def take_over_kubectl_fields(cluster: Cluster, comparison: Comparison, ref: ObjectRef) -> None:
    """Strict self-heal: make the fields kubectl wrote ours first, so the apply removes what Git lacks."""
    live = comparison.live_for(ref)
    if live is None or not comparison.app.sync_policy.enabled(STRICT_OPTION):
        return
    patch = takeover_patch(live)
    if patch:
        await cluster.json_patch(ref, patch)


def _never(_ref: ObjectRef) -> str:
    return ""


def _ignore(_ref: ObjectRef, _stored: Mapping[str, Any]) -> None:
    return None


async def apply_all(
    cluster: Cluster, comparison: Comparison, *, paused: Paused = _never, applied: Applied = _ignore
) -> SyncOutcome:
    """Apply what drifted per the comparison's ChangeSet, stage by stage; prune nothing.

    ``paused`` names objects not to apply now (a field fight the heal loop gave up on) and why;
    ``applied`` is told every object stored, as the API server returned it.
    """
    app = comparison.app
    if app.sync_policy.create_namespace and app.destination.namespace:
        await ensure_namespace(cluster, app.destination.namespace)
    results: list[ResourceResult] = []
    for stage in comparison.changeset.stages():
        for action in stage:
            result = await _apply(cluster, comparison, action, paused=paused, applied=applied)
            if result is not None:
                results.append(result)
        if any((a.ref.group, a.ref.kind) == CRD for a in stage):
            await cluster.mapper.refresh()  # kinds the next stages apply may have just appeared
    return SyncOutcome(tuple(results))


async def prune_all(cluster: Cluster, comparison: Comparison) -> SyncOutcome:
    """Delete what left Git per the ChangeSet, in its order; run after ``apply_all``.

    Objects not to prune (``Prune=false``, pruning disabled or refused) are results too, without a request.
    """
    results: list[ResourceResult] = []
    for action in comparison.changeset.prunes:
        result = await _prune(cluster, action)
        if result is not None:
            results.append(result)
    return SyncOutcome(tuple(results))
