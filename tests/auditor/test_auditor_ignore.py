"""ignoreDifferences when applying: which fields are left out, and which ownership driftwarden gives up."""

from __future__ import annotations

import copy
from typing import Any

from auditor.application import IgnoreDifference, parse_application
from auditor.diff.ignore import applied_manifest, ignored_locations, release_patch
from auditor.diff.normalize import resolve_jq
from auditor.diff.objectdiff import diff_object

DESIRED: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "prod"},
    "spec": {
        "replicas": 2,
        "template": {
            "spec": {"containers": [{"name": "web", "image": "nginx:1.28"}, {"name": "log", "image": "x"}]}
        },
    },
}


def _live(replicas: int = 5, *, ours: dict[str, Any] | None = None) -> dict[str, Any]:
    live = copy.deepcopy(DESIRED)
    live["spec"]["replicas"] = replicas
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.27"
    live["metadata"]["resourceVersion"] = "42"
    ours = ours or {"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {}}}}}
    live["metadata"]["managedFields"] = [
        {"manager": "autoscaler", "operation": "Update", "subresource": "scale",
         "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}},
        {"manager": "driftwarden", "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": ours},
    ]  # fmt: skip
    return live


POINTER = IgnoreDifference(kind="Deployment", group="apps", json_pointers=("/spec/replicas",))
JQ = IgnoreDifference(kind="Deployment", group="apps", jq_path_expressions=(".spec.replicas",))
MANAGER = IgnoreDifference(kind="Deployment", group="apps", managed_fields_managers=("autoscaler",))


def test_an_ignored_field_the_live_object_has_is_left_out_of_what_is_applied() -> None:
    for rule in (POINTER, JQ, MANAGER):
        applied = applied_manifest(DESIRED, _live(), [rule])
        assert "replicas" not in applied["spec"], rule
        assert applied["spec"]["template"] == DESIRED["spec"]["template"]  # the rest is Git's


def test_on_create_the_ignored_field_comes_from_git() -> None:
    assert applied_manifest(DESIRED, None, [POINTER, JQ, MANAGER]) == DESIRED


def test_a_field_the_live_object_lacks_is_applied_from_git() -> None:
    live = _live()
    del live["spec"]["replicas"]
    assert applied_manifest(DESIRED, live, [POINTER])["spec"]["replicas"] == 2


def test_jq_paths_select_list_items_and_point_only_where_something_is() -> None:
    expression = '.spec.template.spec.containers[] | select(.name == "web") | .image'
    assert resolve_jq(DESIRED, expression) == [("spec", "template", "spec", "containers", 0, "image")]
    assert resolve_jq(DESIRED, ".spec.nothing") == []
    assert resolve_jq(DESIRED, ".spec.replicas.x") == []  # a type error points nowhere
    rule = IgnoreDifference(kind="Deployment", group="apps", jq_path_expressions=(expression,))
    applied = applied_manifest(DESIRED, _live(), [rule])
    assert applied["spec"]["template"]["spec"]["containers"][0] == {"name": "web"}
    assert ignored_locations(DESIRED, [rule]) == [("spec", "template", "spec", "containers", 0, "image")]


def test_jq_rules_are_ignored_by_the_diff_too() -> None:
    rule = IgnoreDifference(kind="Deployment", group="apps", jq_path_expressions=(".spec.replicas",))
    live = _live()
    live["spec"]["template"] = copy.deepcopy(DESIRED["spec"]["template"])
    assert diff_object(DESIRED, live, ignore=[rule]).in_sync
    assert not diff_object(DESIRED, live).in_sync


def test_driftwarden_gives_up_the_ignored_fields_it_owns() -> None:
    patch = release_patch(_live(), [POINTER])
    assert patch[0] == {"op": "test", "path": "/metadata/resourceVersion", "value": "42"}
    assert patch[1]["path"] == "/metadata/managedFields/1/fieldsV1"
    assert patch[1]["value"] == {"f:spec": {"f:template": {"f:spec": {"f:containers": {}}}}}


def test_nothing_to_give_up_means_no_patch() -> None:
    ours = {"f:spec": {"f:template": {"f:spec": {"f:containers": {}}}}}
    assert release_patch(_live(ours=ours), [POINTER]) == []
    assert release_patch(_live(), []) == []


def test_respect_ignore_differences_is_on_unless_a_sync_option_says_false() -> None:
    def policy(*options: str) -> bool:
        spec = {"source": {"repoURL": "x"}, "syncPolicy": {"syncOptions": list(options)}}
        obj = {"apiVersion": "driftwarden.io/v1alpha1", "kind": "Application",
               "metadata": {"name": "a", "namespace": "n"}, "spec": spec}  # fmt: skip
        return parse_application(obj).sync_policy.respect_ignore_differences

    assert policy()
    assert policy("RespectIgnoreDifferences=true")
    assert not policy("RespectIgnoreDifferences=false")
