"""What an UPDATE of a managed object changed, measured against what the GitOps field managers own.

Role: read what Git owns from the GitOps managers' own managedFields entries in the old object, and from
nothing else: which fields, how keyed lists are keyed and which fields are atomic. Other managers'
entries are written by whoever may edit the object (a planted entry is allowed), so they must not teach
the diff anything. Then strip what the API server and controllers own from both objects (status,
resourceVersion, the drift stamp...), diff them with webhook.admission.fielddiff and return a Finding:
marker tampering, Git-owned fields changed, owners or finalizers added, the GitOps managers' entries
removed, reset or forged, or (strict) any change at all.

A Secret that Git writes with ``stringData`` is stored with ``data`` (the API server converts it), and
the GitOps manager owns ``stringData.K``: owning it counts as owning ``data.K``, or an edit of ``data.K``
would pass. (The auditor could instead render stringData into data before applying, as Argo CD
normalises; the rule belongs here, because the webhook guards objects that Argo CD and Flux applied too.)

This module must not do I/O, log, await or write text for people (webhook.admission.messages does).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from driftwarden import contract
from driftwarden.fieldsv1 import (
    WRITE_OPERATIONS,
    Path,
    canonical_json,
    key_element,
    value_at,
    value_element,
)
from driftwarden.fieldtrie import Lookup, canonical, covers, merge, node_of, owns
from webhook.admission.fielddiff import diff_fields
from webhook.admission.messages import MAX_FIELDS, Finding, Reason
from webhook.admission.objects import metadata_of
from webhook.admission.profiles import Profile, protected_paths

# Written by the API server or by the object's controllers, never by Git: a change here is no drift.
_SERVER_METADATA = frozenset(
    {"managedFields", "resourceVersion", "generation", "uid", "creationTimestamp", "selfLink"}
)
# While an object is being deleted, controllers remove their finalizers; blocking that would wedge it.
_TERMINATING_METADATA = frozenset({"finalizers", "deletionTimestamp", "deletionGracePeriodSeconds"})
OWNERS: Path = ("f:metadata", "f:ownerReferences")
FINALIZERS: Path = ("f:metadata", "f:finalizers")


EntryKey = tuple[str, str, str]
"""A managedFields entry's manager, operation and subresource."""


def gitops_tries(obj: object, profile: Profile) -> dict[EntryKey, list[Mapping[str, Any]]]:
    """The fieldsV1 of the GitOps managers' managedFields entries in ``obj``, by entry key.

    Other managers' entries are passed over unread: whoever may edit the object may write them.
    """
    tries: dict[EntryKey, list[Mapping[str, Any]]] = {}
    entries = metadata_of(obj).get("managedFields")
    for entry in entries if isinstance(entries, list) else ():
        manager = entry.get("manager") if type(entry) is dict or isinstance(entry, Mapping) else None
        if type(manager) is str and manager in profile.managers:
            key = (manager, _text(entry.get("operation")), _text(entry.get("subresource")))
            tries.setdefault(key, []).append(node_of(entry.get("fieldsV1")))
    return tries


def _text(value: object) -> str:
    return value if type(value) is str else ""


def git_owned(
    obj: object, profile: Profile, tries: dict[EntryKey, list[Mapping[str, Any]]] | None = None
) -> Mapping[str, Any] | None:
    """The trie of what the GitOps managers own in ``obj`` (from their entries alone); None without one."""
    tries = gitops_tries(obj, profile) if tries is None else tries
    owning = [
        trie for (_, op, sub), group in tries.items() if op in WRITE_OPERATIONS and not sub for trie in group
    ]
    if not owning:
        return None
    owned = merge(owning)
    if _is_secret(obj) and "f:stringData" in owned:
        data = [owned[key] for key in ("f:data", "f:stringData") if key in owned]
        owned = {**owned, "f:data": merge(data)}
    return owned


def _is_secret(obj: object) -> bool:
    return isinstance(obj, Mapping) and obj.get("kind") == "Secret" and obj.get("apiVersion") == "v1"


def evaluate_update(
    old: object, new: object, *, profile: Profile, strict: bool, controller: bool = False
) -> Finding:
    """The finding for an UPDATE of a managed object from ``old`` to ``new``.

    In order: the tracking marker or guard mode changed; Git-owned fields changed; owners or (unless
    ``controller``: Kubernetes components and service accounts keep their own) finalizers added; the
    GitOps managers' managedFields entries removed, shrunk, reset or forged; (strict) anything changed.
    """
    terminating = "deletionTimestamp" in metadata_of(old)
    old_view, new_view = comparable(old, terminating=terminating), comparable(new, terminating=terminating)
    old_tries = gitops_tries(old, profile)
    owned = git_owned(old, profile, old_tries)
    # Without an entry that says what Git owns (stripped, or never recorded), Git is taken to own the
    # whole object except metadata, rather than letting every edit through; and of metadata, the labels
    # and annotations the object has (a managedFields reset must not set a label Git wrote free).
    diff = diff_fields(old_view, new_view, owned, everything=strict, limit=MAX_FIELDS)
    touched, touched_count = diff.touched, diff.touched_count
    if owned is None and not controller:  # the controllers' bookkeeping (a revision annotation) stays theirs
        kept = diff_fields(old_view, new_view, _present_metadata(old_view), limit=MAX_FIELDS)
        touched, touched_count = (*touched, *kept.touched), touched_count + kept.touched_count
    markers = tuple(p for p in protected_paths(profile) if value_at(old_view, p) != value_at(new_view, p))
    owners = _added(old_view, new_view, OWNERS, owned)
    finalizers = () if controller else _added(old_view, new_view, FINALIZERS, owned)
    reason: Reason | None = None
    if markers:
        reason = "marker-removed"
    elif touched:
        reason = "ownership-unknown" if owned is None else "owned-fields-changed"
    elif owners or finalizers:
        reason = "owner-added" if owners else "finalizer-added"
    if reason is not None:
        paths = tuple(dict.fromkeys((*markers, *touched, *owners, *finalizers)))
        return Finding(reason, violation=True, paths=paths, count=len(paths) + touched_count - len(touched))
    if entry_reason := _entry_change(old_tries, gitops_tries(new, profile)):
        entries = [
            ("f:metadata", "f:managedFields", "k:" + canonical_json({"manager": m})) for m in profile.managers
        ]
        return Finding(entry_reason, violation=True, paths=tuple(sorted(entries)))
    if strict and diff.changed:
        return Finding("strict", violation=True, paths=diff.changed, count=diff.changed_count)
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
        # The drift stamp is the mutating webhook's own write; webhook.admission.stamps judges it.
        if isinstance(annotations, Mapping) and contract.ANNOTATION_DRIFT in annotations:
            rest = {k: v for k, v in annotations.items() if k != contract.ANNOTATION_DRIFT}
            if rest:
                meta["annotations"] = rest
            else:
                del meta["annotations"]
        view["metadata"] = meta
    return view


def _present_metadata(view: object) -> Mapping[str, Any]:
    """A trie owning each label and annotation ``view`` has: changing or removing one touches, adding not."""
    meta = metadata_of(view)
    fields: dict[str, Any] = {}
    for field in ("labels", "annotations"):
        values = meta.get(field)
        if isinstance(values, Mapping) and values:
            fields["f:" + field] = {"f:" + key: {} for key in values if type(key) is str}
    return {"f:metadata": fields}


def owners_from_git(obj: object, profile: Profile) -> bool:
    """Whether Git set every ownerReference of ``obj`` (the GitOps managers own each one's element)."""
    return not _added((), obj, OWNERS, git_owned(obj, profile))


def _added(old: object, new: object, where: Path, owned: Mapping[str, Any] | None) -> tuple[Path, ...]:
    """Owner references (by uid) or finalizers that ``new`` has and ``old`` had not, unless Git owns them."""
    before = {_element(item, where) for item in _items(old, where)}
    lookup = Lookup()
    added = []
    for item in _items(new, where):
        element = _element(item, where)
        if element in before:
            continue
        path = (*where, element) if element is not None else where
        if element is None or owned is None or not owns(owned, path, lookup):
            added.append(path)
    return tuple(added)


def _items(obj: object, where: Path) -> list[Any]:
    found, value = value_at(obj, where)
    return value if found and isinstance(value, list) else []


def _element(item: object, where: Path) -> str | None:
    return key_element(item, ("uid",)) if where == OWNERS else value_element(item)


def _entry_change(
    before: dict[EntryKey, list[Mapping[str, Any]]], after: dict[EntryKey, list[Mapping[str, Any]]]
) -> Reason | None:
    """Whether the GitOps managers' entries were removed, shrunk or reset, or grown by someone else.

    A new object without managedFields had them reset (``managedFields: [{}]``): the API server keeps
    them otherwise, so that is their removal too.
    """
    try:
        if before == after:  # the usual case, at C speed: the API server spells tries one way
            return None
    except RecursionError:
        pass
    known, now = {k: canonical(v) for k, v in before.items()}, {k: canonical(v) for k, v in after.items()}
    if any(key not in now or not covers(now[key], fields) for key, fields in known.items()):
        return "manager-entry-removed"
    if any(key not in known or not covers(known[key], fields) for key, fields in now.items()):
        return "manager-entry-spoofed"
    return None
