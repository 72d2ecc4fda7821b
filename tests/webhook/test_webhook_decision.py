"""The decision rules of docs/design.md, as a table, plus modes, messages, scale, Secrets and profiles."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.webhook.conftest import BREAKGLASS_GROUP, BREAKGLASS_USER
from tests.webhook.reviews import (
    AUDITOR,
    changed,
    container,
    deployment,
    fixture,
    fixture_request,
    request,
    secret,
    update,
)
from webhook.admission.decision import Decision, decide
from webhook.admission.messages import render_fields
from webhook.admission.request import AdmissionRequest, parse_admission_review
from webhook.admission.response import build_response
from webhook.admission.settings import DecisionSettings, make_settings

NAMESPACE_CONTROLLER = "system:serviceaccount:kube-system:namespace-controller"
GARBAGE_COLLECTOR = "system:serviceaccount:kube-system:generic-garbage-collector"
TRACKING = "driftwarden.io/tracking-id"


def replicas(n: int) -> Callable[[dict[str, Any]], None]:
    return lambda o: o["spec"].update(replicas=n)


def edit(mutate: Callable[[dict[str, Any]], object], **kwargs: Any) -> AdmissionRequest:
    """An UPDATE of the applied Deployment, edited by ``mutate``."""
    return update(changed(deployment(), mutate), **kwargs)


def unmanaged() -> dict[str, Any]:
    return changed(deployment(), lambda o: o["metadata"]["annotations"].pop(TRACKING))


def fresh() -> dict[str, Any]:
    """The applied Deployment as a CREATE would carry it (no server-set metadata)."""
    obj = deployment()
    for key in ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation"):
        obj["metadata"].pop(key)
    obj.pop("status")
    return obj


def forge_entry(o: dict[str, Any]) -> None:
    o["metadata"]["labels"]["team"] = "web"
    o["metadata"]["managedFields"].append(
        {
            "apiVersion": "apps/v1",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:labels": {"f:team": {}}}},
            "manager": "driftwarden",
            "operation": "Update",
            "time": "2026-11-27T21:00:00Z",
        }
    )


def with_owned_finalizer(o: dict[str, Any]) -> None:
    o["metadata"]["finalizers"] = ["example.com/protect"]
    fields = o["metadata"]["managedFields"][0]["fieldsV1"]["f:metadata"]
    fields["f:finalizers"] = {".": {}, 'v:"example.com/protect"': {}}


def terminating(o: dict[str, Any]) -> None:
    with_owned_finalizer(o)
    o["metadata"]["deletionTimestamp"] = "2026-11-27T21:00:00Z"


def no_managed_fields(o: dict[str, Any]) -> None:
    o["metadata"]["managedFields"] = [
        e for e in o["metadata"]["managedFields"] if e["manager"] != "driftwarden"
    ]


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[], AdmissionRequest]
    allowed: bool
    reason: str
    violation: bool = False
    fields: frozenset[str] | None = None
    strict: bool = False


CASES = [
    # 1. not managed → allow, fast
    Case("unmanaged", lambda: update(changed(unmanaged(), replicas(9)), old=unmanaged()), True, "unmanaged"),
    Case(
        "copied-tracking-id-on-replicaset",
        lambda: update(
            changed(deployment(), lambda o: (o.update(kind="ReplicaSet"), o["spec"].update(replicas=1))),
            old=changed(deployment(), lambda o: o.update(kind="ReplicaSet")),
        ),
        True,
        "unmanaged",
    ),
    # No oldObject (never sent by an API server): a marker on the new object is then a claim.
    Case(
        "old-object-missing",
        lambda: request(operation="UPDATE", new=deployment()),
        False,
        "spoofed-marker",
        True,
    ),
    Case(
        "old-object-missing-unmarked",
        lambda: request(operation="UPDATE", new=unmanaged()),
        True,
        "unmanaged",
    ),
    # 2. identities
    Case("gitops-identity", lambda: edit(replicas(5), user=AUDITOR), True, "gitops-identity"),
    Case(
        "breakglass-user",
        lambda: edit(replicas(5), user=BREAKGLASS_USER),
        True,
        "breakglass",
        True,
        frozenset({"spec.replicas"}),
    ),
    Case(
        "breakglass-group",
        lambda: edit(replicas(5), groups=[BREAKGLASS_GROUP, "system:authenticated"]),
        True,
        "breakglass",
        True,
    ),
    Case(
        "namespace-controller-delete",
        lambda: request(operation="DELETE", old=deployment(), user=NAMESPACE_CONTROLLER),
        True,
        "exempt",
    ),
    Case(
        "garbage-collector-delete",
        lambda: request(operation="DELETE", old=deployment(), user=GARBAGE_COLLECTOR),
        True,
        "exempt",
    ),
    Case(
        "namespace-controller-update-is-not-exempt",
        lambda: edit(replicas(5), user=NAMESPACE_CONTROLLER),
        False,
        "owned-fields-changed",
        True,
    ),
    # 3. UPDATE: changed paths ∩ Git-owned paths
    Case(
        "kubectl-edit",
        lambda: fixture_request("review-update-kubectl-edit.json"),
        False,
        "owned-fields-changed",
        True,
        frozenset({"spec.replicas", "spec.template.spec.containers[name=web].image"}),
    ),
    Case(
        "rollout-restart",
        lambda: fixture_request("review-update-rollout-restart.json"),
        True,
        "no-owned-fields",
    ),
    Case(
        "rollout-restart-strict",
        lambda: fixture_request("review-update-rollout-restart.json"),
        False,
        "strict",
        True,
        frozenset({"spec.template.metadata.annotations"}),
        strict=True,
    ),
    Case(
        "controller-bookkeeping-allowed-when-strict",
        lambda: edit(
            lambda o: o["metadata"]["annotations"].update({"deployment.kubernetes.io/revision": "2"}),
            user="system:serviceaccount:kube-system:deployment-controller",
        ),
        True,
        "no-owned-fields",
        strict=True,
    ),
    Case(
        "same-edit-by-a-person-when-strict",
        lambda: edit(
            lambda o: o["metadata"]["annotations"].update({"deployment.kubernetes.io/revision": "2"})
        ),
        False,
        "strict",
        True,
        frozenset({'metadata.annotations["deployment.kubernetes.io/revision"]'}),
        strict=True,
    ),
    Case(
        "controller-changing-git-owned-field",
        lambda: edit(replicas(1), user="system:serviceaccount:kube-system:deployment-controller"),
        False,
        "owned-fields-changed",
        True,
    ),
    Case(
        "unowned-label",
        lambda: edit(lambda o: o["metadata"]["labels"].update(team="x")),
        True,
        "no-owned-fields",
    ),
    Case(
        "sidecar-added",
        lambda: edit(
            lambda o: o["spec"]["template"]["spec"]["containers"].append({"name": "proxy", "image": "envoy"})
        ),
        True,
        "no-owned-fields",
    ),
    Case(
        "container-removed",
        lambda: edit(lambda o: o["spec"]["template"]["spec"]["containers"].pop(0)),
        False,
        "owned-fields-changed",
        True,
        frozenset({"spec.template.spec.containers[name=web]"}),
    ),
    Case(
        "env-value",
        lambda: edit(lambda o: container(o)["env"][0].update(value="debug")),
        False,
        "owned-fields-changed",
        True,
        frozenset({"spec.template.spec.containers[name=web].env[name=LOG_LEVEL].value"}),
    ),
    Case(
        "atomic-selector",
        lambda: edit(lambda o: o["spec"]["selector"]["matchLabels"].update(app="other")),
        False,
        "owned-fields-changed",
        True,
        frozenset({"spec.selector.matchLabels.app"}),
    ),
    Case("no-op-update", lambda: edit(lambda o: None), True, "no-owned-fields"),
    Case(
        "status-and-server-metadata-ignored",
        lambda: edit(lambda o: (o["status"].update(replicas=1), o["metadata"].update(resourceVersion="9"))),
        True,
        "no-owned-fields",
        strict=True,
    ),
    # The stamp is the mutating webhook's alone (issue 13): one a user writes is forged, even when it
    # changes nothing else. (This case used to expect "allowed": its point, that the webhook's own stamp is
    # never drift, is kept in test_webhook_integrity.py::test_the_webhooks_own_stamp_is_no_drift.)
    Case(
        "drift-stamp-forged-even-when-strict",
        lambda: edit(lambda o: o["metadata"]["annotations"].update({"driftwarden.io/drift": "{}"})),
        False,
        "stamp-forged",
        True,
        frozenset({'metadata.annotations["driftwarden.io/drift"]'}),
        strict=True,
    ),
    Case(
        "ownership-unknown",
        lambda: update(
            changed(deployment(), lambda o: (no_managed_fields(o), replicas(5)(o))),
            old=changed(deployment(), no_managed_fields),
        ),
        False,
        "ownership-unknown",
        True,
        frozenset({"spec.replicas"}),
    ),
    Case(
        "ownership-unknown-metadata-allowed",
        lambda: update(
            changed(deployment(), lambda o: (no_managed_fields(o), o["metadata"]["labels"].update(team="x"))),
            old=changed(deployment(), no_managed_fields),
        ),
        True,
        "no-owned-fields",
    ),
    Case(
        "owned-finalizer-removed",
        lambda: update(
            changed(deployment(), lambda o: (with_owned_finalizer(o), o["metadata"].update(finalizers=[]))),
            old=changed(deployment(), with_owned_finalizer),
        ),
        False,
        "owned-fields-changed",
        True,
    ),
    Case(
        "finalizer-removed-while-terminating",
        lambda: update(
            changed(deployment(), lambda o: (terminating(o), o["metadata"].update(finalizers=[]))),
            old=changed(deployment(), terminating),
        ),
        True,
        "no-owned-fields",
    ),
    # markers and managedFields entries
    Case(
        "tracking-annotation-removed",
        lambda: edit(lambda o: o["metadata"]["annotations"].pop(TRACKING)),
        False,
        "marker-removed",
        True,
        frozenset({'metadata.annotations["driftwarden.io/tracking-id"]'}),
    ),
    Case(
        "app-label-changed",
        lambda: edit(lambda o: o["metadata"]["labels"].update({"driftwarden.io/app": "other"})),
        False,
        "marker-removed",
        True,
        frozenset({'metadata.labels["driftwarden.io/app"]'}),
    ),
    Case(
        "guard-switched-off",
        lambda: edit(lambda o: o["metadata"]["annotations"].update({"driftwarden.io/guard": "off"})),
        False,
        "marker-removed",
        True,
    ),
    Case(
        "manager-entry-removed",
        lambda: edit(lambda o: o["metadata"]["managedFields"].pop(0)),
        False,
        "manager-entry-removed",
        True,
        frozenset({"metadata.managedFields[manager=driftwarden]"}),
    ),
    Case("manager-entry-forged", lambda: edit(forge_entry), False, "manager-entry-spoofed", True),
    # 4. DELETE, CREATE, subresources
    Case("delete", lambda: request(operation="DELETE", old=deployment()), False, "delete-managed", True),
    Case(
        "delete-by-auditor",
        lambda: request(operation="DELETE", old=deployment(), user=AUDITOR),
        True,
        "gitops-identity",
    ),
    Case(
        "create-spoofed",
        lambda: request(operation="CREATE", new=fresh()),
        False,
        "spoofed-marker",
        True,
        frozenset(
            {
                'metadata.annotations["driftwarden.io/tracking-id"]',
                'metadata.annotations["driftwarden.io/guard"]',
                'metadata.labels["driftwarden.io/app"]',
            }
        ),
    ),
    Case(
        "create-spoof-cannot-switch-guard-off",
        lambda: request(
            operation="CREATE",
            new=changed(
                fresh(), lambda o: o["metadata"]["annotations"].update({"driftwarden.io/guard": "off"})
            ),
        ),
        False,
        "spoofed-marker",
        True,
    ),
    Case(
        "create-by-auditor",
        lambda: request(operation="CREATE", new=fresh(), user=AUDITOR),
        True,
        "gitops-identity",
    ),
    Case(
        "create-with-foreign-tracking-id",
        lambda: request(
            operation="CREATE",
            new=changed(fresh(), lambda o: o["metadata"].update(namespace="staging")),
            namespace="staging",
        ),
        True,
        "unmanaged",
    ),
    Case(
        "update-claims-unmanaged-object",
        lambda: update(deployment(), old=unmanaged()),
        False,
        "spoofed-marker",
        True,
    ),
    Case(
        "status-subresource",
        lambda: edit(lambda o: o["status"].update(replicas=0), sub_resource="status"),
        True,
        "status-subresource",
    ),
    Case(
        "connect",
        lambda: request(
            operation="CONNECT",
            new={"kind": "PodExecOptions", "apiVersion": "v1", "command": ["sh"]},
            sub_resource="exec",
            kind=("", "v1", "PodExecOptions"),
            resource=("", "v1", "pods"),
        ),
        True,
        "connect",
    ),
    Case(
        "other-subresource-checked-like-update",
        lambda: edit(lambda o: container(o).update(image="x"), sub_resource="resize"),
        False,
        "owned-fields-changed",
        True,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rules(case: Case, settings: DecisionSettings) -> None:
    if case.strict:
        settings = dataclasses.replace(settings, strict=True)
    decision = decide(case.build(), settings)
    assert (decision.allowed, decision.reason, decision.violation) == (
        case.allowed,
        case.reason,
        case.violation,
    )
    if case.fields is not None:
        assert set(decision.fields) >= case.fields
    if not decision.allowed:
        assert decision.message and decision.mode == "enforce"


def test_denial_names_object_fields_and_application(settings: DecisionSettings) -> None:
    decision = decide(fixture_request("review-update-kubectl-edit.json"), settings)
    assert decision.app == "driftwarden-system/web-app"
    for part in (
        "Deployment production/web",
        "spec.replicas",
        "containers[name=web].image",
        "driftwarden-system/web-app",
    ):
        assert part in decision.message
    response = build_response("u1", decision)["response"]
    assert response["status"] == {
        "code": 403,
        "reason": "Forbidden",
        "status": "Failure",
        "message": decision.message,
    }
    assert response["auditAnnotations"]["decision"] == "denied"
    assert (
        response["auditAnnotations"]["fields"]
        == "spec.replicas, spec.template.spec.containers[name=web].image"
    )


def guarded(mode: str) -> dict[str, Any]:
    return changed(
        deployment(), lambda o: o["metadata"]["annotations"].update({"driftwarden.io/guard": mode})
    )


@pytest.mark.parametrize(
    ("mode", "allowed", "warned", "verdict"),
    [
        ("enforce", False, False, "denied"),
        ("warn", True, True, "warned"),
        ("off", True, False, "off"),
        (" WARN ", True, True, "warned"),
    ],
)
def test_mode_comes_from_the_old_object(
    mode: str, allowed: bool, warned: bool, verdict: str, settings: DecisionSettings
) -> None:
    decision = decide(update(changed(guarded(mode), replicas(7)), old=guarded(mode)), settings)
    assert decision.allowed is allowed
    assert decision.violation
    assert bool(decision.warnings) is warned
    assert decision.audit_annotations["decision"] == verdict
    assert all(len(w) < 120 for w in decision.warnings)
    if warned:
        assert any("spec.replicas" in w for w in decision.warnings)


def test_default_mode_applies_without_annotation_or_with_a_bad_one() -> None:
    warn = make_settings(default_mode="warn")
    no_guard = changed(deployment(), lambda o: o["metadata"]["annotations"].pop("driftwarden.io/guard"))
    assert decide(update(changed(no_guard, replicas(2)), old=no_guard), warn).mode == "warn"
    assert decide(update(changed(guarded("bogus"), replicas(2)), old=guarded("bogus")), warn).mode == "warn"


def test_create_annotation_can_only_make_the_guard_stricter() -> None:
    warn = make_settings(default_mode="warn")
    strict_new = changed(
        fresh(), lambda o: o["metadata"]["annotations"].update({"driftwarden.io/guard": "enforce"})
    )
    assert decide(request(operation="CREATE", new=strict_new), warn).allowed is False
    off_new = changed(fresh(), lambda o: o["metadata"]["annotations"].update({"driftwarden.io/guard": "off"}))
    assert decide(request(operation="CREATE", new=off_new), warn).mode == "warn"


def test_dry_run_is_decided_the_same_way(settings: DecisionSettings) -> None:
    wet = decide(fixture_request("review-update-kubectl-edit.json"), settings)
    dry = decide(fixture_request("review-update-kubectl-edit.json", dryRun=True), settings)
    assert dry == wet


def test_breakglass_warns_and_audits(settings: DecisionSettings) -> None:
    decision = decide(edit(replicas(5), user=BREAKGLASS_USER), settings)
    assert decision.warnings and all(len(w) < 120 for w in decision.warnings)
    assert decision.audit_annotations["decision"] == "breakglass"
    assert decision.audit_annotations["fields"] == "spec.replicas"


def test_exemption_is_audited(settings: DecisionSettings) -> None:
    decision = decide(request(operation="DELETE", old=deployment(), user=GARBAGE_COLLECTOR), settings)
    assert decision.audit_annotations["decision"] == "exempt"


def test_message_stays_under_one_kilobyte_with_many_fields(settings: DecisionSettings) -> None:
    keys = [f"team.example.com/label-{i:03}-{'é' * 20}" for i in range(300)]

    def many_owned_labels(o: dict[str, Any]) -> None:
        o["metadata"]["labels"].update(dict.fromkeys(keys, "a"))
        owned = o["metadata"]["managedFields"][0]["fieldsV1"]["f:metadata"]["f:labels"]
        owned.update({f"f:{key}": {} for key in keys})

    old = changed(deployment(), many_owned_labels)
    decision = decide(
        update(changed(old, lambda o: o["metadata"]["labels"].update(dict.fromkeys(keys, "b"))), old=old),
        settings,
    )
    assert decision.reason == "owned-fields-changed"
    assert len(decision.fields) == 300
    assert len(decision.message.encode()) <= 1000
    assert "more. Make this change in Git" in decision.message
    assert len(build_response("u", decision)["response"]["auditAnnotations"]["fields"].encode()) <= 1000


# --- scale: the API server sends autoscaling/v1 Scale objects ------------------------------------------


def test_scale_validating_without_parent_cannot_tell_and_allows(settings: DecisionSettings) -> None:
    decision = decide(fixture_request("review-scale-validating.json"), settings)
    assert (decision.allowed, decision.reason) == (True, "unmanaged")


def test_scale_mutating_sees_git_owned_replicas(settings: DecisionSettings) -> None:
    decision = decide(fixture_request("review-scale-mutating.json"), settings)
    assert (decision.allowed, decision.reason, decision.fields) == (
        False,
        "owned-fields-changed",
        ("spec.replicas",),
    )
    assert "deployments/scale production/web" in decision.message


def test_scale_denial_says_where_the_application_is_named_and_that_the_default_mode_applies(
    settings: DecisionSettings,
) -> None:
    decision = decide(fixture_request("review-scale-mutating.json"), settings)
    assert not decision.allowed
    assert "driftwarden.io/app label of deployments production/web" in decision.message
    assert "the webhook's default mode applies" in decision.message
    assert len(decision.message.encode()) <= 1024


def test_scale_with_fetched_parent(settings: DecisionSettings) -> None:
    decision = decide(fixture_request("review-scale-validating.json"), settings, parent=deployment())
    assert (decision.allowed, decision.reason, decision.app) == (
        False,
        "owned-fields-changed",
        "driftwarden-system/web-app",
    )
    assert "Deployment/scale production/web" in decision.message


def not_owning_replicas(o: dict[str, Any]) -> None:
    del o["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:replicas"]


@pytest.mark.parametrize(
    ("parent", "user", "strict", "expected"),
    [
        pytest.param(deployment(), AUDITOR, False, (True, "gitops-identity"), id="auditor"),
        pytest.param(
            changed(deployment(), not_owning_replicas),
            "jane",
            False,
            (True, "no-owned-fields"),
            id="hpa-owns-replicas",
        ),
        pytest.param(
            changed(deployment(), not_owning_replicas), "jane", True, (False, "strict"), id="strict"
        ),
        pytest.param(
            changed(deployment(), not_owning_replicas),
            "system:serviceaccount:kube-system:horizontal-pod-autoscaler",
            True,
            (True, "no-owned-fields"),
            id="strict-lets-the-hpa-scale",
        ),
        pytest.param(unmanaged(), "jane", False, (True, "unmanaged"), id="unmanaged-parent"),
        pytest.param(
            changed(deployment(), no_managed_fields),
            "jane",
            False,
            (False, "owned-fields-changed"),
            id="no-entry",
        ),
        pytest.param(guarded("warn"), "jane", False, (True, "owned-fields-changed"), id="parent-guard-warn"),
        pytest.param(deployment(), BREAKGLASS_USER, False, (True, "breakglass"), id="breakglass"),
    ],
)
def test_scale_rules(
    parent: dict[str, Any], user: str, strict: bool, expected: tuple[bool, str], settings: DecisionSettings
) -> None:
    settings = dataclasses.replace(settings, strict=strict)
    review = fixture_request("review-scale-validating.json", userInfo={"username": user, "groups": []})
    decision = decide(review, settings, parent=parent)
    assert (decision.allowed, decision.reason) == expected


def test_scale_without_replicas_change_is_allowed(settings: DecisionSettings) -> None:
    review = fixture("review-scale-mutating.json")
    review["request"]["object"]["spec"]["replicas"] = 3
    decision = decide(parse_admission_review(review), settings)
    assert (decision.allowed, decision.reason) == (True, "no-owned-fields")


# --- Secrets: values never leave -----------------------------------------------------------------------

SECRET_VALUES = ("aHVudGVyMg==", "c3VwZXJzZWNyZXQ=", "hunter2", "supersecret", "tok3n")


@pytest.mark.parametrize("mode", ["enforce", "warn"])
def test_secret_values_never_appear(mode: str, settings: DecisionSettings) -> None:
    old = secret({"password": "aHVudGVyMg=="}, mode=mode)
    new = changed(
        old,
        lambda o: (o["data"].update(password="c3VwZXJzZWNyZXQ="), o.update(stringData={"hunter2": "tok3n"})),
    )
    review = request(
        operation="UPDATE",
        old=old,
        new=new,
        name="db",
        kind=("", "v1", "Secret"),
        resource=("", "v1", "secrets"),
    )
    decision = decide(review, dataclasses.replace(settings, strict=True))
    assert decision.violation and "data.password" in decision.fields
    text = json.dumps(build_response("u", decision)) + repr(decision)
    for value in SECRET_VALUES[:4]:
        assert value not in text


def test_secret_paths_are_cut_at_the_data_key() -> None:
    paths = (
        ("f:data", 'k:{"tok3n":1}'),
        ("f:data", "f:password", 'v:"hunter2"'),
        ("f:metadata", "f:finalizers", 'v:"tok3n"'),
    )
    rendered = render_fields(paths, secret=True)
    assert rendered == ("data", "data.password", "metadata.finalizers[=…]")
    assert not any(value in " ".join(rendered) for value in SECRET_VALUES)


# --- other profiles ------------------------------------------------------------------------------------


def as_argocd(o: dict[str, Any]) -> None:
    annotations = o["metadata"]["annotations"]
    annotations["argocd.argoproj.io/tracking-id"] = "web-app:apps/Deployment:production/web"
    del annotations[TRACKING]
    o["metadata"]["managedFields"][0]["manager"] = "argocd-controller"


def as_flux(o: dict[str, Any]) -> None:
    del o["metadata"]["annotations"][TRACKING]
    o["metadata"]["labels"].update(
        {"kustomize.toolkit.fluxcd.io/name": "apps", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}
    )
    o["metadata"]["managedFields"][0]["manager"] = "kustomize-controller"
    o["metadata"]["managedFields"][0]["fieldsV1"]["f:metadata"]["f:labels"].update(
        {"f:kustomize.toolkit.fluxcd.io/name": {}, "f:kustomize.toolkit.fluxcd.io/namespace": {}}
    )


@pytest.mark.parametrize(
    ("profile", "convert", "identity", "app"),
    [
        ("argocd", as_argocd, "system:serviceaccount:argocd:argocd-application-controller", "web-app"),
        ("flux", as_flux, "system:serviceaccount:flux-system:kustomize-controller", "flux-system/apps"),
    ],
)
def test_other_profiles(
    profile: str, convert: Callable[[dict[str, Any]], None], identity: str, app: str
) -> None:
    chosen = make_settings(profile=profile)
    old = changed(deployment(), convert)
    denied = decide(update(changed(old, replicas(4)), old=old), chosen)
    assert (denied.allowed, denied.reason, denied.app) == (False, "owned-fields-changed", app)
    assert (
        decide(update(changed(old, replicas(4)), old=old, user=identity), chosen).reason == "gitops-identity"
    )
    # The driftwarden profile does not recognise the other tools' markers.
    assert decide(update(changed(old, replicas(4)), old=old), make_settings()).reason == "unmanaged"


def test_flux_label_removal_is_marker_tampering() -> None:
    old = changed(deployment(), as_flux)
    new = changed(old, lambda o: o["metadata"]["labels"].pop("kustomize.toolkit.fluxcd.io/namespace"))
    assert decide(update(new, old=old), make_settings(profile="flux")).reason == "marker-removed"


def test_internal_errors_allow_visibly(settings: DecisionSettings) -> None:
    broken = dataclasses.replace(settings)
    object.__setattr__(
        broken, "profile", None
    )  # a bug elsewhere: the rules must not take the API server down
    decision = decide(fixture_request("review-update-kubectl-edit.json"), broken)
    assert isinstance(decision, Decision)
    assert (decision.allowed, decision.reason) == (True, "internal-error")
    assert decision.audit_annotations["decision"] == "error"


def test_hostile_nesting_does_not_open_the_guard(settings: DecisionSettings) -> None:
    deep: object = "leaf"
    for _ in range(3000):
        deep = {"x": [deep]}
    old, new = deployment(), deployment()
    old["spec"]["extra"] = new["spec"]["extra"] = deep  # too deep for copy.deepcopy, so built twice
    new["spec"]["replicas"] = 9
    decision = decide(update(new, old=old), settings)
    assert (decision.allowed, decision.reason) == (False, "owned-fields-changed")
    assert "spec.replicas" in decision.fields
