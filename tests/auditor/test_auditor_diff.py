"""ObjectDiff: actions, changed paths, ignoreDifferences, masked unified diffs and the sync verdict."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.application import IgnoreDifference
from auditor.diff.objectdiff import ObjectDiff, changed_paths, diff_object, sync_status
from driftwarden.objectref import ObjectRef

SECRET_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
SECRET_KEYS = ["password", "token", "tls.key", "user"]


def deployment(replicas: int = 2, image: str = "nginx:1", **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "prod", **meta},
        "spec": {
            "replicas": replicas,
            "template": {"spec": {"containers": [{"name": "app", "image": image}]}},
        },
    }


def live_copy(obj: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """``obj`` as the server would return it: with status and metadata noise."""
    out = copy.deepcopy(obj)
    out["metadata"].update(uid="1234", resourceVersion="99", generation=4, managedFields=[{"manager": "x"}])
    out["status"] = {"observedGeneration": 4}
    out.update(changes)
    return out


leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8))
bodies = st.dictionaries(
    st.text(min_size=1, max_size=8),
    st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=10,
    ),
    max_size=4,
)


@settings(max_examples=200)
@given(bodies, st.sampled_from(["ConfigMap", "Secret", "Service"]))
def test_an_object_diffed_with_itself_is_unchanged(body: dict[str, Any], kind: str) -> None:
    obj = {**body, "apiVersion": "v1", "kind": kind, "metadata": {"name": "x", "namespace": "p"}}
    result = diff_object(obj, copy.deepcopy(obj))
    assert result == ObjectDiff(ObjectRef("", "v1", kind, "p", "x"), "unchanged")
    assert sync_status([result]) == "Synced"


@settings(max_examples=200)
@given(bodies, bodies, st.sampled_from(["ConfigMap", "Secret"]))
def test_any_two_objects_give_a_consistent_diff(a: dict[str, Any], b: dict[str, Any], kind: str) -> None:
    head = {"apiVersion": "v1", "kind": kind, "metadata": {"name": "x", "namespace": "p"}}
    result = diff_object({**a, **head}, {**b, **head})
    assert (result.action == "update") is bool(result.changed_paths)
    assert (result.action == "unchanged") is (result.unified_diff == "")


def test_server_noise_is_not_drift() -> None:
    desired = deployment()
    assert diff_object(desired, live_copy(desired)).action == "unchanged"


def test_update_reports_changed_paths_and_a_unified_diff() -> None:
    desired = deployment(replicas=2, image="nginx:2")
    result = diff_object(desired, live_copy(deployment(replicas=5, image="nginx:1")))
    assert result.action == "update"
    assert result.changed_paths == ("/spec/replicas", "/spec/template/spec/containers/0/image")
    assert "-  replicas: 5\n+  replicas: 2\n" in result.unified_diff
    assert "-      - image: nginx:1\n+      - image: nginx:2\n" in result.unified_diff
    assert result.unified_diff.startswith(
        "--- live Deployment.apps prod/web\n+++ desired Deployment.apps prod/web\n"
    )
    assert sync_status([result]) == "OutOfSync"


def test_create_and_prune() -> None:
    created = diff_object(deployment(), None)
    assert created.action == "create"
    assert "+kind: Deployment\n" in created.unified_diff
    pruned = diff_object(None, live_copy(deployment()))
    assert pruned.action == "prune"
    assert "-kind: Deployment\n" in pruned.unified_diff
    assert sync_status([created]) == sync_status([pruned]) == "OutOfSync"
    with pytest.raises(ValueError, match="desired or a live"):
        diff_object(None, None)


def test_changed_paths_escape_keys_and_notice_type_changes() -> None:
    a = {"metadata": {"annotations": {"example.com/a": "1"}}, "spec": {"flag": 1, "items": [1, 2]}}
    b = {"metadata": {"annotations": {"example.com/a": "2"}}, "spec": {"flag": True, "items": [1, 2, 3]}}
    assert changed_paths(a, b) == ("/metadata/annotations/example.com~1a", "/spec/flag", "/spec/items")


def test_json_pointer_rules_hide_differences_for_matching_objects_only() -> None:
    rule = IgnoreDifference(kind="Deployment", group="apps", json_pointers=("/spec/replicas",))
    desired, live = deployment(replicas=2), live_copy(deployment(replicas=7))
    assert diff_object(desired, live, ignore=[rule]).action == "unchanged"
    other = IgnoreDifference(kind="StatefulSet", group="apps", json_pointers=("/spec/replicas",))
    assert diff_object(desired, live, ignore=[other]).changed_paths == ("/spec/replicas",)
    named = IgnoreDifference(kind="Deployment", group="apps", name="api", json_pointers=("/spec/replicas",))
    assert diff_object(desired, live, ignore=[named]).action == "update"


def test_managed_fields_managers_rules_hide_fields_that_manager_owns() -> None:
    desired = deployment(replicas=2, image="nginx:1")
    live = live_copy(deployment(replicas=9, image="nginx:debug"))
    live["metadata"]["managedFields"] = [
        {
            "manager": "kubectl-edit",
            "operation": "Update",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {"f:replicas": {}}},
        }
    ]
    rule = IgnoreDifference(kind="Deployment", group="apps", managed_fields_managers=("kubectl-edit",))
    result = diff_object(desired, live, ignore=[rule])
    assert result.changed_paths == ("/spec/template/spec/containers/0/image",)
    assert "replicas" not in result.unified_diff


def secret(values: dict[str, str], *, plain: bool) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "creds", "namespace": "prod"},
    }
    if plain:
        obj["stringData"] = dict(values)
    else:
        obj["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in values.items()}
    return obj


secret_values = st.text(alphabet=SECRET_ALPHABET, min_size=4, max_size=24)


@st.composite
def secret_pairs(draw: st.DrawFn) -> tuple[dict[str, str], dict[str, str]]:
    """Desired and live Secret values for some keys; each live value is the same, new, or absent."""
    keys = draw(st.lists(st.sampled_from(SECRET_KEYS), min_size=1, unique=True))
    desired = {k: draw(secret_values) for k in keys}
    live: dict[str, str] = {}
    for key in keys:
        choice = draw(st.sampled_from(["same", "changed", "absent"]))
        if choice == "same":
            live[key] = desired[key]
        elif choice == "changed":
            live[key] = draw(secret_values.filter(desired[key].__ne__))
    return desired, live


def rendered(result: ObjectDiff) -> str:
    return result.unified_diff + "\n".join(result.changed_paths) + repr(result)


@settings(max_examples=200)
@given(secret_pairs(), st.booleans())
def test_masking_never_shows_secret_values(pair: tuple[dict[str, str], dict[str, str]], plain: bool) -> None:
    desired_values, live_values = pair
    result = diff_object(secret(desired_values, plain=plain), secret(live_values, plain=False))
    text = rendered(result)
    for value in [*desired_values.values(), *live_values.values()]:
        assert value not in text
        assert base64.b64encode(value.encode()).decode() not in text


@settings(max_examples=200)
@given(secret_pairs())
def test_changed_secret_values_always_show_as_changed(pair: tuple[dict[str, str], dict[str, str]]) -> None:
    desired_values, live_values = pair
    result = diff_object(secret(desired_values, plain=True), secret(live_values, plain=False))
    lines = result.unified_diff.splitlines()
    for key, value in desired_values.items():
        changed = live_values.get(key) != value
        assert (f"/data/{key}" in result.changed_paths) is changed
        removed = [line for line in lines if line.startswith(f"-  {key}: ")]
        added = [line for line in lines if line.startswith(f"+  {key}: ")]
        if changed:
            assert added and set(added[0].split(": ")[1]) == {"+"}
            if key in live_values:
                assert removed and removed[0].split(": ")[1] != added[0].split(": ")[1]
        else:
            assert not added and not removed
    assert (result.action == "unchanged") is (desired_values == live_values)


@settings(max_examples=100)
@given(secret_pairs(), st.data())
def test_masked_diff_depends_only_on_which_values_are_equal(
    pair: tuple[dict[str, str], dict[str, str]], data: st.DataObject
) -> None:
    desired_values, live_values = pair
    distinct = sorted(set(desired_values.values()) | set(live_values.values()))
    swapped = data.draw(st.lists(secret_values, min_size=len(distinct), max_size=len(distinct), unique=True))
    rename = dict(zip(distinct, swapped, strict=True))
    first = diff_object(secret(desired_values, plain=True), secret(live_values, plain=False))
    second = diff_object(
        secret({k: rename[v] for k, v in desired_values.items()}, plain=True),
        secret({k: rename[v] for k, v in live_values.items()}, plain=False),
    )
    assert first == second
