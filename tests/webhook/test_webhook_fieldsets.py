"""fieldsV1 parsing (driftwarden.fieldsv1), changed paths, ownership intersection and rendering."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftwarden.fieldsv1 import (
    Path,
    canonical_json,
    fields_v1_from_paths,
    manager_entries,
    normalize_element,
    owned_paths,
    parse_fields_v1,
    value_at,
)
from tests.webhook.reviews import changed, container, deployment
from webhook.admission.fielddiff import MAX_DIFF_DEPTH, changed_paths, owned_changes
from webhook.admission.messages import render_path

WEB = 'k:{"name":"web"}'
CONTAINERS: Path = ("f:spec", "f:template", "f:spec", "f:containers")
IMAGE: Path = (*CONTAINERS, WEB, "f:image")


def driftwarden_owned(obj: dict[str, Any]) -> frozenset[Path]:
    return owned_paths(manager_entries(obj["metadata"]["managedFields"]), managers=frozenset({"driftwarden"}))


def all_fields(obj: dict[str, Any]) -> frozenset[Path]:
    return frozenset(p for e in manager_entries(obj["metadata"]["managedFields"]) for p in e.fields)


def test_parses_the_applied_deployment_fields() -> None:
    owned = driftwarden_owned(deployment())
    assert ("f:spec", "f:replicas") in owned
    assert IMAGE in owned
    assert (*CONTAINERS, WEB) in owned  # the "." of the element: its existence is owned
    assert CONTAINERS not in owned  # no "." on the list itself
    port = 'k:{"containerPort":8080,"protocol":"TCP"}'
    assert (*CONTAINERS, WEB, "f:ports", port, "f:name") in owned
    assert ("f:metadata", "f:annotations", "f:driftwarden.io/tracking-id") in owned


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("f:spec", "f:spec"),
        ('k:{"protocol":"TCP","containerPort":80}', 'k:{"containerPort":80,"protocol":"TCP"}'),
        ('k:{ "name" : "web" }', WEB),
        ('v:"finalizer.example.com"', 'v:"finalizer.example.com"'),
        ("i:007", "i:7"),
        ("i:-1", None),
        ("i:" + "9" * 5000, None),  # int() would refuse it; a hostile trie must not crash the parse
        ("i:\u0663", None),  # an Arabic-Indic digit: isdigit() says yes, the API server says no
        (".", None),
        ("x:spec", None),
        ("spec", None),
        ("k:[1,2]", "k:[1,2]"),  # not a key object: kept raw, still ownership
        ("k:{broken", "k:{broken"),
    ],
)
def test_normalizes_elements(key: str, expected: str | None) -> None:
    assert normalize_element(key) == expected


def test_parse_tolerates_garbage() -> None:
    garbage: dict[str, Any] = {"f:a": {"f:b": 7, "zz": {}, ".": {}}, 3: {}, "i:x": {}, "f:c": None}
    assert parse_fields_v1(garbage) == {("f:a",), ("f:a", "f:b"), ("f:c",)}
    assert parse_fields_v1(["f:a"]) == frozenset()
    assert parse_fields_v1(None) == frozenset()


def test_parse_of_a_deep_trie_does_not_recurse() -> None:
    trie: dict[str, Any] = {}
    node = trie
    for _ in range(5000):
        node["f:x"] = {}
        node = node["f:x"]
    (path,) = parse_fields_v1(trie)
    assert len(path) == 5000


@pytest.mark.parametrize("depth", [100, 3000])
def test_deep_objects_are_compared_without_recursing_away(depth: int) -> None:
    def nest(leaf: object) -> object:
        value = leaf
        for _ in range(depth):
            value = {"x": [value]}
        return value

    same = changed_paths({"spec": nest(1)}, {"spec": nest(1)})
    different = changed_paths({"spec": nest(1)}, {"spec": nest(2)})
    assert different and all(len(path) <= MAX_DIFF_DEPTH for path in different)
    # Too deep even for the JSON encoder: reported as changed, the guard's safe side.
    assert same == (frozenset() if depth == 100 else {("f:spec", "f:x")})


def test_serializes_like_the_api_server() -> None:
    paths = {("f:spec", "f:replicas"), (*CONTAINERS, WEB), (*CONTAINERS, WEB, "f:image")}
    assert fields_v1_from_paths(paths) == {
        "f:spec": {
            "f:replicas": {},
            "f:template": {"f:spec": {"f:containers": {WEB: {".": {}, "f:image": {}}}}},
        }
    }


def test_changed_paths_of_the_kubectl_edit() -> None:
    old = deployment()
    new = changed(old, lambda o: (o["spec"].update(replicas=5), container(o).update(image="nginx:1.28")))
    assert changed_paths(old, new, hints=all_fields(old)) == {("f:spec", "f:replicas"), IMAGE}


def test_keyed_lists_match_by_key_not_position() -> None:
    old = {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}]}
    new = {"containers": [{"name": "b", "image": "2"}, {"name": "a", "image": "1"}, {"name": "c"}]}
    hints = {("f:containers", 'k:{"name":"a"}')}
    assert changed_paths(old, new, hints=hints) == {
        ("f:containers", 'k:{"name":"b"}', "f:image"),
        ("f:containers", 'k:{"name":"c"}'),
    }
    # Without a hint the list is atomic: one path for the whole list.
    assert changed_paths(old, new) == {("f:containers",)}


def test_keyed_list_with_unnamed_or_duplicate_elements_is_replaced_whole() -> None:
    hints = {("f:env", 'k:{"name":"A"}')}
    assert changed_paths({"env": [{"name": "A"}]}, {"env": [{"value": "x"}]}, hints=hints) == {("f:env",)}
    dup = {"env": [{"name": "A"}, {"name": "A", "value": "1"}]}
    assert changed_paths({"env": [{"name": "A"}]}, dup, hints=hints) == {("f:env",)}


def test_sets_and_indexed_lists() -> None:
    set_hint = {("f:finalizers", 'v:"a"')}
    old, new = {"finalizers": ["a", "b"]}, {"finalizers": ["b", "c"]}
    assert changed_paths(old, new, hints=set_hint) == {("f:finalizers", 'v:"a"'), ("f:finalizers", 'v:"c"')}
    index_hint = {("f:args", "i:0")}
    assert changed_paths({"args": ["x", "y"]}, {"args": ["x", "z", "w"]}, hints=index_hint) == {
        ("f:args", "i:1"),
        ("f:args", "i:2"),
    }


def test_type_changes_and_missing_keys() -> None:
    assert changed_paths({"a": 1}, {"a": True}) == {("f:a",)}
    assert changed_paths({"a": {"b": 1}}, {}) == {("f:a",)}
    assert changed_paths([1], {"a": 1}) == {()}


@pytest.mark.parametrize(
    ("change", "touched"),
    [
        pytest.param(("f:spec", "f:replicas"), True, id="equal-to-owned-leaf"),
        pytest.param(CONTAINERS, True, id="parent-of-owned-replaced"),
        pytest.param((*CONTAINERS, WEB), True, id="owned-element-removed"),
        pytest.param(("f:spec", "f:selector", "f:matchLabels", "f:app"), True, id="under-atomic-owned-leaf"),
        pytest.param((*CONTAINERS, WEB, "f:resources"), False, id="new-field-in-owned-element"),
        pytest.param((*CONTAINERS, 'k:{"name":"sidecar"}'), False, id="new-element"),
        pytest.param(("f:spec", "f:template", "f:metadata", "f:annotations"), False, id="unowned-sibling"),
        pytest.param(("f:metadata", "f:labels", "f:team"), False, id="new-label"),
    ],
)
def test_owned_changes(change: Path, touched: bool) -> None:
    old = deployment()
    result = owned_changes({change}, driftwarden_owned(old), old=old, all_fields=all_fields(old))
    assert (change in result) is touched


def test_an_owned_empty_map_owns_its_existence_not_its_contents() -> None:
    old = {"spec": {"resources": {}, "labels": {"a": "1"}}}
    owned = {("f:spec", "f:resources"), ("f:spec", "f:labels")}
    inside = {("f:spec", "f:resources", "f:limits"), ("f:spec", "f:labels", "f:a")}
    assert owned_changes(inside, owned, old=old) == {("f:spec", "f:labels", "f:a")}
    # Without the old object every owned leaf counts as atomic.
    assert owned_changes(inside, owned) == inside


def test_an_owned_leaf_with_other_owners_beneath_is_granular() -> None:
    owned = {("f:spec", "f:labels")}
    others = {("f:spec", "f:labels", "f:b")}
    change = {("f:spec", "f:labels", "f:b")}
    old = {"spec": {"labels": {"b": "1"}}}
    assert owned_changes(change, owned, old=old, all_fields=owned | others) == frozenset()


def test_value_at() -> None:
    obj = deployment()
    assert value_at(obj, IMAGE) == (True, "nginx:1.27")
    assert value_at(obj, ("f:spec", "f:nope")) == (False, None)
    assert value_at({"f": ["a", "b"]}, ("f:f", 'v:"b"')) == (True, "b")
    assert value_at({"f": ["a", "b"]}, ("f:f", "i:1")) == (True, "b")
    assert value_at({"f": ["a"]}, ("f:f", "i:4")) == (False, None)


@pytest.mark.parametrize(
    ("path", "text"),
    [
        (IMAGE, "spec.template.spec.containers[name=web].image"),
        (("f:spec", "f:replicas"), "spec.replicas"),
        (("f:metadata", "f:labels", "f:app"), "metadata.labels.app"),
        (("f:metadata", "f:labels", "f:driftwarden.io/app"), 'metadata.labels["driftwarden.io/app"]'),
        (("f:ports", 'k:{"containerPort":80,"protocol":"TCP"}'), "ports[containerPort=80,protocol=TCP]"),
        (("f:finalizers", 'v:"a.io/x"'), 'finalizers[="a.io/x"]'),
        (("f:args", "i:2"), "args[2]"),
        ((), "(object)"),
    ],
)
def test_render_path(path: Path, text: str) -> None:
    assert render_path(path) == text


def test_render_path_redacts_element_values() -> None:
    assert render_path(("f:x", 'k:{"name":"s3cr3t"}', 'v:"s3cr3t"'), redact_values=True) == "x[name=…][=…]"


# --- properties ----------------------------------------------------------------------------------------

scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=4)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=25,
)
elements = st.one_of(
    st.text(max_size=6).map(lambda s: f"f:{s}"),
    st.dictionaries(st.sampled_from(["name", "port", "protocol"]), scalars, min_size=1, max_size=2).map(
        lambda d: f"k:{canonical_json(d)}"
    ),
    scalars.map(lambda v: f"v:{canonical_json(v)}"),
    st.integers(0, 20).map(lambda i: f"i:{i}"),
)
path_sets = st.frozensets(st.lists(elements, min_size=1, max_size=5).map(tuple), max_size=12)


@settings(max_examples=200)
@given(path_sets)
def test_fields_v1_round_trips(paths: frozenset[Path]) -> None:
    encoded = fields_v1_from_paths(paths)
    assert parse_fields_v1(json.loads(json.dumps(encoded))) == paths


@settings(max_examples=200)
@given(json_values, path_sets)
def test_identical_objects_have_no_changed_paths(value: Any, hints: frozenset[Path]) -> None:
    assert changed_paths(value, copy.deepcopy(value), hints=hints) == frozenset()


@settings(max_examples=200)
@given(json_values, json_values)
def test_changed_paths_point_at_real_differences(old: Any, new: Any) -> None:
    paths = changed_paths(old, new)
    assert (paths == frozenset()) == (canonical_json(old) == canonical_json(new))
    for path in paths:
        assert canonical_json(value_at(old, path)) != canonical_json(value_at(new, path))


@settings(max_examples=100)
@given(st.permutations(["web", "sidecar", "init", "proxy"]))
def test_reordering_a_keyed_list_is_no_change(order: list[str]) -> None:
    old = {"containers": [{"name": n, "image": n} for n in ["web", "sidecar", "init", "proxy"]]}
    new = {"containers": [{"name": n, "image": n} for n in order]}
    assert changed_paths(old, new, hints={("f:containers", WEB)}) == frozenset()
    unchanged = order == ["web", "sidecar", "init", "proxy"]
    assert changed_paths(old, new) == (frozenset() if unchanged else {("f:containers",)})


owned_leaves = [
    p
    for p in sorted(driftwarden_owned(deployment()))
    if value_at(deployment(), p)[0] and isinstance(value_at(deployment(), p)[1], str | int)
]


@settings(max_examples=200)
@given(st.sampled_from(owned_leaves), scalars)
def test_any_change_of_an_owned_leaf_is_detected(path: Path, value: Any) -> None:
    old = deployment()
    _, before = value_at(old, path)
    new = copy.deepcopy(old)
    _, parent = value_at(new, path[:-1])
    parent[path[-1][2:]] = value
    changes = changed_paths(old, new, hints=all_fields(old))
    touched = owned_changes(changes, driftwarden_owned(old), old=old, all_fields=all_fields(old))
    if canonical_json(value) == canonical_json(before):
        assert touched == frozenset()
    else:
        assert path in touched or any(path[: len(t)] == t for t in touched)
