"""Server-side apply's field sets (``metadata.managedFields[].fieldsV1``): the one model both processes use.

Role: parse a fieldsV1 trie into a set of paths, write one back, find what a path names in an object, and
read managedFields entries. The webhook intersects what an edit changed with what the GitOps managers own;
the auditor drops what the managers of an ignoreDifferences rule own before it compares.

fieldsV1 is a trie: ``f:<name>`` is a map field, ``k:<json>`` a list element picked by its key fields,
``v:<json>`` a set element picked by value, ``i:<n>`` a list element by index, and ``.`` the node itself.
A ``Path`` is a tuple of such elements from the root, each keeping its prefix so that no map key can be
mistaken for a list element: ``("f:spec", "f:containers", 'k:{"name":"web"}', "f:image")``. ``k:`` and
``v:`` elements hold canonical JSON (sorted keys, compact), so paths parsed from the API server and paths
computed from objects compare equal.

This module must not do I/O, log, await, or know policy (which managers matter, what a change means).
Nothing here raises on malformed input: garbage is skipped, and a key we cannot read but can tell is an
element is kept, because ownership of something we cannot name is still ownership.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Path = tuple[str, ...]
"""A field path: fieldsV1 elements (``f:name``, ``k:{json}``, ``v:json``, ``i:n``) from the root."""

Location = tuple[str | int, ...]
"""A concrete place in one object: map keys and list indices from the root."""

Trie = dict[str, "Trie"]
"""A fieldsV1-shaped trie; the key ``.`` marks that the path to this node is itself in the set."""

MEMBER = "."
WRITE_OPERATIONS = frozenset({"Apply", "Update"})
"""The managedFields operations through which a manager owns fields (all there are)."""


def canonical_json(value: object) -> str:
    """Compact JSON with sorted keys: the one spelling used for ``k:`` and ``v:`` elements."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def is_index(raw: str) -> bool:
    """Whether ``raw`` (the text after ``i:``) is a list index the API server could have written."""
    # isdigit() alone accepts non-ASCII digits, and int() refuses strings of over 4300 digits.
    return raw.isascii() and raw.isdigit() and len(raw) <= 9


def normalize_element(key: object) -> str | None:
    """The canonical form of one fieldsV1 key; None for ``.`` and for keys of no known kind."""
    if not isinstance(key, str):
        return None
    prefix, sep, raw = key.partition(":")
    if not sep:
        return None
    if prefix == "f":
        return key
    if prefix == "i":
        return f"i:{int(raw)}" if is_index(raw) else None
    return _canonical_value_element(prefix, raw, key) if prefix in ("k", "v") else None


def _canonical_value_element(prefix: str, raw: str, key: str) -> str:
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return key  # keep it: ownership of something we cannot name is still ownership
    if prefix == "k" and not isinstance(value, dict):
        return key
    return f"{prefix}:{canonical_json(value)}"


def parse_fields_v1(fields: object) -> frozenset[Path]:
    """The set of paths a fieldsV1 trie describes; empty for anything that is not a mapping."""
    out: set[Path] = set()
    # An explicit stack, not recursion: a hostile trie must not hit the interpreter's recursion limit.
    stack: list[tuple[object, Path]] = [(fields, ())]
    while stack:
        node, path = stack.pop()
        if not isinstance(node, Mapping):
            continue
        for key, child in node.items():
            if key == MEMBER:
                if path:
                    out.add(path)
                continue
            element = normalize_element(key)
            if element is None:
                continue
            child_path = (*path, element)
            if isinstance(child, Mapping) and child:
                stack.append((child, child_path))
            else:
                # ``{}`` is a leaf member; a non-mapping value is garbage, kept as a leaf (conservative).
                out.add(child_path)
    return frozenset(out)


def leaf_paths(fields: object) -> frozenset[Path]:
    """The paths of a fieldsV1 trie with no other path beneath them.

    A node with ``.`` and children yields only its children, so owning a map's existence (for example
    ``f:labels: {.: {}, f:a: {}}``) is not taken as owning keys that other managers set in it.
    """
    paths = parse_fields_v1(fields)
    parents = {path[:end] for path in paths for end in range(1, len(path))}
    return paths - parents


def build_trie(paths: Iterable[Path]) -> Trie:
    """A trie of ``paths`` in which every member node carries the ``.`` marker."""
    root: Trie = {}
    for path in paths:
        node = root
        for element in path:
            node = node.setdefault(element, {})
        if path:
            node.setdefault(MEMBER, {})
    return root


def fields_v1_from_paths(paths: Iterable[Path]) -> dict[str, Any]:
    """The fieldsV1 trie the API server would write for ``paths`` (inverse of parse_fields_v1)."""
    trie = build_trie(paths)
    _collapse_leaves(trie)
    return trie


def _collapse_leaves(node: Trie) -> None:
    for key, child in node.items():
        if key == MEMBER:
            continue
        if set(child) == {MEMBER}:
            node[key] = {}  # the API server writes a member without children as ``{}``
        else:
            _collapse_leaves(child)


def value_at(obj: object, path: Path) -> tuple[bool, Any]:
    """``(True, value)`` at ``path`` in ``obj``, or ``(False, None)`` when nothing is there."""
    current: Any = obj
    for element in path:
        step = _step(current, element)
        if step is None:
            return False, None
        current = current[step]
    return True, current


def locate(obj: object, path: Path) -> Location | None:
    """Where ``path`` points in ``obj`` (keys and indices), or None when ``obj`` has no such place."""
    current: Any = obj
    location: list[str | int] = []
    for element in path:
        step = _step(current, element)
        if step is None:
            return None
        location.append(step)
        current = current[step]
    return tuple(location)


def _step(current: object, element: str) -> str | int | None:
    """The key or index ``element`` picks in ``current``; None when it picks nothing."""
    prefix, _, raw = element.partition(":")
    if prefix == "f":
        return raw if isinstance(current, Mapping) and raw in current else None
    if not isinstance(current, list):
        return None
    if prefix == "i":
        index = int(raw) if is_index(raw) else -1
        return index if 0 <= index < len(current) else None
    for index, item in enumerate(current):
        if _element_of(item, prefix, raw) == element:
            return index
    return None


def _element_of(item: object, prefix: str, raw: str) -> str | None:
    """The ``prefix`` element that names ``item`` (``raw`` gives a ``k:`` element's key names)."""
    if prefix == "v":
        return "v:" + canonical_json(item)
    if prefix == "k" and isinstance(item, Mapping):
        try:
            names = json.loads(raw)
        except (ValueError, RecursionError):
            return None
        if isinstance(names, dict) and all(name in item for name in names):
            return "k:" + canonical_json({name: item[name] for name in names})
    return None


@dataclass(frozen=True)
class ManagerEntry:
    """One tolerant-parsed ``metadata.managedFields`` entry."""

    manager: str
    operation: str
    subresource: str
    api_version: str
    fields: frozenset[Path]


def manager_entries(managed_fields: object) -> tuple[ManagerEntry, ...]:
    """Parse ``metadata.managedFields``; entries that are not mappings or lack a manager are skipped."""
    if not isinstance(managed_fields, list):
        return ()
    entries: list[ManagerEntry] = []
    for raw in managed_fields:
        if not isinstance(raw, Mapping) or not isinstance(raw.get("manager"), str):
            continue
        entries.append(
            ManagerEntry(
                manager=raw["manager"],
                operation=_text(raw.get("operation")),
                subresource=_text(raw.get("subresource")),
                api_version=_text(raw.get("apiVersion")),
                fields=parse_fields_v1(raw.get("fieldsV1")),
            )
        )
    return tuple(entries)


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def owned_paths(
    entries: Iterable[ManagerEntry],
    *,
    managers: frozenset[str],
    operations: frozenset[str] = WRITE_OPERATIONS,
    subresource: str = "",
) -> frozenset[Path]:
    """The union of the paths ``managers`` own through ``operations`` on ``subresource``."""
    owned: set[Path] = set()
    for entry in entries:
        if entry.manager in managers and entry.operation in operations and entry.subresource == subresource:
            owned |= entry.fields
    return frozenset(owned)
