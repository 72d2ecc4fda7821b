"""Decide what one sync does: a frozen, staged ChangeSet of create/update/unchanged/prune/skip actions.

Staging follows Flux's staged apply and Argo CD's kind order: stage 0 holds Namespaces and CRDs, stage 1
the other cluster-scoped objects, stage 2 everything namespaced. Every prune comes after every apply, in
a final stage and in reverse order (namespaced objects, then cluster-scoped ones, then Namespaces and
CRDs), as Flux's garbage collection after its apply and Argo CD's ``PruneLast=true`` do: nothing is
deleted before everything Git wants is in place, and an object goes before the Namespace or CRD that
holds it (so ``PruneLast=true`` is accepted and changes nothing). Pruning is guarded: an object is a
prune candidate only when its tracking id names this Application and this very object; ``Prune=false``
objects are skipped; an empty render prunes nothing unless ``allowEmpty`` (Argo CD #3473), and an automated
sync that would prune more than ``pruneRatio`` of the Application's live objects prunes nothing. Pure: no
I/O, no logging.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from auditor.application import SyncPolicy
from auditor.diff.objectdiff import ObjectDiff
from auditor.objects import AppKey, is_owned_by, prune_disabled, tracking_owner
from driftwarden.objectref import ObjectRef, ResourceKey

ActionType = Literal["create", "update", "unchanged", "prune", "skip"]

STAGE_BOOTSTRAP = 0
STAGE_CLUSTER = 1
STAGE_NAMESPACED = 2
STAGE_PRUNE_LAST = 3
BOOTSTRAP_KINDS = frozenset({("", "Namespace"), ("apiextensions.k8s.io", "CustomResourceDefinition")})

KIND_ORDER = (
    "Namespace",
    "CustomResourceDefinition",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
)
"""Apply order inside a stage (Helm's and Argo CD's install order); unknown kinds come last."""

_RANK = {kind: rank for rank, kind in enumerate(KIND_ORDER)}


@dataclass(frozen=True)
class Action:
    """One step of a sync. ``pruning`` marks objects that left Git; ``reason`` says why one is skipped."""

    ref: ObjectRef
    type: ActionType
    stage: int
    reason: str = ""
    pruning: bool = False


@dataclass(frozen=True)
class SharedResource:
    """A desired object whose live tracking id names another Application."""

    ref: ObjectRef
    owner: str


@dataclass(frozen=True)
class ChangeSet:
    """Actions in the order to run them; ``prune_refused`` is set when pruning was refused wholesale."""

    actions: tuple[Action, ...] = ()
    prune_refused: str = ""
    shared: tuple[SharedResource, ...] = ()

    def of_type(self, *types: ActionType) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.type in types)

    def stages(self) -> tuple[tuple[Action, ...], ...]:
        """The actions on desired objects grouped by stage, in order; empty stages are left out."""
        applying = [a for a in self.actions if not a.pruning]
        numbers = sorted({a.stage for a in applying})
        return tuple(tuple(a for a in applying if a.stage == n) for n in numbers)

    @property
    def prunes(self) -> tuple[Action, ...]:
        """The actions on objects that left Git (``prune``, or ``skip`` saying why not), in deletion order."""
        return tuple(a for a in self.actions if a.pruning)

    @property
    def has_changes(self) -> bool:
        return bool(self.of_type("create", "update", "prune"))


def stage_of(ref: ObjectRef) -> int:
    """0 for Namespaces and CRDs, 1 for other cluster-scoped objects (no namespace), 2 for the rest."""
    if (ref.group, ref.kind) in BOOTSTRAP_KINDS:
        return STAGE_BOOTSTRAP
    return STAGE_CLUSTER if not ref.namespace else STAGE_NAMESPACED


def _order(action: Action) -> tuple[int, int, int, int, str, str]:
    rank = _RANK.get(action.ref.kind, len(KIND_ORDER))
    ref = action.ref
    if action.pruning:
        return (action.stage, 1, -stage_of(ref), -rank, ref.namespace, ref.name)
    return (action.stage, 0, 0, rank, ref.namespace, ref.name)


def _desired_action(
    ref: ObjectRef,
    diff: ObjectDiff | None,
    live: Mapping[str, Any] | None,
    *,
    app: AppKey,
    policy: SyncPolicy,
) -> tuple[Action, SharedResource | None]:
    owner = tracking_owner(live) if live is not None else None
    shared = SharedResource(ref, owner.app) if owner is not None and owner.app != str(app) else None
    if diff is not None and diff.action != "prune":
        kind: ActionType = diff.action
    else:
        kind = "create" if live is None else "update"
    if shared is not None and policy.fail_on_shared_resource:
        reason = f"shared with Application {shared.owner} (FailOnSharedResource=true)"
        return Action(ref, "skip", stage_of(ref), reason), shared
    return Action(ref, kind, stage_of(ref)), shared


def _prune_reason(obj: Mapping[str, Any], *, enabled: bool, refused: str) -> str:
    if not enabled:
        return "prune disabled: enable syncPolicy.automated.prune or request a sync with prune"
    if refused:
        return f"prune refused: {refused}"
    if prune_disabled(obj):
        return "prune skipped: object has Prune=false"
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        return "prune skipped: object is already being deleted"
    return ""


def _prune_refusal(
    candidates: list[Mapping[str, Any]],
    live: list[Mapping[str, Any]],
    *,
    wanted: list[ObjectRef],
    app: AppKey,
    policy: SyncPolicy,
    automated: bool,
) -> str:
    """Why this sync must prune nothing at all ("" when it may): an empty render, or a mass prune.

    A mass prune deletes more than ``pruneRatio`` of the Application's objects: those it owns live and
    those Git wants, counted once. So renaming objects (one pruned for each one created) is never one,
    while a path half emptied is.
    """
    if candidates and not wanted and not policy.allow_empty:
        return (
            f"the render is empty and would prune all {len(candidates)} resources; "
            "set syncPolicy.automated.allowEmpty to allow it"
        )
    ratio = policy.automated.prune_ratio if policy.automated is not None else 1.0
    if not automated or not wanted or ratio >= 1:
        return ""  # a person's sync with prune is deliberate; an empty render is allowEmpty's call
    doomed = sum(1 for obj in candidates if not _prune_reason(obj, enabled=True, refused=""))
    owned = {ObjectRef.from_manifest(obj).key for obj in live if is_owned_by(obj, app=app)}
    total = len(owned | {ref.key for ref in wanted})
    if doomed > ratio * total:
        return (
            f"this revision would prune {doomed} of the Application's {total} resources, more than "
            f"syncPolicy.automated.pruneRatio ({ratio:g}) allows; raise it, or sync with prune by hand"
        )
    return ""


def prune_candidates(
    live: Iterable[Mapping[str, Any]], desired: Iterable[ObjectRef], *, app: AppKey
) -> list[Mapping[str, Any]]:
    """Live objects this Application owns (by tracking id) that are no longer desired."""
    wanted = {ref.key for ref in desired}
    return [
        obj for obj in live if ObjectRef.from_manifest(obj).key not in wanted and is_owned_by(obj, app=app)
    ]


def build_changeset(
    desired: Iterable[ObjectRef],
    live: Iterable[Mapping[str, Any]],
    *,
    app: AppKey,
    diffs: Iterable[ObjectDiff] = (),
    policy: SyncPolicy,
    prune_requested: bool = False,
) -> ChangeSet:
    """The staged actions that make the cluster match ``desired``.

    ``desired`` are the refs of the rendered, stamped manifests; ``live`` every live object the caller
    found for this Application (labelled for it, or at a desired ref); ``diffs`` their ObjectDiffs.
    Pruning happens with ``syncPolicy.automated.prune`` or when a manual sync asks for it.
    """
    wanted = list(dict.fromkeys(desired))
    live_objects = list(live)
    live_by_key: dict[ResourceKey, Mapping[str, Any]] = {
        ObjectRef.from_manifest(obj).key: obj for obj in live_objects
    }
    diff_by_key = {d.ref.key: d for d in diffs}
    actions: list[Action] = []
    shared: list[SharedResource] = []
    for ref in wanted:
        action, share = _desired_action(
            ref, diff_by_key.get(ref.key), live_by_key.get(ref.key), app=app, policy=policy
        )
        actions.append(action)
        shared.extend([share] if share is not None else [])
    candidates = prune_candidates(live_objects, wanted, app=app)
    enabled = policy.auto_prune or prune_requested
    refused = _prune_refusal(candidates, live_objects, wanted=wanted, app=app, policy=policy,
                             automated=not prune_requested) if enabled else ""  # fmt: skip
    for obj in candidates:
        ref = ObjectRef.from_manifest(obj)
        reason = _prune_reason(obj, enabled=enabled, refused=refused)
        actions.append(Action(ref, "skip" if reason else "prune", STAGE_PRUNE_LAST, reason, pruning=True))
    return ChangeSet(tuple(sorted(actions, key=_order)), refused, tuple(shared))
