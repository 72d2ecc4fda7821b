"""The pure part of strict self-heal: which managers are taken over, and the managedFields it writes."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from auditor.sync.takeover import kubectl_managers, merge_fields, takeover_patch


def entry(manager: str, operation: str, fields: dict[str, Any], **extra: str) -> dict[str, Any]:
    return {"manager": manager, "operation": operation, "apiVersion": "v1", "fieldsType": "FieldsV1",
            "fieldsV1": fields, **extra}  # fmt: skip


OURS = entry("driftwarden", "Apply", {"f:data": {"f:color": {}}})
EDIT = entry("kubectl-edit", "Update", {"f:data": {"f:extra": {}}, "f:metadata": {"f:labels": {"f:x": {}}}})
HPA = entry("kube-controller-manager", "Update", {"f:spec": {"f:replicas": {}}})
STATUS = entry("kubectl", "Update", {"f:status": {}}, subresource="status")


def obj(*entries: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"resourceVersion": "7", "managedFields": list(entries)},
    }


def test_only_kubectl_updates_of_the_main_resource_are_taken_over() -> None:
    assert kubectl_managers(obj(OURS, EDIT, HPA, STATUS)) == ("kubectl-edit",)
    assert kubectl_managers(obj(OURS, HPA)) == ()
    assert takeover_patch(obj(OURS, HPA)) == []


def test_the_patch_merges_kubectl_fields_into_our_apply_entry_and_keeps_the_rest() -> None:
    test, replace = takeover_patch(obj(OURS, EDIT, HPA, STATUS))
    assert test == {"op": "test", "path": "/metadata/resourceVersion", "value": "7"}  # no lost update
    entries = replace["value"]
    assert [e["manager"] for e in entries] == ["kube-controller-manager", "kubectl", "driftwarden"]
    ours = entries[-1]
    assert ours["operation"] == "Apply"
    assert ours["fieldsV1"] == {
        "f:data": {"f:color": {}, "f:extra": {}},
        "f:metadata": {"f:labels": {"f:x": {}}},
    }


KEYS = st.sampled_from(["f:a", "f:b", "k:{}", "."])
tries = st.recursive(st.just({}), lambda inner: st.dictionaries(KEYS, inner, max_size=3), max_leaves=10)


@given(tries, tries)
def test_merge_is_a_union(left: dict[str, Any], right: dict[str, Any]) -> None:
    merged = merge_fields(left, right)
    assert merge_fields(merged, left) == merged and merge_fields(merged, right) == merged
    assert set(merged) == set(left) | set(right)
