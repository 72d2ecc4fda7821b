"""fieldsV1 tries as the API server writes them: find, merge and compare them without listing their paths.

Role: the webhook walks an object and the GitOps managers' tries side by side. Listing a trie's paths
(driftwarden.fieldsv1.parse_fields_v1) costs time in the depth of every path; a walk does not, so whatever
the input, reading what Git owns stays linear in the size of the review. ``Lookup`` finds an element
among a node's children as the API server spells it; ``merge`` unions tries for a walk; ``canonical``
rewrites tries in canonical spelling with a ``.`` on every member, and ``covers`` says whether every path
of one canonical trie is a path of another; ``owns`` says whether a trie has one path.

Everything here is iterative: a hostile trie must not reach the interpreter's recursion limit.
This module must not do I/O, log, await, or know policy (which managers matter, what a change means).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from driftwarden.fieldsv1 import LEAF, MEMBER, Path, Trie, normalize_element

ELEMENT_PREFIXES = frozenset({"f:", "k:", "v:", "i:"})
# Go's encoding/json escapes these in strings; canonical_json (Python's encoder) writes them as they are.
GO_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)
GO_ESCAPED = frozenset("<>&\u2028\u2029")


def node_of(value: object) -> Mapping[str, Any]:
    """``value`` as a trie node: itself, or LEAF for a garbage value, which stands for a member."""
    return value if type(value) is dict or isinstance(value, Mapping) else LEAF


def is_leaf(node: Mapping[str, Any]) -> bool:
    """Whether nothing is owned beneath ``node``: it has no element among its keys."""
    for key in node:  # noqa: SIM110  # a loop, not all(): it runs for every node a walk enters
        if key != MEMBER and type(key) is str and key[:2] in ELEMENT_PREFIXES:
            return False
    return True


def is_member(node: Mapping[str, Any]) -> bool:
    """Whether the path to ``node`` is itself owned: it says ``.``, or it is a leaf."""
    return MEMBER in node or not node


class Lookup:
    """Children of trie nodes by canonical element (the spelling of driftwarden.fieldsv1.canonical_json).

    The API server spells elements canonically except for JSON escapes: Go writes ``<`` as ``\\u003c``.
    After a miss an element is looked up as Go spells it, then among a node's keys with a backslash in
    them, which are parsed once per node. One Lookup serves one walk: it remembers the nodes it parsed.
    """

    def __init__(self) -> None:
        self._respelled: dict[int, tuple[Mapping[str, Any], dict[str, Any]]] = {}

    def child(self, node: Mapping[str, Any] | None, element: str) -> Mapping[str, Any] | None:
        """The child of ``node`` named ``element``; None when there is none (or no node)."""
        if node is None:
            return None
        found = node.get(element)
        if found is None and element[:2] in ("k:", "v:"):
            found = self.respelled(node, element)
        return None if found is None else node_of(found)

    def respelled(self, node: Mapping[str, Any], element: str) -> Any:
        """The raw child of ``node`` whose key spells ``element`` otherwise: as Go escapes it, or parsed."""
        if not GO_ESCAPED.isdisjoint(element):
            found = node.get(element.translate(GO_ESCAPES))
            if found is not None:
                return found
        escaped = self.escaped(node)
        return escaped.get(element) if escaped else None

    def present(self, node: Mapping[str, Any], elements: list[str]) -> list[str]:
        """The ``elements`` that ``node`` has a child for, however it spells them: ``respelled`` for many
        elements at once (a set's replaced values, a hundred thousand at most), one call for all of them."""
        escaped = self.escaped(node)
        return [
            element
            for element in elements
            if element in node
            or (escaped and element in escaped)
            or (not GO_ESCAPED.isdisjoint(element) and element.translate(GO_ESCAPES) in node)
        ]

    def escaped(self, node: Mapping[str, Any]) -> dict[str, Any]:
        """The children of ``node`` whose keys have an escape, by canonical element (parsed once)."""
        cached = self._respelled.get(id(node))
        if cached is None:  # the node is kept in the cache, so its id cannot be reused meanwhile
            respelled: dict[str, Any] = {}
            for raw, child in node.items():
                element = normalize_element(raw) if type(raw) is str and "\\" in raw else None
                if element is not None and element != raw:
                    respelled.setdefault(element, child)
            cached = (node, respelled)
            self._respelled[id(node)] = cached
        return cached[1]


def owns(trie: Mapping[str, Any], path: Path, lookup: Lookup | None = None) -> bool:
    """Whether ``path`` is one of the paths of ``trie``."""
    lookup = lookup or Lookup()
    node: Mapping[str, Any] | None = trie
    for element in path:
        node = lookup.child(node, element)
        if node is None:
            return False
    return bool(path) and node is not None and is_member(node)


def merge(tries: Iterable[object]) -> Mapping[str, Any]:
    """The union of ``tries`` as spelled, sharing what only one of them has; one trie is returned as is."""
    nodes = [node_of(trie) for trie in tries]
    if len(nodes) == 1:
        return nodes[0]
    root: dict[str, Any] = {}
    stack: list[tuple[dict[str, Any], list[Mapping[str, Any]]]] = [(root, nodes)]
    while stack:
        out, sources = stack.pop()
        grouped: dict[str, list[Mapping[str, Any]]] = {}
        for source in sources:
            if is_member(source):
                out[MEMBER] = {}
            for key, child in source.items():
                if key != MEMBER:
                    grouped.setdefault(key, []).append(node_of(child))
        for key, children in grouped.items():
            if len(children) == 1:
                out[key] = children[0]  # shared, not copied: tries are only read from here on
            else:
                stack.append((out.setdefault(key, {}), children))
    return root


def canonical(tries: Iterable[object]) -> Trie:
    """The union of ``tries`` in canonical spelling, every member marked ``.``; garbage keys are skipped.

    Its members are the paths driftwarden.fieldsv1.parse_fields_v1 lists for the same tries.
    """
    root: Trie = {}
    stack: list[tuple[object, Trie]] = [(trie, root) for trie in tries]
    while stack:
        raw, out = stack.pop()
        if not raw or not (type(raw) is dict or isinstance(raw, Mapping)):
            out[MEMBER] = {}
            continue
        for key, child in raw.items():
            if key == MEMBER:
                out[MEMBER] = {}
                continue
            element = key if type(key) is str and key[:2] == "f:" else normalize_element(key)
            if element is None:
                continue
            sub = out.get(element)
            if sub is None:
                sub = out[element] = {}
            if child == {}:  # a leaf, the most common node: no trip through the stack
                sub[MEMBER] = {}
            else:
                stack.append((child, sub))
    root.pop(MEMBER, None)  # the root is no path
    return root


def covers(big: Trie, small: Trie) -> bool:
    """Whether every path of ``small`` is a path of ``big`` (both canonical)."""
    stack: list[tuple[Trie, Trie]] = [(small, big)]
    while stack:
        part, whole = stack.pop()
        for key, child in part.items():
            if key == MEMBER:
                continue
            other = whole.get(key, {})
            if MEMBER in child and MEMBER not in other:
                return False
            stack.append((child, other))
    return True
