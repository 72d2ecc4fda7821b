"""What an UPDATE of a managed object changed, measured against what the GitOps field managers own.

Role: read ``metadata.managedFields`` into entries (driftwarden.fieldsv1), strip what the API server and
controllers own from both objects (status, resourceVersion, the drift stamp...), diff them with
webhook.admission.fielddiff and return a Finding: marker tampering, Git-owned fields changed,
managedFields entries removed or forged, or (strict) any change at all.

This module must not do I/O, log, await or write text for people (webhook.admission.messages does).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from driftwarden import contract
from driftwarden.fieldsv1 import (
    WRITE_OPERATIONS,
    ManagerEntry,
    Path,
    canonical_json,
    manager_entries,
    owned_paths,
    value_at,
)
from webhook.admission.fielddiff import changed_paths, owned_changes
from webhook.admission.messages import Finding, Reason
from webhook.admission.objects import metadata_of
from webhook.admission.profiles import Profile, protected_paths

# Written by the API server or by the object's controllers, never by Git: a change here is no drift.
_SERVER_METADATA = frozenset(
    {"managedFields", "resourceVersion", "generation", "uid", "creationTimestamp", "selfLink"}
)
# While an object is being deleted, controllers remove their finalizers; blocking that would wedge it.
_TERMINATING_METADATA = frozenset({"finalizers", "deletionTimestamp", "deletionGracePeriodSeconds"})


def gitops_entries(entries: Iterable[ManagerEntry], profile: Profile) -> tuple[ManagerEntry, ...]:
    """The entries through which the profile's managers own fields of the main resource."""
    return tuple(
        e
        for e in entries
        if e.manager in profile.managers and e.operation in WRITE_OPERATIONS and e.subresource == ""
    )


def evaluate_update(old: object, new: object, *, profile: Profile, strict: bool) -> Finding:
    """The finding for an UPDATE of a managed object from ``old`` to ``new``.

    In order: the tracking marker or guard mode changed; Git-owned fields changed; the GitOps
    managers' managedFields entries were removed, shrunk or forged; (strict) anything changed.
    """
    terminating = "deletionTimestamp" in metadata_of(old)
    old_view, new_view = comparable(old, terminating=terminating), comparable(new, terminating=terminating)
    old_entries, new_entries = manager_entries(metadata_of(old).get("managedFields")), _new_entries(new)
    hints = frozenset(path for entry in (*old_entries, *(new_entries or ())) for path in entry.fields)
    changed = changed_paths(old_view, new_view, hints=hints)
    markers = {p for p in protected_paths(profile) if value_at(old_view, p) != value_at(new_view, p)}
    touched = _touched(changed, old_entries, profile, old_view=old_view, hints=hints)
    if markers:
        return Finding("marker-removed", violation=True, paths=tuple(markers | touched))
    if touched:
        unknown = not gitops_entries(old_entries, profile)
        reason: Reason = "ownership-unknown" if unknown else "owned-fields-changed"
        return Finding(reason, violation=True, paths=tuple(touched))
    if entry_reason := _entry_change(old_entries, new_entries, profile):
        managers = sorted(profile.managers)
        paths = tuple(
            ("f:metadata", "f:managedFields", "k:" + canonical_json({"manager": m})) for m in managers
        )
        return Finding(entry_reason, violation=True, paths=paths)
    if strict and changed:
        return Finding("strict", violation=True, paths=tuple(changed))
    return Finding("no-owned-fields", violation=False)


def comparable(obj: object, *, terminating: bool) -> object:
    """``obj`` without what the API server and controllers own: status and server-set metadata."""
    if not isinstance(obj, Mapping):
        return obj
    view = {key: value for key, value in obj.items() if key != "status"}
    if isinstance(obj.get("metadata"), Mapping):
        skip = _SERVER_METADATA | (_TERMINATING_METADATA if terminating else frozenset())
        meta = {key: value for key, value in obj["metadata"].items() if key not in skip}
        annotations = meta.get("annotations")
        # The drift stamp is the mutating webhook's own write; it must not count as drift itself.
        if isinstance(annotations, Mapping) and contract.ANNOTATION_DRIFT in annotations:
            rest = {k: v for k, v in annotations.items() if k != contract.ANNOTATION_DRIFT}
            if rest:
                meta["annotations"] = rest
            else:
                del meta["annotations"]
        view["metadata"] = meta
    return view


def _new_entries(new: object) -> tuple[ManagerEntry, ...] | None:
    """The new object's managedFields; None when it has none at all, so nothing can be said of them."""
    raw = metadata_of(new).get("managedFields")
    return manager_entries(raw) if isinstance(raw, list) else None


def _touched(
    changed: frozenset[Path],
    entries: tuple[ManagerEntry, ...],
    profile: Profile,
    *,
    old_view: object,
    hints: frozenset[Path],
) -> set[Path]:
    if not gitops_entries(entries, profile):
        # Managed, yet no entry says what Git owns (stripped or never recorded): assume Git owns the
        # whole object except metadata, rather than letting every edit through.
        return {path for path in changed if path[:1] != ("f:metadata",)}
    owned = owned_paths(entries, managers=profile.managers)
    return set(owned_changes(changed, owned, old=old_view, all_fields=hints))


def _entry_change(
    old: tuple[ManagerEntry, ...], new: tuple[ManagerEntry, ...] | None, profile: Profile
) -> Reason | None:
    """Whether the GitOps managers' entries were removed or shrunk, or grown by someone else."""
    if new is None:
        return None
    before, after = _entry_sets(old, profile), _entry_sets(new, profile)
    if any(key not in after or not fields <= after[key] for key, fields in before.items()):
        return "manager-entry-removed"
    if any(key not in before or not fields <= before[key] for key, fields in after.items()):
        return "manager-entry-spoofed"
    return None


def _entry_sets(
    entries: tuple[ManagerEntry, ...], profile: Profile
) -> dict[tuple[str, str, str], frozenset[Path]]:
    sets: dict[tuple[str, str, str], frozenset[Path]] = {}
    for entry in entries:
        if entry.manager in profile.managers:
            key = (entry.manager, entry.operation, entry.subresource)
            sets[key] = sets.get(key, frozenset()) | entry.fields
    return sets
