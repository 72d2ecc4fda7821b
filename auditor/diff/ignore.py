"""ignoreDifferences: which fields of an object the rules ignore, for the diff and for what is applied.

A rule names fields three ways, as Argo CD's do: ``jsonPointers`` (RFC 6901), ``jqPathExpressions`` (jq
paths, evaluated with the ``jq`` package) and ``managedFieldsManagers`` (every field those managers own,
read from managedFields with driftwarden.fieldsv1). The diff leaves them out of both sides. With
``RespectIgnoreDifferences`` (on unless a sync option says false) they also hold when applying, as Argo
CD's ``RespectIgnoreDifferences=true`` and Flux's ignore rules intend: an ignored field the live object
has is left out of what is applied (so the HPA keeps ``spec.replicas``), one it lacks is created from Git,
and driftwarden gives up its own ownership of such a field (``release_patch``) so that leaving it out does
not delete it. Pure: plain dicts in, new dicts and patches out; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from auditor.diff.normalize import remove_locations, resolve_jq, resolve_pointer
from driftwarden import contract
from driftwarden.fieldsv1 import Location, fields_v1_from_paths, leaf_paths, locate, parse_fields_v1


class Rule(Protocol):
    """What an ignoreDifferences rule says about fields (auditor.application.IgnoreDifference)."""

    @property
    def json_pointers(self) -> tuple[str, ...]: ...
    @property
    def jq_path_expressions(self) -> tuple[str, ...]: ...
    @property
    def managed_fields_managers(self) -> tuple[str, ...]: ...


def managers_fields(manifest: Mapping[str, Any], managers: Iterable[str]) -> list[Mapping[str, Any]]:
    """The fieldsV1 sets of the managedFields entries that belong to any of ``managers``."""
    wanted = set(managers)
    meta = manifest.get("metadata")
    entries = meta.get("managedFields") if isinstance(meta, Mapping) else None
    found: list[Mapping[str, Any]] = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, Mapping) or entry.get("manager") not in wanted:
            continue
        if entry.get("fieldsType", "FieldsV1") != "FieldsV1":
            continue
        fields = entry.get("fieldsV1")
        if isinstance(fields, Mapping):
            found.append(fields)
    return found


def owned_locations(obj: Any, field_sets: Iterable[Mapping[str, Any]]) -> list[Location]:
    """The locations in ``obj`` of every leaf owned in ``field_sets`` (driftwarden.fieldsv1) it has."""
    # Sorted, so that the removal sees the same order on every run (set order follows string hashing).
    paths = (path for fields in field_sets for path in sorted(leaf_paths(fields)))
    return [location for path in paths if (location := locate(obj, path)) is not None]


def ignored_field_sets(
    objects: Iterable[Mapping[str, Any] | None], rules: Sequence[Rule]
) -> list[Mapping[str, Any]]:
    """The fieldsV1 sets, in ``objects``' managedFields, of the managers the rules name."""
    managers = {m for rule in rules for m in rule.managed_fields_managers}
    if not managers:
        return []
    return [fields for obj in objects if obj is not None for fields in managers_fields(obj, managers)]


def ignored_locations(
    obj: Mapping[str, Any], rules: Sequence[Rule], field_sets: Sequence[Mapping[str, Any]] = ()
) -> list[Location]:
    """Where in ``obj`` the rules point: JSON pointers, jq paths and the managers' fields it has."""
    pointers = [resolve_pointer(obj, p) for rule in rules for p in rule.json_pointers]
    found = [loc for loc in pointers if loc is not None]
    found += [loc for rule in rules for e in rule.jq_path_expressions for loc in resolve_jq(obj, e)]
    return found + owned_locations(obj, field_sets)


def _within(location: Location, places: Iterable[Location]) -> bool:
    return any(location[: len(place)] == place for place in places)


def applied_manifest(
    manifest: Mapping[str, Any], live: Mapping[str, Any] | None, rules: Sequence[Rule]
) -> dict[str, Any]:
    """``manifest`` without the ignored fields ``live`` already has (all of it when ``live`` is None).

    A field is left out when a rule points at it in the live object (and Git has it too); the managers'
    fields are read from the live object's managedFields. On create nothing is left out: Git's value is
    the first one.
    """
    if live is None or not rules:
        return dict(manifest)
    in_live = ignored_locations(live, rules, ignored_field_sets([live], rules))
    if not in_live:
        return dict(manifest)
    candidates = ignored_locations(manifest, rules, ignored_field_sets([live], rules))
    return remove_locations(manifest, [loc for loc in candidates if _within(loc, in_live)])


def release_patch(
    live: Mapping[str, Any], rules: Sequence[Rule], *, manager: str = contract.FIELD_MANAGER
) -> list[dict[str, Any]]:
    """A JSON patch dropping the ignored fields from ``manager``'s Apply entry in ``live``; [] if none.

    Server-side apply deletes a field its manager owned and no longer sends, unless another manager owns
    it too. Releasing it first keeps the value where it is, and the webhook stops counting it as Git's.
    """
    meta = live.get("metadata") or {}
    entries = [dict(e) for e in meta.get("managedFields") or [] if isinstance(e, Mapping)]
    ours = next((e for e in entries if e.get("manager") == manager and e.get("operation") == "Apply"), None)
    if ours is None or not rules:
        return []
    ignored = ignored_locations(live, rules, ignored_field_sets([live], rules))
    paths = parse_fields_v1(ours.get("fieldsV1"))
    dropped = {p for p in paths if (loc := locate(live, p)) is not None and _within(loc, ignored)}
    if not dropped:
        return []
    index = next(i for i, e in enumerate(entries) if e is ours)
    return [
        {"op": "test", "path": "/metadata/resourceVersion", "value": meta.get("resourceVersion")},
        {
            "op": "replace",
            "path": f"/metadata/managedFields/{index}/fieldsV1",
            "value": fields_v1_from_paths(paths - dropped),
        },
    ]
