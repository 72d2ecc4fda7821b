"""Per-object failures of a comparison: one object the API server refuses does not stop the others.

An object whose server-side-apply dry run fails for a reason that trying again will not fix (an immutable
field, a field the schema does not declare, a webhook's denial, a quota) is compared as "not in sync"
with the API server's reason, and its sync action becomes a ``skip`` that says why: the sync reports it
``SyncFailed`` with that reason (so the operation is ``Failed``) while every other object is compared,
applied and shown as it is. Argo CD reports such an object the same way (``SyncFailed`` and a message).
A temporary failure (the API server unreachable, 5xx, 429) still fails the whole pass: the last
comparison stands until it can be made again. Pure: no I/O, no logging.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from auditor.diff.objectdiff import ObjectDiff
from auditor.sync.changeset import ChangeSet
from driftwarden.objectref import ObjectRef, ResourceKey

DRY_RUN_FAILED = "dry run failed"


def failure_reason(error: Exception) -> str:
    """What a user reads for an object whose dry run failed: the API server's own words, reason last."""
    return f"{DRY_RUN_FAILED}: {error}"


def namespace_hint(namespace: str, *, destination: str, create_namespace: bool) -> str:
    """Why an object's namespace is missing, and the fix that applies: ``CreateNamespace=true`` creates
    the destination namespace only, so it is the hint for that namespace alone."""
    missing = f"namespace {namespace!r} does not exist"
    if namespace == destination and not create_namespace:
        return f"{missing}: set syncOptions CreateNamespace=true, or add the Namespace to Git"
    if create_namespace:
        return (
            f"{missing}: CreateNamespace=true creates only the destination namespace {destination!r}; "
            f"add a Namespace {namespace!r} to Git, or create it first"
        )
    return f"{missing} (it is not the destination {destination!r}): add it to Git, or create it first"


def failed_diff(manifest: Mapping[str, Any], live: Mapping[str, Any] | None) -> ObjectDiff:
    """The diff of an object that could not be dry-run: to create or to update, with no paths known."""
    return ObjectDiff(ObjectRef.from_manifest(manifest), "create" if live is None else "update")


def skip_failed(changeset: ChangeSet, failures: Mapping[ResourceKey, str]) -> ChangeSet:
    """``changeset`` with each failed object's action turned into a ``skip`` carrying its reason."""
    if not failures:
        return changeset
    actions = tuple(
        dataclasses.replace(a, type="skip", reason=failures[a.ref.key])
        if not a.pruning and a.ref.key in failures
        else a
        for a in changeset.actions
    )
    return dataclasses.replace(changeset, actions=actions)
