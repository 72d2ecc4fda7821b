"""Object identity: refs, tracking ids, stamping, namespace fill and per-object sync options."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from auditor.objects import (
    WELL_KNOWN_CLUSTER_SCOPED,
    AppKey,
    fill_namespace,
    is_owned_by,
    object_sync_options,
    parse_sync_options,
    prune_disabled,
    stamp,
    tracking_id,
    tracking_owner,
)
from driftwarden.contract import ANNOTATION_GUARD, ANNOTATION_SYNC_OPTIONS, ANNOTATION_TRACKING_ID, LABEL_APP
from driftwarden.errors import PermanentError
from driftwarden.objectref import ObjectRef

APP = AppKey("driftwarden-system", "web")


def manifest(
    api_version: str, kind: str, name: str, namespace: str | None = None, **meta: Any
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, **meta}
    if namespace is not None:
        metadata["namespace"] = namespace
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata}


@pytest.mark.parametrize(
    ("obj", "expected", "text"),
    [
        (
            manifest("v1", "ConfigMap", "cfg", "prod"),
            ObjectRef("", "v1", "ConfigMap", "prod", "cfg"),
            "ConfigMap prod/cfg",
        ),
        (
            manifest("apps/v1", "Deployment", "web", "prod"),
            ObjectRef("apps", "v1", "Deployment", "prod", "web"),
            "Deployment.apps prod/web",
        ),
        (
            manifest("rbac.authorization.k8s.io/v1", "ClusterRole", "reader"),
            ObjectRef("rbac.authorization.k8s.io", "v1", "ClusterRole", "", "reader"),
            "ClusterRole.rbac.authorization.k8s.io reader",
        ),
    ],
)
def test_object_ref(obj: dict[str, Any], expected: ObjectRef, text: str) -> None:
    ref = ObjectRef.from_manifest(obj)
    assert ref == expected
    assert str(ref) == text
    assert ref.api_version == obj["apiVersion"]


@pytest.mark.parametrize(
    ("obj", "missing"),
    [
        ({"kind": "ConfigMap", "metadata": {"name": "x"}}, "apiVersion"),
        ({"apiVersion": "v1", "metadata": {"name": "x"}}, "kind"),
        ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}, "metadata.name"),
        ({"apiVersion": "v1", "kind": "ConfigMap"}, "metadata.name"),
    ],
)
def test_object_ref_requires_identity(obj: dict[str, Any], missing: str) -> None:
    with pytest.raises(PermanentError, match=missing):
        ObjectRef.from_manifest(obj)


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (manifest("apps/v1", "Deployment", "web", "prod"), "driftwarden-system/web:apps/Deployment:prod/web"),
        (manifest("v1", "ConfigMap", "cfg", "prod"), "driftwarden-system/web:/ConfigMap:prod/cfg"),
        (
            manifest("rbac.authorization.k8s.io/v1", "ClusterRole", "reader"),
            "driftwarden-system/web:rbac.authorization.k8s.io/ClusterRole:/reader",
        ),
    ],
)
def test_tracking_id_format(obj: dict[str, Any], expected: str) -> None:
    assert str(tracking_id(ObjectRef.from_manifest(obj), app=APP)) == expected


def test_stamp_adds_contract_markers_without_mutating() -> None:
    original = manifest("apps/v1", "Deployment", "web", "prod", labels={"tier": "front"})
    before = copy.deepcopy(original)
    stamped = stamp(original, app=APP, guard_mode="warn")
    assert original == before
    meta = stamped["metadata"]
    assert meta["labels"] == {"tier": "front", LABEL_APP: "web"}
    assert meta["annotations"][ANNOTATION_TRACKING_ID] == "driftwarden-system/web:apps/Deployment:prod/web"
    assert meta["annotations"][ANNOTATION_GUARD] == "warn"
    owner = tracking_owner(stamped)
    assert owner is not None and owner.app == str(APP)


def test_stamp_rejects_bad_mode_and_long_names() -> None:
    obj = manifest("v1", "ConfigMap", "cfg", "prod")
    with pytest.raises(PermanentError, match="guard mode"):
        stamp(obj, app=APP, guard_mode="block")
    with pytest.raises(PermanentError, match="63"):
        stamp(obj, app=AppKey("ns", "a" * 64), guard_mode="enforce")


def test_ownership_needs_the_tracking_id_of_this_app_and_this_object() -> None:
    obj = stamp(manifest("v1", "ConfigMap", "cfg", "prod"), app=APP, guard_mode="enforce")
    assert is_owned_by(obj, app=APP)
    assert not is_owned_by(obj, app=AppKey("driftwarden-system", "other"))
    copied = copy.deepcopy(obj)
    copied["metadata"]["name"] = "copy"
    assert not is_owned_by(copied, app=APP), "a copied annotation is not ownership"
    label_only = manifest("v1", "ConfigMap", "cfg", "prod", labels={LABEL_APP: "web"})
    assert not is_owned_by(label_only, app=APP)
    garbage = manifest("v1", "ConfigMap", "cfg", "prod", annotations={ANNOTATION_TRACKING_ID: "nonsense"})
    assert not is_owned_by(garbage, app=APP)


@pytest.mark.parametrize(
    ("obj", "expected_namespace"),
    [
        (manifest("apps/v1", "Deployment", "web"), "prod"),
        (manifest("apps/v1", "Deployment", "web", "other"), "other"),
        (manifest("v1", "Namespace", "prod", "prod"), None),
        (manifest("rbac.authorization.k8s.io/v1", "ClusterRole", "r", "prod"), None),
        (manifest("apiextensions.k8s.io/v1", "CustomResourceDefinition", "x.example.com"), None),
    ],
)
def test_fill_namespace(obj: dict[str, Any], expected_namespace: str | None) -> None:
    before = copy.deepcopy(obj)
    filled = fill_namespace(obj, "prod")
    assert obj == before
    assert filled["metadata"].get("namespace") == expected_namespace


def test_fill_namespace_with_a_predicate_and_with_no_default() -> None:
    widget = manifest("example.com/v1", "Widget", "w")
    assert fill_namespace(widget, "prod")["metadata"]["namespace"] == "prod"
    scoped = fill_namespace(widget, "prod", cluster_scoped=lambda group, kind: kind == "Widget")
    assert "namespace" not in scoped["metadata"]
    assert "namespace" not in fill_namespace(widget, "")["metadata"]


@pytest.mark.parametrize(
    "kind",
    [
        "Namespace",
        "CustomResourceDefinition",
        "ClusterRole",
        "ClusterRoleBinding",
        "PersistentVolume",
        "StorageClass",
        "PriorityClass",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
        "APIService",
        "IngressClass",
        "RuntimeClass",
    ],
)
def test_well_known_cluster_scoped_kinds(kind: str) -> None:
    assert kind in {k for _, k in WELL_KNOWN_CLUSTER_SCOPED}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Prune=false", {"Prune": "false"}),
        ("Prune=false,Delete=false", {"Prune": "false", "Delete": "false"}),
        (" Prune = false , Delete=false ", {"Prune": "false", "Delete": "false"}),
        ("Prune", {}),
        ("", {}),
        (["CreateNamespace=true", "PruneLast=true"], {"CreateNamespace": "true", "PruneLast": "true"}),
    ],
)
def test_parse_sync_options(value: str | list[str], expected: dict[str, str]) -> None:
    assert parse_sync_options(value) == expected


@pytest.mark.parametrize(
    ("annotation", "disabled"),
    [
        ("Prune=false", True),
        ("Prune=False", True),
        ("Delete=false, Prune=false", True),
        ("Delete=false", False),
        ("Prune=true", False),
        (None, False),
    ],
)
def test_prune_disabled(annotation: str | None, disabled: bool) -> None:
    annotations = {} if annotation is None else {ANNOTATION_SYNC_OPTIONS: annotation}
    obj = manifest("v1", "ConfigMap", "cfg", "prod", annotations=annotations)
    assert prune_disabled(obj) is disabled
    assert ("Prune" in object_sync_options(obj)) is (annotation is not None and "Prune" in annotation)
