"""ChangeSet: staging order, guarded pruning, shared resources."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.application import Automated, SyncPolicy
from auditor.diff.objectdiff import ObjectDiff
from auditor.objects import AppKey, is_owned_by, stamp
from auditor.sync.changeset import (
    STAGE_BOOTSTRAP,
    STAGE_CLUSTER,
    STAGE_NAMESPACED,
    STAGE_PRUNE_LAST,
    build_changeset,
    stage_of,
)
from driftwarden.contract import ANNOTATION_SYNC_OPTIONS, ANNOTATION_TRACKING_ID
from driftwarden.objectref import ObjectRef

APP = AppKey("dw", "web")
OTHER = AppKey("dw", "api")
AUTO_PRUNE = SyncPolicy(Automated(prune=True))
NO_PRUNE = SyncPolicy(Automated(prune=False))


def obj(api_version: str, kind: str, name: str, namespace: str = "") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": api_version, "kind": kind, "metadata": meta}


def owned(
    manifest: dict[str, Any], app: AppKey = APP, annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    out = stamp(manifest, app=app, guard_mode="enforce")
    out["metadata"]["annotations"].update(annotations or {})
    return out


def ref(manifest: dict[str, Any]) -> ObjectRef:
    return ObjectRef.from_manifest(manifest)


NS = obj("v1", "Namespace", "prod")
CRD = obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "widgets.example.com")
ROLE = obj("rbac.authorization.k8s.io/v1", "ClusterRole", "reader")
PC = obj("scheduling.k8s.io/v1", "PriorityClass", "high")
CM = obj("v1", "ConfigMap", "cfg", "prod")
DEPLOY = obj("apps/v1", "Deployment", "web", "prod")
SVC = obj("v1", "Service", "web", "prod")
WIDGET = obj("example.com/v1", "Widget", "w", "prod")


@pytest.mark.parametrize(
    ("manifest", "stage"),
    [
        (NS, STAGE_BOOTSTRAP),
        (CRD, STAGE_BOOTSTRAP),
        (ROLE, STAGE_CLUSTER),
        (PC, STAGE_CLUSTER),
        (obj("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "b"), STAGE_CLUSTER),
        (CM, STAGE_NAMESPACED),
        (DEPLOY, STAGE_NAMESPACED),
        (WIDGET, STAGE_NAMESPACED),
        (obj("example.com/v1", "Namespace", "not-core", "prod"), STAGE_NAMESPACED),
    ],
)
def test_stage_of(manifest: dict[str, Any], stage: int) -> None:
    assert stage_of(ref(manifest)) == stage


def test_actions_come_in_staged_kind_order() -> None:
    desired = [ref(m) for m in (WIDGET, DEPLOY, SVC, CM, ROLE, PC, CRD, NS)]
    changes = build_changeset(desired, [], app=APP, policy=AUTO_PRUNE)
    assert [a.ref.kind for a in changes.actions] == [
        "Namespace",
        "CustomResourceDefinition",
        "ClusterRole",
        "PriorityClass",
        "ConfigMap",
        "Service",
        "Deployment",
        "Widget",
    ]
    assert [len(stage) for stage in changes.stages()] == [2, 2, 4]
    assert all(a.type == "create" for a in changes.actions)
    assert changes.has_changes


def test_diffs_decide_create_update_unchanged() -> None:
    desired = [ref(CM), ref(DEPLOY), ref(SVC)]
    diffs = [
        ObjectDiff(ref(CM), "unchanged"),
        ObjectDiff(ref(DEPLOY), "update", ("/spec/replicas",), "..."),
        ObjectDiff(ref(SVC), "create"),
    ]
    live = [owned(CM), owned(DEPLOY)]
    changes = build_changeset(desired, live, app=APP, diffs=diffs, policy=NO_PRUNE)
    assert {a.ref.kind: a.type for a in changes.actions} == {
        "ConfigMap": "unchanged",
        "Deployment": "update",
        "Service": "create",
    }
    unchanged_only = build_changeset([ref(CM)], [owned(CM)], app=APP, diffs=diffs[:1], policy=NO_PRUNE)
    assert not unchanged_only.has_changes


def test_prunes_only_what_this_app_owns_and_left_git() -> None:
    copied = owned(CM)
    copied["metadata"]["name"] = "copied"
    live = [owned(DEPLOY), owned(SVC), owned(CM, OTHER), copied, obj("v1", "Secret", "unmarked", "prod")]
    changes = build_changeset([ref(DEPLOY)], live, app=APP, policy=AUTO_PRUNE)
    prunes = changes.of_type("prune")
    assert [a.ref.kind for a in prunes] == ["Service"]
    assert all(a.pruning for a in prunes)
    assert not changes.prune_refused


@pytest.mark.parametrize(
    ("policy", "requested", "expected"),
    [
        (AUTO_PRUNE, False, "prune"),
        (NO_PRUNE, False, "skip"),
        (SyncPolicy(), False, "skip"),
        (SyncPolicy(), True, "prune"),
        (NO_PRUNE, True, "prune"),
    ],
)
def test_pruning_needs_auto_prune_or_a_request(policy: SyncPolicy, requested: bool, expected: str) -> None:
    changes = build_changeset([ref(DEPLOY)], [owned(SVC)], app=APP, policy=policy, prune_requested=requested)
    (action,) = [a for a in changes.actions if a.pruning]
    assert action.type == expected
    if expected == "skip":
        assert "prune disabled" in action.reason


@pytest.mark.parametrize("options", ["Prune=false", "Delete=false,Prune=false", "Prune=False"])
def test_prune_false_objects_are_skipped_with_a_reason(options: str) -> None:
    keep = owned(SVC, annotations={ANNOTATION_SYNC_OPTIONS: options})
    changes = build_changeset([ref(DEPLOY)], [keep, owned(CM)], app=APP, policy=AUTO_PRUNE)
    assert {a.ref.kind: a.type for a in changes.actions if a.pruning} == {
        "Service": "skip",
        "ConfigMap": "prune",
    }
    assert "Prune=false" in changes.of_type("skip")[0].reason


def test_objects_being_deleted_are_not_pruned_again() -> None:
    dying = owned(SVC)
    dying["metadata"]["deletionTimestamp"] = "2024-05-01T00:00:00Z"
    (action,) = build_changeset([ref(DEPLOY)], [dying], app=APP, policy=AUTO_PRUNE).actions[1:]
    assert action.type == "skip" and "being deleted" in action.reason


def test_an_empty_render_prunes_nothing_unless_allow_empty() -> None:
    live = [owned(DEPLOY), owned(SVC)]
    refused = build_changeset([], live, app=APP, policy=AUTO_PRUNE)
    assert refused.prune_refused and "allowEmpty" in refused.prune_refused
    assert not refused.of_type("prune")
    assert all(a.type == "skip" and a.reason.startswith("prune refused") for a in refused.actions)
    manual = build_changeset([], live, app=APP, policy=SyncPolicy(), prune_requested=True)
    assert manual.prune_refused and not manual.of_type("prune")
    allowed = build_changeset([], live, app=APP, policy=SyncPolicy(Automated(prune=True, allow_empty=True)))
    assert not allowed.prune_refused and len(allowed.of_type("prune")) == 2
    nothing_to_prune = build_changeset([], [], app=APP, policy=AUTO_PRUNE)
    assert not nothing_to_prune.prune_refused and nothing_to_prune.actions == ()


@pytest.mark.parametrize("options", [(), ("PruneLast=true",)])
def test_prunes_come_after_every_apply_in_reverse_order(options: tuple[str, ...]) -> None:
    live = [owned(NS), owned(ROLE), owned(CM), owned(DEPLOY)]
    policy = SyncPolicy(Automated(prune=True), options)
    changes = build_changeset([ref(SVC), ref(CRD)], live, app=APP, policy=policy)
    assert [(a.ref.kind, a.type, a.stage) for a in changes.actions] == [
        ("CustomResourceDefinition", "create", STAGE_BOOTSTRAP),
        ("Service", "create", STAGE_NAMESPACED),
        ("Deployment", "prune", STAGE_PRUNE_LAST),
        ("ConfigMap", "prune", STAGE_PRUNE_LAST),
        ("ClusterRole", "prune", STAGE_PRUNE_LAST),
        ("Namespace", "prune", STAGE_PRUNE_LAST),
    ]
    # The apply stages hold no prune; the prunes are the rest, in the same (deletion) order.
    assert [[a.ref.kind for a in stage] for stage in changes.stages()] == [
        ["CustomResourceDefinition"],
        ["Service"],
    ]
    assert changes.prunes == changes.actions[2:]
    assert all(a.pruning for a in changes.prunes)


def test_shared_resources_are_reported_and_can_fail() -> None:
    theirs = owned(CM, OTHER)
    changes = build_changeset([ref(CM)], [theirs], app=APP, policy=AUTO_PRUNE)
    assert [(s.ref, s.owner) for s in changes.shared] == [(ref(CM), "dw/api")]
    assert changes.actions[0].type == "update"
    strict = SyncPolicy(Automated(prune=True), ("FailOnSharedResource=true",))
    refused = build_changeset([ref(CM)], [theirs], app=APP, policy=strict)
    assert refused.actions[0].type == "skip" and "dw/api" in refused.actions[0].reason
    assert not refused.actions[0].pruning


NAMES = ["a", "b", "c", "d", "e", "f"]
KINDS = [
    ("v1", "ConfigMap", "prod"),
    ("apps/v1", "Deployment", "prod"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", ""),
]


@st.composite
def live_objects(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Live objects owned by this app, by another app, by a copied id, or by nobody."""
    out = []
    for name in draw(st.lists(st.sampled_from(NAMES), unique=True)):
        api_version, kind, namespace = draw(st.sampled_from(KINDS))
        manifest = obj(api_version, kind, name, namespace)
        marker = draw(st.sampled_from(["mine", "theirs", "copied", "label-only", "garbage"]))
        if marker == "mine":
            manifest = owned(manifest)
        elif marker == "theirs":
            manifest = owned(manifest, OTHER)
        elif marker == "copied":
            manifest = owned(obj(api_version, kind, name + "-original", namespace))
            manifest["metadata"]["name"] = name
        elif marker == "label-only":
            manifest = owned(manifest)
            del manifest["metadata"]["annotations"][ANNOTATION_TRACKING_ID]
        else:
            manifest = owned(manifest, annotations={ANNOTATION_TRACKING_ID: draw(st.text(max_size=30))})
        out.append(manifest)
    return out


policies = st.builds(
    SyncPolicy,
    st.one_of(st.none(), st.builds(Automated, st.booleans(), st.booleans(), st.booleans())),
    st.lists(st.sampled_from(["PruneLast=true", "FailOnSharedResource=true", "CreateNamespace=true"])).map(
        tuple
    ),
)


@settings(max_examples=200)
@given(live_objects(), st.data(), policies, st.booleans())
def test_never_prunes_what_another_app_owns(
    live: list[dict[str, Any]], data: st.DataObject, policy: SyncPolicy, requested: bool
) -> None:
    refs = [ref(m) for m in live]
    desired = data.draw(st.lists(st.sampled_from(refs), unique=True)) if refs else []
    before = copy.deepcopy(live)
    changes = build_changeset(desired, live, app=APP, policy=policy, prune_requested=requested)
    assert live == before
    by_key = {ref(m).key: m for m in live}
    for action in changes.of_type("prune"):
        assert action.ref.key not in {r.key for r in desired}
        assert is_owned_by(by_key[action.ref.key], app=APP)
    expected = {r.key for r in refs if r not in desired and is_owned_by(by_key[r.key], app=APP)}
    assert {a.ref.key for a in changes.actions if a.pruning} == expected
    assert [a.stage for a in changes.actions] == sorted(a.stage for a in changes.actions)


def _live(count: int) -> list[dict[str, Any]]:
    return [owned(obj("v1", "ConfigMap", f"cm-{i}", "prod")) for i in range(count)]


HALF = SyncPolicy(Automated(prune=True, prune_ratio=0.5))


def test_an_automated_sync_refuses_to_prune_more_than_the_prune_ratio() -> None:
    live = _live(10)
    keep = [ref(m) for m in live[:4]]  # six of ten left Git
    assert len(build_changeset(keep, live, app=APP, policy=AUTO_PRUNE).of_type("prune")) == 6  # off: default
    refused = build_changeset(keep, live, app=APP, policy=HALF)
    assert refused.prune_refused == (
        "this revision would prune 6 of the Application's 10 resources, more than "
        "syncPolicy.automated.pruneRatio (0.5) allows; raise it, or sync with prune by hand"
    )
    assert not refused.of_type("prune") and len(refused.of_type("skip")) == 6
    half = build_changeset([ref(m) for m in live[:5]], live, app=APP, policy=HALF)
    assert not half.prune_refused and len(half.of_type("prune")) == 5
    looser = SyncPolicy(Automated(prune=True, prune_ratio=0.6))
    assert not build_changeset(keep, live, app=APP, policy=looser).prune_refused
    off = SyncPolicy(Automated(prune=True, prune_ratio=1))
    assert len(build_changeset(keep[:1], live, app=APP, policy=off).of_type("prune")) == 9


def test_the_prune_ratio_counts_what_git_wants_so_renames_pass_and_people_may_prune() -> None:
    live = _live(3)
    renamed = [ref(obj("v1", "ConfigMap", f"new-{i}", "prod")) for i in range(3)]
    assert len(build_changeset(renamed, live, app=APP, policy=HALF).of_type("prune")) == 3
    by_hand = build_changeset([ref(live[0])], live, app=APP, policy=HALF, prune_requested=True)
    assert not by_hand.prune_refused and len(by_hand.of_type("prune")) == 2
    options = {ANNOTATION_SYNC_OPTIONS: "Prune=false"}  # objects that are kept are not counted as pruned
    kept = [owned(obj("v1", "ConfigMap", f"cm-{i}", "prod"), annotations=options) for i in range(3)]
    assert not build_changeset([ref(live[0])], kept, app=APP, policy=HALF).prune_refused
