"""The admission diff, in server-side apply's field paths (driftwarden.fieldsv1).

Role: walk an old and a new object side by side with a fieldsV1 trie of owned fields, and return the
changed paths that touch owned fields (and, when asked, every changed path). Lists are matched the way
the trie describes them: by key fields for ``k:`` elements, by value for ``v:`` sets, by position for
``i:``; a list the trie does not describe is compared whole. A changed path touches when it is an owned
path or a prefix of one (a parent removed or replaced), or lies under an owned leaf that is atomic: one
whose old value is not an empty map or list (a manager that applied ``resources: {}`` owns the field's
existence, not what others add inside it). ``owned_changes`` states the same rule for computed paths.

Time: one walk, linear in the size of both objects and the trie, whatever they hold. It does not enter
what the trie does not own (unless asked for every change); equal subtrees are skipped at C speed
(``==``, then ``repr``, which tells ``1`` from ``true`` and ``1.0``); each list element is named once
(driftwarden.fieldsv1.key_element) and found in the trie by a dict lookup (driftwarden.fieldtrie.Lookup);
paths are at most MAX_DIFF_DEPTH long, below which values are compared whole.

This module must not do I/O, log, await, or know policy (which managers are GitOps, which fields matter):
that is webhook.admission.changes's job. Nothing here raises on malformed input; garbage is skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from driftwarden.fieldsv1 import (
    Locator,
    Path,
    Trie,
    build_trie,
    canonical_json,
    key_namer,
    key_names,
    value_element,
)
from driftwarden.fieldtrie import Lookup, is_leaf, node_of

MAX_DIFF_DEPTH = 64
_MISSING: Any = object()
_NO_NODE: Mapping[str, Any] = {}
Node = Mapping[str, Any] | None
"""The owned trie's node at a path, or None where nothing at or beneath the path is owned."""


@dataclass(frozen=True)
class FieldDiff:
    """What changed: the paths that touch owned fields, and every changed path when it was asked for."""

    touched: frozenset[Path]
    changed: frozenset[Path] = frozenset()


def diff_fields(old: object, new: object, owned: Mapping[str, Any], *, everything: bool = False) -> FieldDiff:
    """The changes from ``old`` to ``new`` against the trie ``owned`` (which also describes the lists)."""
    walk = _Walk(everything=everything)
    walk.diff(old, new, (), owned, atomic=False)
    return FieldDiff(frozenset(walk.touched), frozenset(walk.changed))


def changed_paths(old: object, new: object, *, hints: Iterable[Path] = ()) -> frozenset[Path]:
    """The paths at which ``new`` differs from ``old``, lists matched as the trie of ``hints`` describes.

    A list nobody describes is compared whole; a key present on one side only yields the path of that key.
    """
    return diff_fields(old, new, build_trie(hints), everything=True).changed


_SCALARS = (str, int, bool)


def _is_map(value: object) -> bool:
    return type(value) is dict or isinstance(value, Mapping)


def _same(old: object, new: object) -> bool:
    """Equality as JSON sees it: Python's == says ``True == 1`` and ``{"a": 1} == {"a": 1.0}``."""
    if old is new:
        return True
    kind = type(old)
    if kind is not type(new):
        return False
    try:
        if old != new:
            return False
        if kind in _SCALARS:
            return True
        return repr(old) == repr(new) or canonical_json(old) == canonical_json(new)
    except (RecursionError, TypeError, ValueError):
        return False  # too deep to compare: call it changed, which is the guard's safe side


def _list_kind(node: Node) -> str:
    """How the trie names the elements of a list: ``k:``, ``v:``, ``i:``, or "" (the list is whole)."""
    if not node:
        return ""
    kinds = {key[:2] for key in node if type(key) is str}
    return next((kind for kind in ("k:", "v:", "i:") if kind in kinds), "")


def _first_key_names(node: Mapping[str, Any]) -> tuple[str, ...]:
    """The key field names of a list-map, from the first readable ``k:`` element of its trie."""
    for key in node:
        if type(key) is str and key[:2] == "k:" and (names := key_names(key)):
            return names
    return ()


def _key_namer(node: Node) -> Callable[[object], str | None] | None:
    """The namer of a keyed list's elements, by the key names of the first readable ``k:`` of its trie."""
    names = _first_key_names(node) if node is not None else ()
    return key_namer(names) if names else None


def _named(items: list[Any], namer: Callable[[object], str | None], *, keyed: bool) -> dict[str, Any] | None:
    """Elements by their element name; None when one cannot be named.

    A keyed list whose element lacks a key field or repeats a key is replaced whole, as the API server
    would refuse it; a set keeps one of equal values.
    """
    indexed = {namer(item): item for item in items}
    if None in indexed or (keyed and len(indexed) != len(items)):
        return None
    return indexed  # type: ignore[return-value]  # None is not among the keys


class _Walk:
    """One diff: the paths found so far and the trie lookups already made.

    The loops below are written for speed (no helper call per scalar, trie lookups inline): they run
    once per field of both objects, and a review may hold a hundred thousand of them.
    """

    def __init__(self, *, everything: bool) -> None:
        self.everything = everything
        self.touched: set[Path] = set()
        self.changed: set[Path] = set()
        self.lookup = Lookup()

    def emit(self, path: Path, node: Node, atomic: bool) -> None:
        if self.everything:
            self.changed.add(path)
        if atomic or (node is not None and (node or path)):  # the root owns nothing when the trie is empty
            self.touched.add(path)

    def diff(self, old: Any, new: Any, path: Path, node: Node, *, atomic: bool) -> None:
        """Compare at ``path``: ``node`` is the owned trie there; ``atomic``: an owned atomic leaf is above"""
        if node is None and not atomic and not self.everything:
            return  # nothing here is owned, and nobody asked for everything
        if old is new:
            return
        is_map = _is_map(old) and _is_map(new)
        if not (is_map or (isinstance(old, list) and isinstance(new, list))) or len(path) >= MAX_DIFF_DEPTH:
            if not _same(old, new):
                self.emit(path, node, atomic)
            return
        try:
            if old == new and repr(old) == repr(new):
                return  # equal, at C speed (repr tells 1 from true and 1.0, which == does not)
        except RecursionError:
            pass  # too deep for that: compare piece by piece
        # Below an owned leaf that holds something, every change touches the leaf (it is atomic).
        below = atomic or (bool(path) and node is not None and bool(old) and is_leaf(node))
        if is_map:
            self._maps(old, new, path, node, below)
        else:
            self._lists(old, new, path, node, atomic=atomic, below=below)

    def _maps(
        self, old: Mapping[str, Any], new: Mapping[str, Any], path: Path, node: Node, below: bool
    ) -> None:
        everything, changed, touched = self.everything, self.changed.add, self.touched.add
        for key, value in old.items():
            if type(key) is not str:
                continue
            element = "f:" + key
            child = node.get(element) if node is not None else None
            if child is None:
                if not (below or everything):
                    continue
            elif type(child) is not dict:
                child = node_of(child)
            other = new.get(key, _MISSING)
            kind = type(value)
            if value is other:
                continue
            if other is not _MISSING and (kind not in _SCALARS or kind is not type(other)):
                self.diff(value, other, (*path, element), child, atomic=below)
            elif other is _MISSING or value != other:  # removed, or a changed scalar: emit(), inlined
                if everything:
                    changed((*path, element))
                if below or child is not None:
                    touched((*path, element))
        self._added_keys(old, new, path, node, below)

    def _added_keys(
        self, old: Mapping[str, Any], new: Mapping[str, Any], path: Path, node: Node, below: bool
    ) -> None:
        for key in new:
            if type(key) is str and key not in old:
                element = "f:" + key
                child = node.get(element) if node is not None else None
                if child is not None or below or self.everything:
                    self.emit((*path, element), None if child is None else node_of(child), below)

    def _lists(
        self, old: list[Any], new: list[Any], path: Path, node: Node, *, atomic: bool, below: bool
    ) -> None:
        kind = _list_kind(node)
        if kind == "i:":
            self._indexed(old, new, path, node, below)
            return
        namer = value_element if kind == "v:" else _key_namer(node) if kind == "k:" else None
        keyed = kind == "k:"
        before = _named(old, namer, keyed=keyed) if namer else None
        after = _named(new, namer, keyed=keyed) if namer else None
        if before is None or after is None:
            if not _same(old, new):
                self.emit(path, node, atomic)  # atomic, undescribed, or elements we cannot name: whole
            return
        self._elements(before, after, path, node, below=below, keyed=keyed)

    def _elements(
        self,
        before: dict[str, Any],
        after: dict[str, Any],
        path: Path,
        node: Node,
        *,
        below: bool,
        keyed: bool,
    ) -> None:
        """Match named list elements: keyed ones (maps) are compared inside, set values equal or absent."""
        get = (node or _NO_NODE).get
        for ident, item in before.items():
            child = get(ident)
            if child is None:
                child = self.lookup.child(node, ident)  # spelled with an escape, or not owned
                if child is None and not below and not self.everything:
                    continue
            elif type(child) is not dict:
                child = node_of(child)
            other = after.get(ident, _MISSING)
            if other is _MISSING:
                self.emit((*path, ident), child, below)
            elif keyed and item is not other:
                self._element(item, other, (*path, ident), child, below)
        for ident in after:
            if ident not in before:
                self.emit((*path, ident), self.lookup.child(node, ident), below)

    def _element(self, item: Any, other: Any, path: Path, node: Node, below: bool) -> None:
        """``diff`` for one element of a keyed list, with its usual case (a map) inlined."""
        if type(item) is dict and type(other) is dict and len(path) < MAX_DIFF_DEPTH:
            try:
                if item == other and repr(item) == repr(other):
                    return
            except RecursionError:
                pass
            self._maps(item, other, path, node, below or (node is not None and bool(item) and is_leaf(node)))
        else:
            self.diff(item, other, path, node, atomic=below)

    def _indexed(self, old: list[Any], new: list[Any], path: Path, node: Node, below: bool) -> None:
        for index in range(max(len(old), len(new))):
            element = f"i:{index}"
            found = node.get(element) if node is not None else None
            child = None if found is None else node_of(found)
            if index >= len(old) or index >= len(new):
                self.emit((*path, element), child, below)
            else:
                self.diff(old[index], new[index], (*path, element), child, atomic=below)


def _empty_container(value: object) -> bool:
    return (_is_map(value) or isinstance(value, list)) and not value


def owned_changes(
    changed: Iterable[Path],
    owned: Iterable[Path],
    *,
    old: object = _MISSING,
    all_fields: Iterable[Path] = (),
) -> frozenset[Path]:
    """The changed paths that touch owned fields: the module's rule, for paths computed elsewhere.

    An owned leaf counts as atomic unless its old value is an empty map or list, or ``all_fields`` has
    paths beneath it (fields the caller knows to be granular). Without ``old``, every owned leaf is atomic.
    """
    owned_trie, all_trie, locator = build_trie(owned), build_trie(all_fields), Locator()
    return frozenset(
        path for path in changed if _touches(path, owned_trie, all_trie=all_trie, old=old, locator=locator)
    )


def _touches(path: Path, owned: Trie, *, all_trie: Trie, old: object, locator: Locator) -> bool:
    node: Trie = owned
    for depth, element in enumerate(path):
        child = node.get(element)
        if child is None:
            return False
        node = child
        if depth < len(path) - 1 and is_leaf(node):
            prefix = path[: depth + 1]
            granular = all_trie
            for step in prefix:
                granular = granular.get(step) or {}
            if not (granular and not is_leaf(granular)):
                found, value = locator.value_at(old, prefix) if old is not _MISSING else (False, None)
                if not (found and _empty_container(value)):
                    return True
    # The walk consumed the whole path, so it is an owned path or a prefix of one (or the root).
    return bool(node)
