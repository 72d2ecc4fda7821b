"""Compare what the server would store (the SSA dry-run result) with the live object.

Both sides are normalised, ignoreDifferences rules are applied to both, Secrets are masked before any
text is rendered, and the outcome is a frozen ObjectDiff. Changed paths are JSON pointers built from
keys and indices only, never values. ignoreDifferences.managedFieldsManagers is read from the
managedFields with driftwarden.fieldsv1. Pure: no I/O, no logging, no Kubernetes client.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from auditor.application import IgnoreDifference
from auditor.diff.ignore import ignored_field_sets, ignored_locations, managers_fields, owned_locations
from auditor.diff.normalize import mask_secrets, normalize, remove_locations
from driftwarden.jsonpointer import format_pointer
from driftwarden.objectref import ObjectRef

__all__ = ["ObjectDiff", "changed_paths", "diff_object", "managers_fields", "owned_locations", "sync_status"]

DiffAction = Literal["create", "update", "unchanged", "prune"]
SyncStatus = Literal["Synced", "OutOfSync", "Unknown"]


@dataclass(frozen=True)
class ObjectDiff:
    """How one object differs; ``unified_diff`` is masked YAML, live (``-``) to desired (``+``)."""

    ref: ObjectRef
    action: DiffAction
    changed_paths: tuple[str, ...] = ()
    unified_diff: str = ""

    @property
    def in_sync(self) -> bool:
        return self.action == "unchanged"


def rules_for(ref: ObjectRef, rules: Iterable[IgnoreDifference]) -> list[IgnoreDifference]:
    """The ignoreDifferences rules that apply to ``ref``."""
    return [
        r for r in rules if r.matches(group=ref.group, kind=ref.kind, namespace=ref.namespace, name=ref.name)
    ]


def comparable(
    obj: Mapping[str, Any],
    *,
    rules: Sequence[IgnoreDifference] = (),
    field_sets: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """``obj`` normalised, without the fields ``rules`` ignore.

    ``field_sets`` are the fieldsV1 sets of the managers the rules name (managedFieldsManagers).
    """
    normal = normalize(obj)
    locations = ignored_locations(normal, rules, field_sets)
    return remove_locations(normal, locations) if locations else normal  # normal is a copy already


def _differs(a: Any, b: Any) -> bool:
    if isinstance(a, bool) != isinstance(b, bool):
        return True
    return bool(a != b)


def _walk(a: Any, b: Any, path: tuple[str | int, ...], out: list[str]) -> None:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for key in sorted(set(a) | set(b), key=str):
            if key in a and key in b:
                _walk(a[key], b[key], (*path, key), out)
            else:
                out.append(format_pointer((*path, key)))
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            _walk(x, y, (*path, index), out)
    elif _differs(a, b):
        out.append(format_pointer(path))


def changed_paths(live: Mapping[str, Any], desired: Mapping[str, Any]) -> tuple[str, ...]:
    """JSON pointers of every field that differs; a list of another length counts as one change."""
    out: list[str] = []
    _walk(live, desired, (), out)
    return tuple(out)


def _yaml(obj: Mapping[str, Any] | None) -> list[str]:
    if obj is None:
        return []
    text = yaml.safe_dump(dict(obj), sort_keys=True, default_flow_style=False, allow_unicode=True)
    return text.splitlines(keepends=True)


def render_unified(ref: ObjectRef, live: Mapping[str, Any] | None, desired: Mapping[str, Any] | None) -> str:
    """A unified diff of the masked YAML of both sides (None for a side that does not exist)."""
    masked_desired, masked_live = mask_secrets(desired, live)
    lines = difflib.unified_diff(
        _yaml(masked_live), _yaml(masked_desired), fromfile=f"live {ref}", tofile=f"desired {ref}"
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _action(
    desired: Mapping[str, Any] | None, live: Mapping[str, Any] | None, paths: tuple[str, ...]
) -> DiffAction:
    if live is None:
        return "create"
    if desired is None:
        return "prune"
    return "update" if paths else "unchanged"


def diff_object(
    desired: Mapping[str, Any] | None,
    live: Mapping[str, Any] | None,
    *,
    ignore: Sequence[IgnoreDifference] = (),
) -> ObjectDiff:
    """Diff the SSA dry-run result ``desired`` against ``live``; None means the object does not exist there.

    ``create`` when only desired exists, ``prune`` when only live does, else ``update`` or ``unchanged``.
    """
    source = desired if desired is not None else live
    if source is None:
        raise ValueError("diff_object needs a desired or a live object")
    ref = ObjectRef.from_manifest(source)
    rules = rules_for(ref, ignore)
    field_sets = ignored_field_sets((live, desired), rules)
    want = None if desired is None else comparable(desired, rules=rules, field_sets=field_sets)
    have = None if live is None else comparable(live, rules=rules, field_sets=field_sets)
    paths = changed_paths(have, want) if have is not None and want is not None else ()
    action = _action(want, have, paths)
    text = "" if action == "unchanged" else render_unified(ref, have, want)
    return ObjectDiff(ref, action, paths, text)


def sync_status(diffs: Iterable[ObjectDiff]) -> SyncStatus:
    """``Synced`` only when no object differs (objects to create or prune count as differences)."""
    return "Synced" if all(d.in_sync for d in diffs) else "OutOfSync"
