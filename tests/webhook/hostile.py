"""Strategies and builders of the hostile-input suite (tests/webhook/test_webhook_hostile.py), per class.

Each class has the places in a review where its hostile content goes (functions that edit an object in
place) and the Hypothesis strategies that make the content; ``edit`` builds the review around them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from hypothesis import strategies as st

from driftwarden import contract
from tests.webhook.reviews import AUDITOR, admission_review, changed, container, deployment

UID = "8c5b6f5e-0000-4000-8000-000000000001"
LONE = ("\ud800", "\udbff", "\udc00", "\udfff")
ODD = (
    "\x00",
    "\u200f",
    "\u202e",
    "\u2066",
    "\ufeff",
    "\u0301",
    "😀",
    "\U0010ffff",
    "\x7f",
    "\x1b[31m",
    *LONE,
)


def edit(mutate: Callable[[dict[str, Any]], object], *, old: dict[str, Any] | None = None) -> dict[str, Any]:
    """Jane's UPDATE of the managed Deployment (enforce mode): ``mutate`` applied to a copy of ``old``."""
    stored = old if old is not None else deployment()
    return admission_review(old=stored, new=changed(stored, mutate), user="jane", uid=UID)


def scaled(obj: dict[str, Any]) -> None:
    obj["spec"]["replicas"] = 9


def nested_text(depth: int, shape: str) -> str:
    """JSON ``depth`` levels deep, as text (json.dumps cannot write it that deep)."""
    kinds = {
        "object": ["o"] * depth,
        "list": ["l"] * depth,
        "mixed": ["o", "l"] * (depth // 2) + ["o"] * (depth % 2),
    }
    opening = "".join('{"k":' if kind == "o" else "[" for kind in kinds[shape])
    closing = "".join("}" if kind == "o" else "]" for kind in reversed(kinds[shape]))
    return f'{opening}"leaf"{closing}'


# --- deep nesting -------------------------------------------------------------------------------------


def _in_args(obj: dict[str, Any]) -> None:
    container(obj)["args"] = "@DEEP@"


def _in_unowned_spec(obj: dict[str, Any]) -> None:
    obj["spec"]["extra"] = "@DEEP@"


def in_value_set(obj: dict[str, Any]) -> None:  # issue 13, item 7: inside a v:-keyed list
    container(obj)["command"] = ["@DEEP@"]
    owned = obj["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
    owned['k:{"name":"web"}']["f:command"] = {"v:@DEEPKEY@": {}}


def _in_managed_fields(obj: dict[str, Any]) -> None:
    obj["metadata"]["managedFields"].append(
        {"manager": "mallory", "operation": "Update", "fieldsV1": "@DEEP@"}
    )


def _in_label(obj: dict[str, Any]) -> None:
    obj["metadata"]["labels"]["deep"] = "@DEEP@"


DEEP_PLACES = (_in_args, _in_unowned_spec, in_value_set, _in_managed_fields, _in_label)


# --- huge keys ----------------------------------------------------------------------------------------


def _label_key(obj: dict[str, Any], key: str) -> None:
    obj["metadata"]["labels"][key] = "v"


def _annotation_key(obj: dict[str, Any], key: str) -> None:
    obj["metadata"]["annotations"][key] = "v"


def _spec_key(obj: dict[str, Any], key: str) -> None:
    obj["spec"][key] = 1


def _owned_field_key(obj: dict[str, Any], key: str) -> None:
    obj["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"][f"f:{key}"] = {}


def _owned_element_key(obj: dict[str, Any], key: str) -> None:
    owned = obj["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
    owned[f"k:{json.dumps({'name': key})}"] = {".": {}, "f:image": {}}
    obj["spec"]["template"]["spec"]["containers"].append({"name": key, "image": "x"})


def _manager_name(obj: dict[str, Any], key: str) -> None:
    obj["metadata"]["managedFields"].append(
        {"manager": key, "operation": "Update", "fieldsV1": {"f:spec": {}}}
    )


KEY_PLACES = (_label_key, _annotation_key, _spec_key, _owned_field_key, _owned_element_key, _manager_name)


# --- odd unicode --------------------------------------------------------------------------------------


odd_text = st.lists(st.one_of(st.sampled_from(ODD), st.characters()), min_size=1, max_size=8).map("".join)


def rename_container(obj: dict[str, Any], text: str) -> None:  # issue 13, item 7: in a changed path
    container(obj)["name"] = text
    owned = obj["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
    (key,) = owned
    owned[f"k:{json.dumps({'name': text}, ensure_ascii=False)}"] = owned.pop(key)


def _odd_label(obj: dict[str, Any], text: str) -> None:
    obj["metadata"]["labels"][text] = text


def _odd_image(obj: dict[str, Any], text: str) -> None:
    container(obj)["image"] = text


def _odd_manager(obj: dict[str, Any], text: str) -> None:
    obj["metadata"]["managedFields"][0]["manager"] = text


def odd_name(obj: dict[str, Any], text: str) -> None:
    obj["metadata"]["name"] = text


UNICODE_PLACES = (rename_container, _odd_label, _odd_image, _odd_manager, odd_name)


# --- duplicate keys -----------------------------------------------------------------------------------


Path = tuple[str, ...]


DECOYS: list[tuple[Path, str, Any]] = [
    ((), "kind", "NotAReview"),
    (("request",), "operation", "CONNECT"),
    (("request",), "userInfo", {"username": AUDITOR, "groups": ["system:masters"]}),
    (("request", "userInfo"), "username", AUDITOR),
    (("request", "object", "metadata", "annotations"), contract.ANNOTATION_GUARD, "off"),
    (("request", "oldObject", "metadata", "annotations"), contract.ANNOTATION_GUARD, "off"),
    (("request", "oldObject", "metadata"), "managedFields", [{}]),
    (("request", "object", "spec"), "replicas", 2),
]


def dumps_with_decoys(value: Any, decoys: list[tuple[Path, str, Any]], path: Path = ()) -> str:
    """JSON for ``value`` where each object at a decoy's path first repeats its key with the decoy value."""
    if isinstance(value, dict):
        pairs = [f"{json.dumps(key)}:{json.dumps(decoy)}" for where, key, decoy in decoys if where == path]
        pairs += [f"{json.dumps(k)}:{dumps_with_decoys(v, decoys, (*path, k))}" for k, v in value.items()]
        return "{" + ",".join(pairs) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dumps_with_decoys(v, decoys, path) for v in value) + "]"
    return json.dumps(value)


# --- wrong types --------------------------------------------------------------------------------------


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


def paths_of(value: Any, path: tuple[Any, ...] = (), depth: int = 0) -> Iterator[tuple[Any, ...]]:
    yield path
    if depth >= 8:
        return
    if isinstance(value, dict):
        for key, child in value.items():
            yield from paths_of(child, (*path, key), depth + 1)
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from paths_of(child, (*path, index), depth + 1)


TYPED_PATHS = [p for p in paths_of(edit(scaled)) if p]


# --- wrong encodings and content types ----------------------------------------------------------------


ENCODINGS = [
    None,
    "",
    "identity",
    "IDENTITY",
    "gzip",
    "GZIP",
    "deflate",
    "br",
    "gzip, identity",
    "x-zip",
    "*",
]


CONTENT_TYPES = [
    "application/json", "APPLICATION/JSON", "application/json; charset=utf-8",
    "application/json; charset=UTF-8",
    "application/json; charset=utf-16", "application/json; charset=latin-1", "text/plain",
    "application/json-patch+json", "application/x-www-form-urlencoded", "",
]  # fmt: skip


BODY_CODECS = ["utf-8", "utf-8-sig", "utf-16", "utf-32", "latin-1"]


# --- planted and stripped managedFields ---------------------------------------------------------------


MANAGERS = [
    "driftwarden",
    "kubectl-edit",
    "argocd-controller",
    "kube-controller-manager",
    "mallory",
    "",
    "\x00",
]


field_keys = st.one_of(
    st.sampled_from(["f:spec", "f:replicas", "f:metadata", "f:labels", ".", "i:0", "i:-1", "i:99999999999"]),
    st.sampled_from(['k:{"name":"web"}', "k:{}", "k:[1]", "k:{", 'v:"x"', "v:[1,2]", "v:", "x:y", "f:"]),
    st.text(max_size=6).map(lambda t: f"f:{t}"),
)


fields_v1 = st.recursive(
    st.just({}) | st.none() | st.integers() | st.text(max_size=3),
    lambda inner: st.dictionaries(field_keys, inner, max_size=4),
    max_leaves=12,
)


entries = st.fixed_dictionaries(
    {"manager": st.sampled_from(MANAGERS), "fieldsV1": fields_v1},
    optional={
        "operation": st.sampled_from(["Apply", "Update", "Delete", None, 7]),
        "apiVersion": st.sampled_from(["apps/v1", "v1", ""]),
        "fieldsType": st.sampled_from(["FieldsV1", "FieldsV2", None]),
        "subresource": st.sampled_from(["", "status", "scale"]),
        "time": st.sampled_from(["2026-01-01T00:00:00Z", "yesterday", None]),
    },
)


managed_fields = st.one_of(
    st.just("keep"),
    st.sampled_from([[{}], [], None, "garbage", 0, {}, [None], [[]]]),
    st.lists(entries, max_size=4),
    st.lists(entries, max_size=3).map(lambda planted: ["keep", *planted]),
)


def with_fields(stored: list[dict[str, Any]], chosen: Any) -> Any:
    if chosen == "keep":
        return stored
    if isinstance(chosen, list) and chosen[:1] == ["keep"]:
        return [*stored, *chosen[1:]]
    return chosen


# --- the reproductions, and the process after all of the above --------------------------------
