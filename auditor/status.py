"""Build the Application ``status``: sync, health, resources, history, operationState, conditions.

Shapes follow docs/design.md (and Argo CD's field names). Every function returns new lists and dicts
and takes the current time from its caller (``at``), so the same inputs give the same status. No I/O,
no logging, no clock reads here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from auditor.appsource import Source
from auditor.diff.objectdiff import ObjectDiff, SyncStatus
from auditor.health import Health
from auditor.sync.changeset import Action, ChangeSet
from driftwarden.contract import rfc3339
from driftwarden.objectref import ObjectRef, ResourceKey

HISTORY_LIMIT = 10
SYNC_FAILED = "SyncFailed"
COMPARISON_ERROR = "ComparisonError"
GIT_UNREACHABLE = "GitUnreachable"
PRUNE_REFUSED = "PruneRefused"
SHARED_RESOURCE = "SharedResource"
INVALID_SPEC = "InvalidSpecError"
CONDITION_TYPES = (
    SYNC_FAILED, COMPARISON_ERROR, GIT_UNREACHABLE, PRUNE_REFUSED, SHARED_RESOURCE, INVALID_SPEC,
)  # fmt: skip

OperationPhase = Literal["Running", "Succeeded", "Failed"]
ResultCode = Literal["Synced", "SyncFailed", "Pruned", "PruneSkipped", "Held"]


def ref_fields(ref: ObjectRef) -> dict[str, str]:
    return {
        "group": ref.group,
        "version": ref.version,
        "kind": ref.kind,
        "namespace": ref.namespace,
        "name": ref.name,
    }


def _sort_key(entry: Mapping[str, Any]) -> tuple[str, str, str, str]:
    return (entry["group"], entry["kind"], entry["namespace"], entry["name"])


def resource_entries(
    diffs: Iterable[ObjectDiff],
    healths: Mapping[ResourceKey, Health],
    messages: Mapping[ResourceKey, str] | None = None,
) -> list[dict[str, Any]]:
    """``status.resources``: one entry per compared object, sorted by group, kind, namespace and name.

    ``messages``: why an object is not as Git says (its dry run failed, it is stuck on a finalizer).
    """
    entries = []
    for diff in diffs:
        entry: dict[str, Any] = {**ref_fields(diff.ref), "status": "Synced" if diff.in_sync else "OutOfSync"}
        if message := (messages or {}).get(diff.ref.key):
            entry["message"] = message
        health = healths.get(diff.ref.key)
        if health is not None:
            entry["health"] = {"status": health.status, "message": health.message}
        entries.append(entry)
    return sorted(entries, key=_sort_key)


def _source_fields(source: Source) -> dict[str, str]:
    fields = {"repoURL": source.repo_url, "targetRevision": source.target_revision, "path": source.path}
    return fields | ({"chart": source.chart} if source.chart else {})


def append_history(
    history: Sequence[Mapping[str, Any]],
    *,
    revision: str,
    source: Source,
    at: datetime,
    limit: int = HISTORY_LIMIT,
) -> list[dict[str, Any]]:
    """``history`` plus a new deployment entry, keeping the last ``limit`` (ids keep counting up)."""
    next_id = max((int(h.get("id", -1)) for h in history), default=-1) + 1
    entry = {"id": next_id, "revision": revision, "deployedAt": rfc3339(at), "source": _source_fields(source)}
    if limit < 1:
        raise ValueError("the history limit must be at least 1")
    return [*(dict(h) for h in history), entry][-limit:]


@dataclass(frozen=True)
class ResourceResult:
    """What happened to one object during a sync."""

    ref: ObjectRef
    status: ResultCode
    message: str = ""
    changed: bool = True
    """False when the object was applied and the API server stored nothing new."""
    hook_type: str = ""
    """For a hook: PreSync, Sync, PostSync or SyncFail (Argo CD's ``hookType``); "" for a resource."""
    hook_phase: str = ""
    """For a hook: Running, Succeeded or Failed (Argo CD's ``hookPhase``)."""


def result_for(action: Action, *, error: str = "") -> ResourceResult | None:
    """The sync result of ``action`` (``error`` when applying or pruning it failed); None if unchanged."""
    if action.type == "unchanged":
        return None
    if error:
        return ResourceResult(action.ref, "SyncFailed", error)
    if action.type == "skip":
        return ResourceResult(action.ref, "PruneSkipped" if action.pruning else "SyncFailed", action.reason)
    if action.type == "prune":
        return ResourceResult(action.ref, "Pruned", "pruned")
    return ResourceResult(action.ref, "Synced", f"{action.ref.kind} {action.type}d")


def result_entry(result: ResourceResult) -> dict[str, Any]:
    """One ``syncResult.resources`` entry (with ``hookType``/``hookPhase`` for a hook)."""
    entry = {**ref_fields(result.ref), "status": result.status, "message": result.message}
    if result.hook_type:
        entry.update(hookType=result.hook_type, hookPhase=result.hook_phase)
    return entry


def operation_state(
    *,
    phase: OperationPhase,
    message: str,
    revision: str,
    results: Iterable[ResourceResult],
    started_at: datetime,
    finished_at: datetime | None = None,
    source: Source | None = None,
    manifests_digest: str = "",
) -> dict[str, Any]:
    """``status.operationState``; ``finishedAt`` only once the operation is no longer Running.

    ``source``: what the sync read, with the targetRevision it was asked for (``app sync --revision``
    may name another than the spec's), as Argo CD's ``syncResult.source``. A hook's entry has
    ``hookType`` and ``hookPhase`` as Argo CD's. ``manifests_digest``: of what the sync rendered, so that
    an automated sync runs hooks once per render, not once per pass.
    """
    resources = [result_entry(r) for r in results]
    result: dict[str, Any] = {"revision": revision, "resources": resources}
    if source is not None:
        result["source"] = _source_fields(source)
    if manifests_digest:
        result["manifestsDigest"] = manifests_digest
    state: dict[str, Any] = {
        "phase": phase,
        "message": message,
        "syncResult": result,
        "startedAt": rfc3339(started_at),
    }
    if phase != "Running" and finished_at is not None:
        state["finishedAt"] = rfc3339(finished_at)
    return state


def set_condition(
    conditions: Sequence[Mapping[str, Any]], *, type: str, message: str, at: datetime
) -> list[dict[str, Any]]:
    """``conditions`` with one ``type`` condition; lastTransitionTime stays if the message is unchanged."""
    previous = next((c for c in conditions if c.get("type") == type), None)
    if previous is not None and previous.get("message") == message:
        return [dict(c) for c in conditions]
    entry = {"type": type, "message": message, "lastTransitionTime": rfc3339(at)}
    others = [dict(c) for c in conditions if c.get("type") != type]
    return sorted([*others, entry], key=lambda c: str(c.get("type")))


def clear_condition(conditions: Sequence[Mapping[str, Any]], type: str) -> list[dict[str, Any]]:
    """``conditions`` without any condition of ``type``."""
    return [dict(c) for c in conditions if c.get("type") != type]


def changeset_conditions(
    conditions: Sequence[Mapping[str, Any]], changeset: ChangeSet, *, at: datetime
) -> list[dict[str, Any]]:
    """Set or clear PruneRefused and SharedResource from what ``changeset`` found."""
    out = [dict(c) for c in conditions]
    if changeset.prune_refused:
        out = set_condition(out, type=PRUNE_REFUSED, message=changeset.prune_refused, at=at)
    else:
        out = clear_condition(out, PRUNE_REFUSED)
    if changeset.shared:
        names = ", ".join(f"{s.ref} (owned by {s.owner})" for s in changeset.shared)
        out = set_condition(
            out, type=SHARED_RESOURCE, message=f"shared with other Applications: {names}", at=at
        )
    else:
        out = clear_condition(out, SHARED_RESOURCE)
    return out


def build_status(
    *,
    sync_status: SyncStatus,
    revision: str,
    health: Health,
    resources: Sequence[Mapping[str, Any]],
    history: Sequence[Mapping[str, Any]] = (),
    conditions: Sequence[Mapping[str, Any]] = (),
    operation: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The whole ``status`` object of an Application."""
    status: dict[str, Any] = {
        "sync": {"status": sync_status, "revision": revision},
        # The message always: a merge patch without it would leave the last one ("1 of 3 ...") behind.
        "health": {"status": health.status, "message": health.message},
        "resources": [dict(r) for r in resources],
        "history": [dict(h) for h in history],
        "conditions": [dict(c) for c in conditions],
    }
    if operation is not None:
        status["operationState"] = dict(operation)
    return status
