"""The pure REST-mapping table (auditor.kube.restmap) built from discovery documents."""

from __future__ import annotations

import pytest

from auditor.kube.restmap import (
    ApiResource,
    build_table,
    parse_core_versions,
    parse_group_list,
    parse_resource_list,
    split_group_version,
)

CORE = {"kind": "APIVersions", "versions": ["v1"]}
GROUPS = {
    "kind": "APIGroupList",
    "groups": [
        {
            "name": "autoscaling",
            "versions": [{"groupVersion": "autoscaling/v1", "version": "v1"},
                         {"groupVersion": "autoscaling/v2", "version": "v2"}],
            "preferredVersion": {"groupVersion": "autoscaling/v2", "version": "v2"},
        },
        {"name": "metrics.example.com", "versions": [{"version": "v1beta1"}],
         "preferredVersion": {"version": "v1beta1"}},
        {"name": "", "versions": [{"version": "v1"}]},
    ],
}  # fmt: skip
LISTS = {
    "v1": {
        "groupVersion": "v1",
        "resources": [
            {"name": "pods", "kind": "Pod", "namespaced": True, "verbs": ["get", "list"]},
            {"name": "pods/status", "kind": "Pod", "namespaced": True, "verbs": ["get"]},
            {"name": "namespaces", "kind": "Namespace", "namespaced": False, "verbs": ["get"]},
        ],
    },
    "autoscaling/v1": {
        "groupVersion": "autoscaling/v1",
        "resources": [
            {"name": "horizontalpodautoscalers", "kind": "HorizontalPodAutoscaler", "namespaced": True},
            {"name": "legacythings", "kind": "LegacyThing", "namespaced": True},
        ],
    },
    "autoscaling/v2": {
        "groupVersion": "autoscaling/v2",
        "resources": [{"name": "horizontalpodautoscalers", "kind": "HorizontalPodAutoscaler",
                       "namespaced": True}],
    },
}  # fmt: skip


def test_split_group_version() -> None:
    assert split_group_version("apps/v1") == ("apps", "v1")
    assert split_group_version("v1") == ("", "v1")


def test_groups_put_the_preferred_version_first_and_skip_nameless_groups() -> None:
    groups = parse_group_list(GROUPS)
    assert [(g.name, g.versions) for g in groups] == [
        ("autoscaling", ("v2", "v1")),
        ("metrics.example.com", ("v1beta1",)),
    ]
    assert groups[0].preferred == "v2"


def test_subresources_are_not_resources() -> None:
    found = parse_resource_list(LISTS["v1"])
    assert [r.plural for r in found] == ["pods", "namespaces"]
    assert found[0] == ApiResource("", "v1", "Pod", "pods", True, frozenset({"get", "list"}))
    assert found[0].api_version == "v1"


def test_find_prefers_the_preferred_version_but_finds_kinds_only_in_older_ones() -> None:
    table = build_table([parse_core_versions(CORE), *parse_group_list(GROUPS)], LISTS)
    hpa = table.find("autoscaling", "HorizontalPodAutoscaler")
    assert hpa is not None and hpa.version == "v2" and hpa.api_version == "autoscaling/v2"
    pinned = table.find("autoscaling", "HorizontalPodAutoscaler", version="v1")
    assert pinned is not None and pinned.version == "v1"
    legacy = table.find("autoscaling", "LegacyThing")
    assert legacy is not None and legacy.version == "v1"
    assert table.find("autoscaling", "LegacyThing", version="v2") is None
    assert table.find("apps", "Deployment") is None


def test_scope_and_failures() -> None:
    table = build_table(
        [parse_core_versions(CORE), *parse_group_list(GROUPS)], LISTS,
        failed={"metrics.example.com/v1beta1": "503 ServiceUnavailable"},
    )  # fmt: skip
    assert table.is_cluster_scoped("", "Namespace") is True
    assert table.is_cluster_scoped("", "Pod") is False
    assert table.is_cluster_scoped("", "Nope") is None
    assert table.failure_for("metrics.example.com") == "503 ServiceUnavailable"
    assert table.failure_for("metrics.example.com", "v1beta1") == "503 ServiceUnavailable"
    assert table.failure_for("autoscaling") is None
    assert table.group_versions() == ("v1", "autoscaling/v2", "autoscaling/v1", "metrics.example.com/v1beta1")


def test_core_discovery_without_versions_is_an_error() -> None:
    with pytest.raises(ValueError, match="no versions"):
        parse_core_versions({"versions": []})
