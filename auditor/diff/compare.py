"""Compare what Git says with the live cluster: desired objects, SSA dry runs, live objects, diffs, plan.

Orchestration over the Kubernetes adapter and the pure core: render output in, a frozen ``Comparison``
out. It writes nothing to the cluster (dry runs only). An object whose kind or namespace does not exist
yet (a CRD or Namespace the same sync creates) is compared as "to create" with its manifest as desired;
one the API server refuses is a failure of that object alone (auditor.diff.failures).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from auditor.application import Application
from auditor.compact import Packed, fingerprint, pack, unpack
from auditor.diff.failures import DRY_RUN_FAILED, failed_diff, failure_reason, namespace_hint, skip_failed
from auditor.diff.normalize import normalize
from auditor.diff.objectdiff import ObjectDiff, SyncStatus, diff_object, sync_status
from auditor.health import Health, aggregate, deletion_message, resource_health
from auditor.kube.cluster import Cluster, NamespaceNotFoundError
from auditor.kube.discovery import UnknownKindError
from auditor.objects import fill_namespace, ignore_extraneous, stamp_copy
from auditor.sync.changeset import ChangeSet, build_changeset
from auditor.sync.replace import immutable, refused_write, write_mode
from auditor.sync.takeover import STRICT_OPTION, kubectl_managers
from driftwarden.contract import GuardAllow
from driftwarden.errors import KubeError, PermanentError, TemporaryError
from driftwarden.objectref import ObjectRef, ResourceKey

Manifest = Mapping[str, Any]
NAMESPACE = ("v1", "Namespace")


@dataclass(frozen=True)
class Comparison:
    """One Application compared at one revision."""

    app: Application
    revision: str
    desired: tuple[dict[str, Any], ...]
    """The rendered manifests, namespaced and stamped with the contract's label and annotations."""
    diffs: tuple[ObjectDiff, ...]
    live: tuple[dict[str, Any], ...]
    changeset: ChangeSet
    healths: Mapping[ResourceKey, Health]
    extraneous_ignored: frozenset[ResourceKey] = frozenset()
    """Objects outside Git marked ``IgnoreExtraneous``: they do not count against ``Synced``."""
    failures: Mapping[ResourceKey, str] = dataclasses.field(default_factory=dict)
    """Objects the API server refused to dry-run, with its reason (auditor.diff.failures)."""

    @property
    def sync_status(self) -> SyncStatus:
        return sync_status(d for d in self.diffs if d.ref.key not in self.extraneous_ignored)

    @property
    def health(self) -> Health:
        return aggregate(self.healths.values()) if self.healths else Health("Healthy", "")

    @property
    def messages(self) -> dict[ResourceKey, str]:
        """Why objects are not as Git says: a refused dry run, or a deletion stuck on its finalizers."""
        stuck = {ObjectRef.from_manifest(obj).key: deletion_message(obj) for obj in self.live}
        return {**{k: m for k, m in stuck.items() if m}, **self.failures}

    def desired_by_key(self) -> dict[ResourceKey, dict[str, Any]]:
        return {ObjectRef.from_manifest(manifest).key: manifest for manifest in self.desired}

    def live_by_key(self) -> dict[ResourceKey, dict[str, Any]]:
        return {ObjectRef.from_manifest(obj).key: obj for obj in self.live}


def strict_diff(diff: ObjectDiff, live: Mapping[str, Any] | None, *, strict: bool) -> ObjectDiff:
    """With strict self-heal, fields kubectl added (owned by a kubectl manager) are drift too."""
    managers = kubectl_managers(live) if strict and live is not None else ()
    if not managers:
        return diff
    extra = tuple(f"(fields written by {m})" for m in managers)
    return dataclasses.replace(diff, action="update", changed_paths=diff.changed_paths + extra)


def desired_objects(
    app: Application, manifests: Iterable[Manifest], *, cluster_scoped: Any
) -> tuple[dict[str, Any], ...]:
    """Render output as the auditor applies it: destination namespace filled in, contract stamped."""
    out = []
    for manifest in manifests:
        placed = fill_namespace(manifest, app.destination.namespace, cluster_scoped=cluster_scoped)
        allow = GuardAllow(app.guard.allow_users, app.guard.allow_groups)
        out.append(stamp_copy(placed, app=app.key, guard_mode=app.guard.mode, allow=allow))  # a new copy
    return tuple(out)


class DryRunCache:
    """Dry-run results by object, valid while neither what Git says nor the live object changed.

    It keeps a full pass's cost from growing with objects that did not change: those are answered from
    here, and only changed ones are dry-run again. Each result is kept packed (auditor.compact: compact
    JSON, about an eighth of the dicts' memory for a small object) and unpacked on a hit.
    """

    def __init__(self) -> None:
        self._entries: dict[ResourceKey, tuple[bytes, bytes, Packed]] = {}
        self.hits = 0

    @staticmethod
    def _versions(manifest: Manifest, live: Mapping[str, Any] | None) -> tuple[bytes, bytes]:
        # The live side is keyed by its normalised content, not its resourceVersion: controllers write
        # status (and bookkeeping annotations) all the time, which changes nothing a dry run answers.
        return fingerprint(manifest), fingerprint(normalize(live)) if live is not None else b""

    def get(self, manifest: Manifest, live: Mapping[str, Any] | None) -> dict[str, Any] | None:
        entry = self._entries.get(ObjectRef.from_manifest(manifest).key)
        if entry is None or live is None or entry[:2] != self._versions(manifest, live):
            return None
        self.hits += 1
        return unpack(entry[2])

    def put(self, manifest: Manifest, live: Mapping[str, Any] | None, result: dict[str, Any]) -> None:
        if live is not None:
            key = ObjectRef.from_manifest(manifest).key
            self._entries[key] = (*self._versions(manifest, live), pack(result))


def _namespaces(app: Application, desired: Sequence[Manifest]) -> frozenset[str]:
    """The namespaces this sync creates: those in Git, and the destination with CreateNamespace=true."""
    named = {str(m["metadata"]["name"]) for m in desired if (m.get("apiVersion"), m.get("kind")) == NAMESPACE}
    policy, destination = app.sync_policy, app.destination.namespace
    return frozenset(named | ({destination} if policy.create_namespace and destination else set()))


def _refused(
    app: Application, manifest: Manifest, live: Mapping[str, Any] | None, exc: KubeError | PermanentError
) -> dict[str, Any] | str:
    """Why one object's dry run was refused; with Replace/Force an immutable field is no failure (the write
    settles it: compared as Git's manifest against live), without them the message names the options."""
    if not isinstance(exc, KubeError):
        return failure_reason(exc)
    mode = write_mode(manifest, app.sync_policy)
    if immutable(exc) and live is not None and mode.tolerates_invalid:
        return dict(manifest)
    return failure_reason(refused_write(ObjectRef.from_manifest(manifest), exc, mode))


async def _dry_run(
    cluster: Cluster,
    app: Application,
    manifest: Manifest,
    live: Mapping[str, Any] | None,
    *,
    cache: DryRunCache | None,
    creatable: frozenset[str],
) -> dict[str, Any] | str:
    """The dry-run result, or why the API server refused it (auditor.diff.failures)."""
    cached = cache.get(manifest, live) if cache is not None else None
    if cached is not None:
        return cached
    try:
        result = await cluster.dry_run_apply(manifest)
    except UnknownKindError:
        return dict(manifest)  # its CRD may come with this very sync: compare it as a plain "create"
    except NamespaceNotFoundError as exc:
        if exc.namespace in creatable:
            return dict(manifest)  # its Namespace is created by this very sync: a plain "create"
        policy, destination = app.sync_policy, app.destination.namespace
        hint = namespace_hint(
            exc.namespace, destination=destination, create_namespace=policy.create_namespace
        )
        return f"{DRY_RUN_FAILED}: {hint}"
    except TemporaryError:
        raise  # the API server may answer next time: the whole pass waits for it
    except (KubeError, PermanentError) as exc:
        return _refused(app, manifest, live, exc)  # this object alone: the others are still compared
    if cache is not None:
        cache.put(manifest, live, result)
    return result


T = TypeVar("T")


async def _all(steps: Iterable[Awaitable[T]]) -> list[T]:
    """Every step's result in order; when one fails the others are cancelled (not left running on their
    own while the pass is retried) and its error is raised."""
    tasks = [asyncio.ensure_future(step) for step in steps]
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def _live_for(
    cluster: Cluster, manifest: Manifest, listed: Mapping[ResourceKey, dict[str, Any]]
) -> dict[str, Any] | None:
    found = listed.get(ObjectRef.from_manifest(manifest).key)
    if found is not None:
        return found  # from the per-kind list: no request per object
    try:
        return await cluster.get(ObjectRef.from_manifest(manifest))
    except UnknownKindError:
        return None


def _kinds(desired: Sequence[Manifest], recorded: Sequence[Mapping[str, Any]]) -> set[tuple[str, str]]:
    kinds = {(ObjectRef.from_manifest(m).group, ObjectRef.from_manifest(m).kind) for m in desired}
    # Kinds that left Git still need listing, or their objects could never be pruned.
    kinds.update((str(r.get("group", "")), str(r.get("kind", ""))) for r in recorded if r.get("kind"))
    return kinds


async def _list_managed(
    cluster: Cluster, app: Application, kinds: set[tuple[str, str]]
) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for group, kind in sorted(kinds):
        try:
            found.extend(await cluster.list_managed(app.key, kinds=[(group, kind)]))
        except UnknownKindError:
            continue  # a CRD that is gone: nothing of that kind can be live
    return found


async def compare(
    cluster: Cluster,
    app: Application,
    *,
    revision: str,
    manifests: Sequence[Manifest],
    recorded_resources: Sequence[Mapping[str, Any]] = (),
    prune_requested: bool = False,
    cache: DryRunCache | None = None,
) -> Comparison:
    """Dry-run every desired object that changed, read the live ones, and plan the sync (nothing is written).

    Live objects come from one list per kind (label-selected); only objects that are not listed (not ours
    yet) are read one by one, and only objects whose desired or live state changed are dry-run again.
    """
    await cluster.mapper.refresh()
    desired = desired_objects(app, manifests, cluster_scoped=cluster.mapper.is_cluster_scoped)
    managed = await _list_managed(cluster, app, _kinds(desired, recorded_resources))
    listed = {ObjectRef.from_manifest(obj).key: obj for obj in managed}
    lives = await _all(_live_for(cluster, m, listed) for m in desired)
    creatable = _namespaces(app, desired)
    strict = app.sync_policy.enabled(STRICT_OPTION)

    async def compared(manifest: Manifest, live: Mapping[str, Any] | None) -> ObjectDiff | str:
        # Diffed as soon as it answers, and the answer let go: a pass never holds all of its answers.
        dry = await _dry_run(cluster, app, manifest, live, cache=cache, creatable=creatable)
        if isinstance(dry, str):
            return dry
        return strict_diff(diff_object(dry, live, ignore=app.ignore_differences), live, strict=strict)

    found_all = await _all(compared(m, live) for m, live in zip(desired, lives, strict=True))
    wanted = {ObjectRef.from_manifest(m).key for m in desired}
    leftovers = [obj for obj in managed if ObjectRef.from_manifest(obj).key not in wanted]
    failures = {
        ObjectRef.from_manifest(m).key: found
        for m, found in zip(desired, found_all, strict=True)
        if isinstance(found, str)
    }
    diffs = [
        failed_diff(m, live) if isinstance(found, str) else found
        for m, found, live in zip(desired, found_all, lives, strict=True)
    ]
    diffs += [diff_object(None, obj, ignore=app.ignore_differences) for obj in leftovers]
    live_objects = [obj for obj in lives if obj is not None] + leftovers
    changeset = build_changeset(
        [ObjectRef.from_manifest(m) for m in desired],
        live_objects,
        app=app.key,
        diffs=diffs,
        policy=app.sync_policy,
        prune_requested=prune_requested,
    )
    changeset = skip_failed(changeset, failures)
    healths = {
        ObjectRef.from_manifest(m).key: resource_health(live) for m, live in zip(desired, lives, strict=True)
    }
    ignored = frozenset(ObjectRef.from_manifest(obj).key for obj in leftovers if ignore_extraneous(obj))
    return Comparison(
        app, revision, desired, tuple(diffs), tuple(live_objects), changeset, healths, ignored, failures
    )
