"""Walk server-side-apply ``fieldsV1`` sets (metadata.managedFields) into field paths the auditor can use.

fieldsV1 is a trie: ``f:<name>`` is a map field, ``k:<json>`` a list element picked by its key fields,
``v:<json>`` a set element picked by value, ``i:<n>`` a list index, and ``.`` the node itself. The
auditor uses it for ignoreDifferences.managedFieldsManagers. This module is deliberately separate from
the webhook's walker (webhook and auditor never import each other). Pure: no I/O, no logging.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

ElementKind = Literal["f", "k", "v", "i"]
Location = tuple[str | int, ...]
"""A concrete place in an object: map keys and list indices from the root."""

_MISSING = object()


@dataclass(frozen=True)
class PathElement:
    """One step of a fieldsV1 path; ``raw`` is the text after the ``f:``/``k:``/``v:``/``i:`` prefix."""

    kind: ElementKind
    raw: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.raw}"


FieldPath = tuple[PathElement, ...]


def parse_element(key: str) -> PathElement | None:
    """The element a fieldsV1 key stands for; None for ``.`` and for keys of no known kind."""
    kind, sep, raw = key.partition(":")
    if not sep or kind not in ("f", "k", "v", "i"):
        return None
    return PathElement(kind, raw)  # type: ignore[arg-type]  # narrowed by the membership test


def leaf_paths(fields: Mapping[str, Any], prefix: FieldPath = ()) -> tuple[FieldPath, ...]:
    """Every owned leaf path in ``fields``; a node whose only entry is ``.`` counts as a leaf.

    A node with ``.`` and children yields only its children, so owning a map's existence (for example
    ``f:labels: {.: {}, f:a: {}}``) is not taken as owning keys that other managers set in it.
    """
    paths: list[FieldPath] = []
    for key, child in fields.items():
        element = parse_element(key)
        if element is None:
            continue
        path = (*prefix, element)
        children = {k: v for k, v in child.items() if k != "."} if isinstance(child, Mapping) else {}
        if children:
            paths.extend(leaf_paths(children, path))
        else:
            paths.append(path)
    return tuple(paths)


def _decode(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return _MISSING


def _has_keys(item: Any, wanted: Any) -> bool:
    if not isinstance(item, Mapping) or not isinstance(wanted, Mapping):
        return False
    return all(item.get(k, _MISSING) == v for k, v in wanted.items())


def _match_list(items: list[Any], element: PathElement) -> int | None:
    if element.kind == "i":
        index = int(element.raw) if element.raw.isdigit() else -1
        return index if 0 <= index < len(items) else None
    wanted = _decode(element.raw)
    if wanted is _MISSING:
        return None
    for index, item in enumerate(items):
        if element.kind == "v" and item == wanted:
            return index
        if element.kind == "k" and _has_keys(item, wanted):
            return index
    return None


def resolve(obj: Any, path: FieldPath) -> Location | None:
    """Where ``path`` points in ``obj``, or None when the object has no such field or element."""
    node, location = obj, []
    for element in path:
        step: str | int | None
        if element.kind == "f":
            step = element.raw if isinstance(node, Mapping) and element.raw in node else None
        elif isinstance(node, list):
            step = _match_list(node, element)
        else:
            step = None
        if step is None:
            return None
        location.append(step)
        node = node[step]
    return tuple(location)


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
    """The concrete locations in ``obj`` of every leaf owned in ``field_sets`` that ``obj`` has."""
    locations: list[Location] = []
    for fields in field_sets:
        for path in leaf_paths(fields):
            location = resolve(obj, path)
            if location is not None:
                locations.append(location)
    return locations
