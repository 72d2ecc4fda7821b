"""The admission diff, in server-side apply's field paths (driftwarden.fieldsv1).

Role: walk an old and a new object side by side with a fieldsV1 trie of owned fields, and return the
changed paths that touch owned fields (and, when asked, every changed path). Lists are matched the way
the trie describes them: by key fields for ``k:`` elements, by value for ``v:`` sets, by position for
``i:``; a list the trie does not describe is compared whole. A changed path touches when it is an owned
path or a prefix of one (a parent removed or replaced), or lies under an owned leaf that is atomic: one
whose old value is not an empty map or list (a manager that applied ``resources: {}`` owns the field's
existence, not what others add inside it). ``owned_changes`` states the same rule for computed paths.

Time: one walk (webhook.admission.fieldwalk), linear in the size of both objects and the trie, whatever
they hold. It does not enter what the trie does not own (unless asked for every change); equal subtrees
are skipped at C speed (``==``, then the JSON spelling, which tells ``1`` from ``true`` and ``1.0``);
each list element is named once (driftwarden.fieldsv1.key_namer) and found in the trie by a dict lookup
(driftwarden.fieldtrie.Lookup); paths are at most MAX_DIFF_DEPTH long, below which values are compared
whole. A 3 MiB review is decided in well under 100 ms (docs/webhook.md, "Decision time").

This module must not do I/O, log, await, or know policy (which managers are GitOps, which fields matter):
that is webhook.admission.changes's job. Nothing here raises on malformed input; garbage is skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from driftwarden.fieldsv1 import Locator, Path, Trie, build_trie
from driftwarden.fieldtrie import is_leaf
from webhook.admission.fieldwalk import MAX_DIFF_DEPTH, Walk, is_map

__all__ = ["MAX_DIFF_DEPTH", "FieldDiff", "changed_paths", "diff_fields", "owned_changes"]

_MISSING: Any = object()


@dataclass(frozen=True)
class FieldDiff:
    """What changed: the paths that touch owned fields and how many there are, and (when asked for)
    every changed path and how many. The paths are the first ``limit`` found, in the objects' order."""

    touched: tuple[Path, ...]
    touched_count: int
    changed: tuple[Path, ...] = ()
    changed_count: int = 0


def diff_fields(
    old: object,
    new: object,
    owned: Mapping[str, Any] | None,
    *,
    everything: bool = False,
    limit: int | None = None,
) -> FieldDiff:
    """The changes from ``old`` to ``new`` against the trie ``owned`` (which also describes the lists).

    With ``owned`` None nothing says what is owned, and every change outside ``metadata`` touches.
    Beyond ``limit`` paths of a kind only their number is kept: counting is cheaper than naming.
    """
    walk = Walk(everything=everything, limit=limit)
    if owned is not None:
        walk.diff(old, new, (), owned, atomic=False)
    elif is_map(old) and is_map(new):
        walk.outside_metadata(old, new)  # type: ignore[arg-type]
    else:
        walk.diff(old, new, (), None, atomic=True)
    return FieldDiff(
        tuple(walk.touched), len(walk.touched) + walk.more_touched, tuple(walk.changed),
        len(walk.changed) + walk.more_changed,
    )  # fmt: skip


def changed_paths(old: object, new: object, *, hints: Iterable[Path] = ()) -> frozenset[Path]:
    """The paths at which ``new`` differs from ``old``, lists matched as the trie of ``hints`` describes.

    A list nobody describes is compared whole; a key present on one side only yields the path of that key.
    """
    return frozenset(diff_fields(old, new, build_trie(hints), everything=True).changed)


def _empty_container(value: object) -> bool:
    return (is_map(value) or isinstance(value, list)) and not value


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
