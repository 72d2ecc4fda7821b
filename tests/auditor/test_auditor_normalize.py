"""Normalisation, RFC 6901 pointers, fieldsV1 walking, field removal and Secret masking."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.diff.normalize import (
    FIRST_MASK,
    LAST_APPLIED,
    mask_secrets,
    normalize,
    remove_locations,
    remove_pointers,
    resolve_pointer,
)
from auditor.diff.objectdiff import managers_fields, owned_locations
from driftwarden.contract import ANNOTATION_DRIFT, ANNOTATION_TRACKING_ID
from driftwarden.fieldsv1 import leaf_paths, locate
from driftwarden.jsonpointer import format_pointer, parse_pointer

leaves = st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000), st.text(max_size=8))
json_values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(min_size=1, max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)
string_maps = st.dictionaries(st.text(min_size=1, max_size=12), st.text(max_size=12), max_size=3)


@st.composite
def kube_objects(draw: st.DrawFn) -> dict[str, Any]:
    """Kubernetes-like objects with random bodies and random server-side noise."""
    kind = draw(st.sampled_from(["ConfigMap", "Secret", "Deployment"]))
    meta: dict[str, Any] = {"name": draw(st.text(min_size=1, max_size=8)), "namespace": "prod"}
    for field, strategy in [
        ("labels", string_maps),
        ("annotations", string_maps),
        ("resourceVersion", st.text(max_size=5)),
        ("uid", st.uuids().map(str)),
        ("generation", st.integers(0, 9)),
        ("managedFields", st.lists(st.fixed_dictionaries({"manager": st.text(max_size=5)}), max_size=2)),
    ]:
        if draw(st.booleans()):
            meta[field] = draw(strategy)
    obj: dict[str, Any] = {
        "apiVersion": "apps/v1" if kind == "Deployment" else "v1",
        "kind": kind,
        "metadata": meta,
    }
    if kind == "Secret":
        obj["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in draw(string_maps).items()}
        if draw(st.booleans()):
            obj["stringData"] = draw(string_maps)
    else:
        obj["spec"] = draw(st.dictionaries(st.text(min_size=1, max_size=6), json_values, max_size=4))
    if draw(st.booleans()):
        obj["status"] = draw(json_values)
    return obj


@settings(max_examples=200)
@given(kube_objects())
def test_normalize_is_idempotent_and_pure(obj: dict[str, Any]) -> None:
    before = copy.deepcopy(obj)
    once = normalize(obj)
    assert normalize(once) == once
    assert obj == before


def test_normalize_drops_noise_and_keeps_content() -> None:
    obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "prod",
            "uid": "u",
            "resourceVersion": "7",
            "generation": 3,
            "creationTimestamp": "2024-01-01T00:00:00Z",
            "selfLink": "/x",
            "deletionTimestamp": "2024-01-02T00:00:00Z",
            "deletionGracePeriodSeconds": 30,
            "managedFields": [{"manager": "kubectl"}],
            "labels": {},
            "annotations": {LAST_APPLIED: "{}", ANNOTATION_DRIFT: "{}", ANNOTATION_TRACKING_ID: "keep"},
        },
        "spec": {"replicas": 2},
        "status": {"readyReplicas": 2},
    }
    assert normalize(obj) == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "prod", "annotations": {ANNOTATION_TRACKING_ID: "keep"}},
        "spec": {"replicas": 2},
    }


def test_normalize_folds_secret_string_data() -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"a": "eA=="}}
    secret["stringData"] = {"b": "hello", "a": "y"}
    assert normalize(secret)["data"] == {"a": "eQ==", "b": "aGVsbG8="}
    assert "stringData" not in normalize(secret)


@pytest.mark.parametrize(
    ("pointer", "tokens"),
    [
        ("", ()),
        ("/spec/replicas", ("spec", "replicas")),
        ("/metadata/annotations/a~1b", ("metadata", "annotations", "a/b")),
        ("/m~0n", ("m~n",)),
        ("/~01", ("~1",)),
        ("/", ("",)),
        ("/a//b", ("a", "", "b")),
    ],
)
def test_parse_pointer(pointer: str, tokens: tuple[str, ...]) -> None:
    assert parse_pointer(pointer) == tokens
    assert format_pointer(tokens) == pointer


@pytest.mark.parametrize("pointer", ["spec", "/a~2b", "/a~", "#/a"])
def test_parse_pointer_rejects_invalid(pointer: str) -> None:
    with pytest.raises(ValueError, match="pointer"):
        parse_pointer(pointer)


@settings(max_examples=200)
@given(st.lists(st.text(alphabet=st.sampled_from("ab~/01 "), max_size=6), max_size=5))
def test_pointer_escapes_round_trip(tokens: list[str]) -> None:
    assert parse_pointer(format_pointer(tokens)) == tuple(tokens)


DOC = {"spec": {"containers": [{"name": "a", "env": []}, {"name": "b"}], "x/y": 1, "": 2}}


@pytest.mark.parametrize(
    ("pointer", "location"),
    [
        ("/spec/containers/1/name", ("spec", "containers", 1, "name")),
        ("/spec/x~1y", ("spec", "x/y")),
        ("/spec/", ("spec", "")),
        ("/spec/containers/2", None),
        ("/spec/containers/01", None),
        ("/spec/containers/-", None),
        ("/spec/missing", None),
        ("", None),
    ],
)
def test_resolve_pointer(pointer: str, location: tuple[str | int, ...] | None) -> None:
    assert resolve_pointer(DOC, pointer) == location


def test_remove_pointers_prunes_only_containers_it_emptied() -> None:
    doc = copy.deepcopy(DOC)
    out = remove_pointers(doc, ["/spec/containers/1/name", "/spec/x~1y", "/nothing/here"])
    assert doc == DOC
    assert out == {"spec": {"containers": [{"name": "a", "env": []}], "": 2}}


def test_remove_locations_of_everything_leaves_an_empty_object() -> None:
    assert remove_locations({"a": {"b": 1}}, [("a", "b")]) == {}


@pytest.mark.parametrize("order", [1, -1], ids=["outer-first", "inner-first"])
def test_nested_locations_remove_the_outer_value_in_either_order(order: int) -> None:
    # Two ignore rules may name a field and a field inside it (jq paths and JSON pointers together).
    locations = [("spec",), ("spec", "template", "image")][::order]
    doc = {"spec": {"template": {"image": "x"}, "replicas": 2}, "kind": "K"}
    assert remove_locations(doc, locations) == {"kind": "K"}


FIELDS_V1 = {
    "f:metadata": {"f:labels": {".": {}, "f:team": {}}},
    "f:spec": {
        "f:replicas": {},
        "f:template": {
            "f:spec": {
                "f:containers": {'k:{"name":"app"}': {".": {}, "f:image": {}, "f:name": {}}},
                "f:finalizers": {'v:"keep"': {}},
                "f:tolerations": {"i:0": {".": {}}},
            }
        },
    },
}
OBJ = {
    "metadata": {"name": "web", "labels": {"team": "a", "other": "b"}},
    "spec": {
        "replicas": 3,
        "template": {
            "spec": {
                "containers": [
                    {"name": "sidecar", "image": "s"},
                    {"name": "app", "image": "i", "ports": [80]},
                ],
                "finalizers": ["first", "keep"],
                "tolerations": [{"key": "k"}],
            }
        },
    },
}


def test_leaf_paths_and_resolution() -> None:
    paths = {"/".join(map(str, path)) for path in leaf_paths(FIELDS_V1)}
    assert paths == {
        "f:metadata/f:labels/f:team",
        "f:spec/f:replicas",
        'f:spec/f:template/f:spec/f:containers/k:{"name":"app"}/f:image',
        'f:spec/f:template/f:spec/f:containers/k:{"name":"app"}/f:name',
        'f:spec/f:template/f:spec/f:finalizers/v:"keep"',
        "f:spec/f:template/f:spec/f:tolerations/i:0",
    }
    steps = ["f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"app"}', "f:image"]
    image = tuple(steps)
    assert locate(OBJ, image) == ("spec", "template", "spec", "containers", 1, "image")
    assert locate(OBJ, ("f:nope",)) is None
    assert locate(OBJ, ("f:spec", "f:replicas", "f:x")) is None


def test_removing_a_managers_fields() -> None:
    out = remove_locations(OBJ, owned_locations(OBJ, [FIELDS_V1]))
    assert out == {
        "metadata": {"name": "web", "labels": {"other": "b"}},
        "spec": {
            "template": {
                "spec": {
                    "containers": [{"name": "sidecar", "image": "s"}, {"ports": [80]}],
                    "finalizers": ["first"],
                }
            }
        },
    }


def test_managers_fields_picks_entries_by_manager() -> None:
    entries = [
        {"manager": "kubectl-edit", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}},
        {"manager": "driftwarden", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:template": {}}}},
        {"manager": "kubectl-edit", "fieldsType": "FieldsV2", "fieldsV1": {"f:x": {}}},
    ]
    obj = {"metadata": {"managedFields": entries}}
    assert managers_fields(obj, ["kubectl-edit"]) == [{"f:spec": {"f:replicas": {}}}]
    assert managers_fields(obj, ["hpa"]) == []
    assert managers_fields({}, ["kubectl-edit"]) == []


def secret(data: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, **extra}
    if data is not None:
        obj["data"] = data
    return obj


def test_masks_keep_equal_values_equal_and_different_values_different() -> None:
    desired, live = mask_secrets(secret({"a": "MTIz", "b": "eHl6"}), secret({"a": "MTIz", "b": "eHl6eA=="}))
    assert desired is not None and live is not None
    assert desired["data"]["a"] == live["data"]["a"] == FIRST_MASK
    assert desired["data"]["b"] == FIRST_MASK
    assert live["data"]["b"] == FIRST_MASK + "++++"


def test_masks_cover_string_data_last_applied_and_missing_sides() -> None:
    annotated = secret(
        {"a": "MTIz"}, metadata={"name": "s", "annotations": {LAST_APPLIED: '{"data":"MTIz"}'}}
    )
    desired, live = mask_secrets(secret(stringData={"a": "123"}), annotated)
    assert desired is not None and live is not None
    assert desired["data"] == live["data"] == {"a": FIRST_MASK}
    assert live["metadata"]["annotations"][LAST_APPLIED] == FIRST_MASK
    only_desired, none = mask_secrets(secret({"k": "c2VjcmV0"}), None)
    assert none is None and only_desired is not None and only_desired["data"] == {"k": FIRST_MASK}


def test_masking_leaves_other_kinds_and_inputs_alone() -> None:
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "plain"}}
    original = secret({"a": "MTIz"})
    masked_config, masked_secret = mask_secrets(config, original)
    assert masked_config == config
    assert original["data"] == {"a": "MTIz"}
    assert masked_secret is not None and masked_secret["data"] == {"a": FIRST_MASK}


def test_masking_copes_with_odd_secret_shapes() -> None:
    desired, live = mask_secrets(secret({1: "c2VjcmV0"}), secret(data="c2VjcmV0"))  # type: ignore[dict-item, arg-type]
    assert desired is not None and live is not None
    assert desired["data"] == {1: FIRST_MASK}
    assert live["data"] == FIRST_MASK
