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

The API server re-encodes every managedFields entry it stores, so the tries it sends spell elements one
way: key fields sorted, compact JSON, Go's escapes (``<`` is ``\\u003c``). ``element_of``/``key_element``
spell an object's elements as ``canonical_json`` does; ``Lookup`` finds them in a trie as the API server
spells it, parsing only keys with an escape in them, so that a walk over a trie and an object stays linear.

This module must not do I/O, log, await, or know policy (which managers matter, what a change means).
Nothing here raises on malformed input: garbage is skipped, and a key we cannot read but can tell is an
element is kept, because ownership of something we cannot name is still ownership.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from json.encoder import encode_basestring
from types import MappingProxyType
from typing import Any

import orjson

Path = tuple[str, ...]
"""A field path: fieldsV1 elements (``f:name``, ``k:{json}``, ``v:json``, ``i:n``) from the root."""

Location = tuple[str | int, ...]
"""A concrete place in one object: map keys and list indices from the root."""

Trie = dict[str, "Trie"]
"""A fieldsV1-shaped trie; the key ``.`` marks that the path to this node is itself in the set."""

MEMBER = "."
LEAF: Mapping[str, Any] = MappingProxyType({})
"""A trie node that is a member with nothing beneath it (what a garbage value in a trie stands for)."""
WRITE_OPERATIONS = frozenset({"Apply", "Update"})
"""The managedFields operations through which a manager owns fields (all there are)."""


_LONG_DIGITS = re.compile(r"[0-9]{19}")
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def element_json(text: str) -> Any:
    """The JSON value in an element's text, exactly as ``json.loads`` reads it; ValueError or RecursionError
    when it is not JSON.

    orjson first (a ``k:`` element is read for every keyed list a walk enters, and ``json.loads`` costs
    about six times as much for so short a text); what orjson refuses (``NaN``, a lone surrogate) goes to
    ``json.loads``, which reads or refuses it as before, and so does a text with 19 digits in a row, as
    orjson would read an integer beyond 64 bits as a float where ``json.loads`` keeps it whole.
    """
    if _LONG_DIGITS.search(text) is None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


def canonical_json(value: object) -> str:
    """Compact JSON with sorted keys: the one spelling used for ``k:`` and ``v:`` elements."""
    return _ENCODER.encode(value)


def _scalar_json(value: object) -> str | None:
    """``canonical_json(value)`` for a string, int, bool or null, without the encoder's overhead."""
    if type(value) is str:
        return encode_basestring(value)  # the encoder's own function for ensure_ascii=False
    if type(value) is bool:
        return "true" if value else "false"
    if type(value) is int:
        return int.__repr__(value)
    return "null" if value is None else None


def value_json(value: object) -> str | None:
    """``canonical_json(value)``, fast for scalars; None when ``value`` cannot be spelled (too deep)."""
    spelled = _scalar_json(value)
    if spelled is not None:
        return spelled
    try:
        return canonical_json(value)
    except (RecursionError, TypeError, ValueError):
        return None


def value_element(item: object) -> str | None:
    """The ``v:`` element naming ``item`` in a set; None when it cannot be spelled."""
    if type(item) is str:
        return "v:" + encode_basestring(item)
    spelled = value_json(item)
    return None if spelled is None else "v:" + spelled


def key_element(item: object, names: tuple[str, ...]) -> str | None:
    """The ``k:`` element naming ``item`` by its key fields ``names`` (sorted); None if it has no such key."""
    return key_namer(names)(item)


def key_namer(names: tuple[str, ...]) -> Callable[[object], str | None]:
    """``key_element`` for one list's key ``names``, with the names spelled once for all its elements."""
    spelled = [encode_basestring(name) + ":" for name in names]
    if len(names) == 1:  # most keyed lists have one key field (name, containerPort, uid...)
        (name,), head = names, "k:{" + spelled[0]

        def one(item: object) -> str | None:
            if (type(item) is not dict and not isinstance(item, Mapping)) or name not in item:
                return None
            value = item[name]
            text = encode_basestring(value) if type(value) is str else value_json(value)
            return None if text is None else head + text + "}"

        return one

    def several(item: object) -> str | None:
        if not isinstance(item, Mapping):
            return None
        parts = []
        for name, prefix in zip(names, spelled, strict=True):
            text = value_json(item[name]) if name in item else None
            if text is None:
                return None
            parts.append(prefix + text)
        return "k:{" + ",".join(parts) + "}"

    return several


def key_names(element: str) -> tuple[str, ...]:
    """The sorted key field names of a ``k:`` element; empty when it is not a readable key."""
    try:
        value = element_json(element[2:])
    except (ValueError, RecursionError):
        return ()
    return tuple(sorted(value)) if isinstance(value, dict) else ()


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
        value = element_json(raw)
    except (ValueError, RecursionError):
        return key  # keep it: ownership of something we cannot name is still ownership
    if prefix == "k":
        return key_namer(tuple(sorted(value)))(value) or key if isinstance(value, dict) else key
    return value_element(value) or key


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
        if element[:2] != "f:":  # a list element: a Locator names the list's elements once
            return Locator().value_at(obj, path)
        # Map fields, the usual case (a label, an annotation, spec.replicas): dict lookups, no Locator.
        if not (type(current) is dict or isinstance(current, Mapping)) or element[2:] not in current:
            return False, None
        current = current[element[2:]]
    return True, current


def locate(obj: object, path: Path) -> Location | None:
    """Where ``path`` points in ``obj`` (keys and indices), or None when ``obj`` has no such place."""
    return Locator().locate(obj, path)


class Locator:
    """Finds paths in objects, naming the elements of each list it searches once.

    Looking up n elements of an n-element list one by one costs n² element namings; a Locator kept for
    many lookups in the same objects names each list once, so the lookups cost time linear in their size.
    """

    def __init__(self) -> None:
        self._named: dict[tuple[int, str | tuple[str, ...]], tuple[list[Any], dict[str, int]]] = {}

    def value_at(self, obj: object, path: Path) -> tuple[bool, Any]:
        """``(True, value)`` at ``path`` in ``obj``, or ``(False, None)`` when nothing is there."""
        current: Any = obj
        for element in path:
            step = self._step(current, element)
            if step is None:
                return False, None
            current = current[step]
        return True, current

    def locate(self, obj: object, path: Path) -> Location | None:
        """Where ``path`` points in ``obj`` (keys and indices), or None when ``obj`` has no such place."""
        current: Any = obj
        location: list[str | int] = []
        for element in path:
            step = self._step(current, element)
            if step is None:
                return None
            location.append(step)
            current = current[step]
        return tuple(location)

    def _step(self, current: object, element: str) -> str | int | None:
        """The key or index ``element`` picks in ``current``; None when it picks nothing."""
        prefix, _, raw = element.partition(":")
        if prefix == "f":  # decoded JSON is a dict: checked first, as isinstance(Mapping) costs an ABC lookup
            return raw if (type(current) is dict or isinstance(current, Mapping)) and raw in current else None
        if not isinstance(current, list):
            return None
        if prefix == "i":
            index = int(raw) if is_index(raw) else -1
            return index if 0 <= index < len(current) else None
        if prefix == "v":
            return self._names(current, "v").get(element)
        names = key_names(element) if prefix == "k" else ()
        return self._names(current, names).get(element) if names else None

    def _names(self, items: list[Any], kind: str | tuple[str, ...]) -> dict[str, int]:
        """Each element name of ``items`` (``v:``, or ``k:`` by the key names ``kind``) at its first index."""
        cached = self._named.get((id(items), kind))
        if cached is None:  # the list is kept in the cache, so its id cannot be reused meanwhile
            named: dict[str, int] = {}
            namer = key_namer(kind) if isinstance(kind, tuple) else value_element
            for index, item in enumerate(items):
                name = namer(item)
                if name is not None:
                    named.setdefault(name, index)
            cached = (items, named)
            self._named[(id(items), kind)] = cached
        return cached[1]


@dataclass(frozen=True)
class ManagerEntry:
    """One tolerant-parsed ``metadata.managedFields`` entry.

    ``trie`` is its fieldsV1 as sent (empty when not a mapping); ``fields``, the set of paths, is parsed on
    first use only: a path set costs time in the depth of the trie, a walk over ``trie`` does not.
    """

    manager: str
    operation: str
    subresource: str
    api_version: str
    trie: Mapping[str, Any] = field(default_factory=lambda: LEAF, hash=False)

    @cached_property
    def fields(self) -> frozenset[Path]:
        return parse_fields_v1(self.trie)


def manager_entries(managed_fields: object) -> tuple[ManagerEntry, ...]:
    """Parse ``metadata.managedFields``; entries that are not mappings or lack a manager are skipped."""
    if not isinstance(managed_fields, list):
        return ()
    entries: list[ManagerEntry] = []
    for raw in managed_fields:
        if (
            not (type(raw) is dict or isinstance(raw, Mapping))
            or type(manager := raw.get("manager")) is not str
        ):
            continue
        trie = raw.get("fieldsV1")
        entries.append(
            ManagerEntry(
                manager=manager,
                operation=_text(raw.get("operation")),
                subresource=_text(raw.get("subresource")),
                api_version=_text(raw.get("apiVersion")),
                trie=trie if type(trie) is dict or isinstance(trie, Mapping) else LEAF,
            )
        )
    return tuple(entries)


def _text(value: object) -> str:
    return value if type(value) is str else ""


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
