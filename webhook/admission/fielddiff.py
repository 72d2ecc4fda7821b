"""The admission diff, in server-side apply's field paths (driftwarden.fieldsv1).

Role: compute which paths changed between an old and a new object, matching list elements the way the
managedFields describe them, and intersect changed paths with the paths a set of field managers owns.

This module must not do I/O, log, await, or know policy (which managers are GitOps, which fields matter):
that is webhook.admission.decision's job. Nothing here raises on malformed input; garbage is skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from driftwarden.fieldsv1 import MEMBER, Path, Trie, build_trie, canonical_json, value_at

MAX_DIFF_DEPTH = 64
_MISSING: Any = object()


def changed_paths(old: object, new: object, *, hints: Iterable[Path] = ()) -> frozenset[Path]:
    """The paths at which ``new`` differs from ``old``.

    Lists are matched element by element the way fieldsV1 names them: by key fields when ``hints``
    describe the list with ``k:`` elements, by value for ``v:`` sets, by position for ``i:``; a list
    nobody describes is compared whole. A key present on one side only yields the path of that key.
    """
    out: set[Path] = set()
    _diff(old, new, (), build_trie(hints), out)
    return frozenset(out)


def _same(old: object, new: object) -> bool:
    """Equality as JSON sees it: Python's == says ``True == 1`` and ``{"a": 1} == {"a": 1.0}``."""
    if old is new:
        return True
    if type(old) is not type(new):
        return False
    if isinstance(old, Mapping | list):
        try:
            return canonical_json(old) == canonical_json(new)
        except (RecursionError, TypeError, ValueError):
            return False  # too deep or not JSON: call it changed, which is the guard's safe side
    return old == new


def _diff(old: object, new: object, path: Path, hint: Trie | None, out: set[Path]) -> None:
    if len(path) >= MAX_DIFF_DEPTH:
        # Below this depth no Kubernetes schema goes; compare the rest whole rather than recurse into
        # a hostile nesting until the interpreter gives up (which would let the request through).
        if not _same(old, new):
            out.add(path)
    elif isinstance(old, Mapping) and isinstance(new, Mapping):
        _diff_maps(old, new, path, hint, out)
    elif isinstance(old, list) and isinstance(new, list):
        _diff_lists(old, new, path, hint, out)
    elif not _same(old, new):
        out.add(path)


def _diff_maps(
    old: Mapping[Any, Any], new: Mapping[Any, Any], path: Path, hint: Trie | None, out: set[Path]
) -> None:
    for key in old.keys() | new.keys():
        if not isinstance(key, str):
            continue
        element = f"f:{key}"
        child = (*path, element)
        if key not in old or key not in new:
            out.add(child)
        else:
            _diff(old[key], new[key], child, _child(hint, element), out)


def _child(hint: Trie | None, element: str) -> Trie | None:
    return hint.get(element) if hint is not None else None


def _diff_lists(old: list[Any], new: list[Any], path: Path, hint: Trie | None, out: set[Path]) -> None:
    kinds = {key[:2] for key in hint or {} if key != MEMBER}
    if "k:" in kinds:
        _diff_keyed(old, new, path, hint or {}, out)
    elif "v:" in kinds:
        before, after = _value_ids(old), _value_ids(new)
        out.update((*path, ident) for ident in before ^ after)
    elif "i:" in kinds:
        for index in range(max(len(old), len(new))):
            child = (*path, f"i:{index}")
            if index >= len(old) or index >= len(new):
                out.add(child)
            else:
                _diff(old[index], new[index], child, _child(hint, f"i:{index}"), out)
    elif not _same(old, new):
        out.add(path)  # atomic or undescribed: the list changed as a whole


def _diff_keyed(old: list[Any], new: list[Any], path: Path, hint: Trie, out: set[Path]) -> None:
    names = _key_names(hint)
    before = _index_by_key(old, names) if names else None
    after = _index_by_key(new, names) if names else None
    if before is None or after is None:
        if not _same(old, new):
            out.add(path)  # elements we cannot name: treat the list as replaced
        return
    for ident in before.keys() | after.keys():
        child = (*path, ident)
        if ident not in before or ident not in after:
            out.add(child)
        else:
            _diff(before[ident], after[ident], child, hint.get(ident), out)


def _key_names(hint: Trie) -> tuple[str, ...]:
    """The key field names of a list-map, from the first parseable ``k:`` element of its trie."""
    for key in sorted(hint):
        if key.startswith("k:"):
            try:
                value = json.loads(key[2:])
            except (ValueError, RecursionError):
                continue
            if isinstance(value, dict) and value:
                return tuple(sorted(value))
    return ()


def _index_by_key(items: list[Any], names: tuple[str, ...]) -> dict[str, Any] | None:
    """Elements by their ``k:`` element; None when one lacks a key field or two share a key."""
    indexed: dict[str, Any] = {}
    for item in items:
        if not isinstance(item, Mapping) or any(name not in item for name in names):
            return None
        ident = "k:" + canonical_json({name: item[name] for name in names})
        if ident in indexed:
            return None
        indexed[ident] = item
    return indexed


def _value_ids(items: list[Any]) -> set[str]:
    return {"v:" + canonical_json(item) for item in items}


def owned_changes(
    changed: Iterable[Path],
    owned: Iterable[Path],
    *,
    old: object = _MISSING,
    all_fields: Iterable[Path] = (),
) -> frozenset[Path]:
    """The changed paths that touch owned fields.

    A changed path touches when it equals an owned path, is a prefix of one (a parent removed or
    replaced), or lies under an owned leaf that is atomic. An owned leaf counts as atomic unless its
    old value is an empty map or list (a manager that applied ``resources: {}`` owns the field's
    existence, not what others add inside it) or another manager owns paths beneath it (which the API
    server only records for granular fields). Without ``old``, every owned leaf is atomic.
    """
    owned_trie = build_trie(owned)
    all_trie = build_trie(all_fields)
    return frozenset(path for path in changed if _touches(path, owned_trie, all_trie=all_trie, old=old))


def _touches(path: Path, owned: Trie, *, all_trie: Trie, old: object) -> bool:
    node: Trie = owned
    for depth, element in enumerate(path):
        child = node.get(element)
        if child is None:
            return False
        node = child
        prefix = path[: depth + 1]
        is_leaf = set(node) == {MEMBER}
        if is_leaf and depth < len(path) - 1 and _atomic(prefix, old=old, all_trie=all_trie):
            return True
    # The walk consumed the whole path, so it is an owned path or a prefix of one (or the root).
    return bool(node)


def _atomic(path: Path, *, old: object, all_trie: Trie) -> bool:
    node: Trie | None = all_trie
    for element in path:
        node = _child(node, element)
    if node is not None and set(node) - {MEMBER}:
        return False
    if old is _MISSING:
        return True
    found, value = value_at(old, path)
    return not (found and isinstance(value, Mapping | list) and not value)
