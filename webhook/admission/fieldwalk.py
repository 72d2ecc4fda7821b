"""The walk behind webhook.admission.fielddiff: two objects and an owned trie, side by side, once.

Role: the loops of the admission diff, written for speed: they run once per field of both objects, and
a review may hold a hundred thousand fields. No helper is called per scalar, trie lookups are inline,
removed and added list elements are noted in bulk, and beyond ``limit`` paths only their number is kept.
The rules they implement are stated in webhook.admission.fielddiff, which is the API.

This module must not do I/O, log, await, or know policy. Nothing here raises on malformed input.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from driftwarden.fieldsv1 import Path, canonical_json, key_namer, key_names, value_element
from driftwarden.fieldtrie import Lookup, is_leaf, node_of

MAX_DIFF_DEPTH = 64
"""Paths are at most this long; below it values are compared whole (no Kubernetes schema goes deeper)."""
_MISSING: Any = object()
_NO_NODE: Mapping[str, Any] = {}
Node = Mapping[str, Any] | None
"""The owned trie's node at a path, or None where nothing at or beneath the path is owned."""

_SCALARS = (str, int, bool)


def _spelled_alike(old: object, new: object) -> bool:
    """Whether two values that are ``==`` are also spelled alike in JSON (``==`` says ``1 == 1.0 == true``).

    orjson writes a value about seven times faster than ``repr`` and tells the same apart: ``1``, ``1.0``,
    ``true``, ``-0.0`` and ``0.0``, and the order of keys. What it cannot write (an integer beyond 64 bits
    from the strict decoder, a mapping that is not a dict) is compared by ``repr``, as before.
    """
    try:
        return orjson.dumps(old) == orjson.dumps(new)
    except TypeError:  # orjson.JSONEncodeError is one
        return repr(old) == repr(new)


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
        return _spelled_alike(old, new) or canonical_json(old) == canonical_json(new)
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


class Walk:
    """One diff: the paths found so far and the trie lookups already made.

    The loops below are written for speed (no helper call per scalar, trie lookups inline): they run
    once per field of both objects, and a review may hold a hundred thousand of them. ``loose`` says
    that an enclosing pair of values is ``==``, so ``==`` and the spelling need not be asked again below it.
    """

    def __init__(self, *, everything: bool, limit: int | None) -> None:
        self.everything = everything
        self.limit = sys.maxsize if limit is None else limit
        self.touched: list[Path] = []
        self.changed: list[Path] = []
        self.more_touched = self.more_changed = 0
        self.lookup = Lookup()

    def emit(self, path: Path, node: Node, atomic: bool) -> None:
        if self.everything:
            self._keep(self.changed, path, touched=False)
        if atomic or (node is not None and (node or path)):  # the root owns nothing when the trie is empty
            self._keep(self.touched, path, touched=True)

    def note(self, path: Path, element: str, node: Node, atomic: bool) -> None:
        """``emit`` of ``path`` + ``element``, building the path only while it is kept."""
        if self.everything:
            if len(self.changed) < self.limit:
                self.changed.append((*path, element))
            else:
                self.more_changed += 1
        if atomic or node is not None:
            if len(self.touched) < self.limit:
                self.touched.append((*path, element))
            else:
                self.more_touched += 1

    def _keep(self, paths: list[Path], path: Path, *, touched: bool) -> None:
        if len(paths) < self.limit:
            paths.append(path)
        elif touched:
            self.more_touched += 1
        else:
            self.more_changed += 1

    def outside_metadata(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
        """Compare two objects of which every field but ``metadata`` counts as owned, atomically."""
        for key, value in old.items():
            other = new.get(key, _MISSING)
            if type(key) is not str or value is other:
                continue
            if other is _MISSING:
                self.note((), "f:" + key, None, key != "metadata")
            else:
                self.diff(value, other, ("f:" + key,), None, atomic=key != "metadata")
        for key in new:
            if type(key) is str and key not in old:
                self.note((), "f:" + key, None, key != "metadata")

    def diff(self, old: Any, new: Any, path: Path, node: Node, *, atomic: bool, loose: bool = False) -> None:
        """Compare at ``path``: ``node`` is the owned trie there; ``atomic``: an owned atomic leaf is above"""
        if node is None and not atomic and not self.everything:
            return  # nothing here is owned, and nobody asked for everything
        if old is new:
            return
        maps = is_map(old) and is_map(new)
        if not (maps or (isinstance(old, list) and isinstance(new, list))) or len(path) >= MAX_DIFF_DEPTH:
            if not _same(old, new):
                self.emit(path, node, atomic)
            return
        if not loose:
            try:
                if old == new:
                    if _spelled_alike(old, new):
                        return  # equal, at C speed (the spelling tells 1 from true and 1.0; == does not)
                    loose = True  # equal by ==: only the spelling of some value differs inside
            except RecursionError:
                pass  # too deep for that: compare piece by piece
        # Below an owned leaf that holds something, every change touches the leaf (it is atomic).
        below = atomic or (bool(path) and node is not None and bool(old) and is_leaf(node))
        if maps:
            self._maps(old, new, path, node, below=below, loose=loose)
        else:
            self._lists(old, new, path, node, atomic=atomic, below=below, loose=loose)

    def _maps(
        self,
        old: Mapping[str, Any],
        new: Mapping[str, Any],
        path: Path,
        node: Node,
        *,
        below: bool,
        loose: bool,
    ) -> None:
        everything, note, get = self.everything, self.note, new.get
        # The keys whose values may differ, found in one comprehension: scalars of one type that are ==
        # are the same; containers and floats are looked at closer (== says 1 == 1.0 == true).
        differing = [
            key
            for key, value in old.items()
            if (other := get(key, _MISSING)) is not value
            and (type(value) not in _SCALARS or type(value) is not type(other) or value != other)
        ]
        for key in differing:
            if type(key) is not str:
                continue
            element = "f:" + key
            child = node.get(element) if node is not None else None
            if child is None:
                if not (below or everything):
                    continue
            elif type(child) is not dict:
                child = node_of(child)
            value, other = old[key], get(key, _MISSING)
            kind = type(value)
            if other is _MISSING or (kind in _SCALARS and kind is type(other)):
                note(path, element, child, below)  # removed, or a changed scalar
            else:
                self.diff(value, other, (*path, element), child, atomic=below, loose=loose)
        if len(new) != len(old) or differing:
            self._added_keys(old, new, path, node, below=below)

    def _added_keys(
        self, old: Mapping[str, Any], new: Mapping[str, Any], path: Path, node: Node, *, below: bool
    ) -> None:
        for key in new:
            if type(key) is str and key not in old:
                element = "f:" + key
                child = node.get(element) if node is not None else None
                if child is not None or below or self.everything:
                    self.note(path, element, None if child is None else node_of(child), below)

    def _lists(
        self,
        old: list[Any],
        new: list[Any],
        path: Path,
        node: Node,
        *,
        atomic: bool,
        below: bool,
        loose: bool,
    ) -> None:
        kind = _list_kind(node)
        if kind == "i:":
            self._indexed(old, new, path, node, below=below, loose=loose)
            return
        namer = value_element if kind == "v:" else _key_namer(node) if kind == "k:" else None
        keyed = kind == "k:"
        before = _named(old, namer, keyed=keyed) if namer else None
        after = _named(new, namer, keyed=keyed) if namer else None
        if before is None or after is None:
            if not _same(old, new):
                self.emit(path, node, atomic)  # atomic, undescribed, or elements we cannot name: whole
            return
        self._elements(before, after, path, node, below=below, keyed=keyed, loose=loose)

    def _elements(
        self,
        before: dict[str, Any],
        after: dict[str, Any],
        path: Path,
        node: Node,
        *,
        below: bool,
        keyed: bool,
        loose: bool,
    ) -> None:
        """Match named list elements: keyed ones (maps) are compared inside, set values equal or absent."""
        self._bulk(path, [ident for ident in before if ident not in after], node, below=below)
        self._bulk(path, [ident for ident in after if ident not in before], node, below=below)
        if not keyed:
            return
        get, wide = (node or _NO_NODE).get, below or self.everything
        for ident, item in before.items():
            other = after.get(ident, _MISSING)
            if other is _MISSING or item is other:
                continue
            child = get(ident)
            if child is None and node:
                child = self.lookup.respelled(node, ident)  # the trie may spell it otherwise
            if child is None and not wide:
                continue
            self._element(item, other, (*path, ident), node_of(child) if child is not None else None,
                          below=below, loose=loose)  # fmt: skip

    def _bulk(self, path: Path, idents: list[str], node: Node, *, below: bool) -> None:
        """Elements removed or added as a whole: noted in bulk, since a set may hold a hundred thousand."""
        if not idents:
            return
        if self.everything:
            self.more_changed += _extend(self.changed, path, idents, self.limit)
        if not below:
            idents = self._owned(node, idents)
        self.more_touched += _extend(self.touched, path, idents, self.limit)

    def _owned(self, node: Node, idents: list[str]) -> list[str]:
        """The ``idents`` that ``node`` has children for, however the trie spells them."""
        if not node:
            return []
        return self.lookup.present(node, idents)

    def _element(self, item: Any, other: Any, path: Path, node: Node, *, below: bool, loose: bool) -> None:
        """``diff`` for one element of a keyed list, with its usual case (a map) inlined."""
        if type(item) is dict and type(other) is dict and len(path) < MAX_DIFF_DEPTH:
            if not loose:
                try:
                    if item == other:
                        if _spelled_alike(item, other):
                            return
                        loose = True
                except RecursionError:
                    pass
            below = below or (node is not None and bool(item) and (not node or is_leaf(node)))
            self._maps(item, other, path, node, below=below, loose=loose)
        else:
            self.diff(item, other, path, node, atomic=below, loose=loose)

    def _indexed(
        self, old: list[Any], new: list[Any], path: Path, node: Node, *, below: bool, loose: bool
    ) -> None:
        for index in range(max(len(old), len(new))):
            element = f"i:{index}"
            found = node.get(element) if node is not None else None
            child = None if found is None else node_of(found)
            if child is None and not below and not self.everything:
                continue
            if index >= len(old) or index >= len(new):
                self.note(path, element, child, below)
                continue
            value, other = old[index], new[index]
            kind = type(value)
            if kind in _SCALARS and kind is type(other):
                if value != other:
                    self.note(path, element, child, below)
            elif value is not other:
                self.diff(value, other, (*path, element), child, atomic=below, loose=loose)


def _extend(paths: list[Path], path: Path, idents: list[str], limit: int) -> int:
    """Append ``path`` + each ident to ``paths`` up to ``limit``; how many did not fit."""
    room = max(limit - len(paths), 0)
    paths.extend([(*path, ident) for ident in idents[:room]])
    return max(len(idents) - room, 0)


def is_map(value: object) -> bool:
    return type(value) is dict or isinstance(value, Mapping)
