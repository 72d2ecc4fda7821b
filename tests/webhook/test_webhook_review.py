"""AdmissionReview parsing, limits and response building (webhook.admission.request, .limits, .response)."""

from __future__ import annotations

import base64
import json
from types import MappingProxyType
from typing import Any

import pytest

from driftwarden.errors import AdmissionRequestError
from tests.webhook.reviews import admission_review, fixture
from webhook.admission.decision import Decision
from webhook.admission.limits import clip, clip_bytes, join_limited, valid_audit_key
from webhook.admission.request import GroupVersionKind, GroupVersionResource, parse_admission_review
from webhook.admission.response import build_response


def test_parses_the_kubectl_edit_review() -> None:
    raw = fixture("review-update-kubectl-edit.json")
    request = parse_admission_review(raw)
    assert request.uid == raw["request"]["uid"]
    assert len(request.uid) == 36
    assert request.kind == GroupVersionKind("apps", "v1", "Deployment")
    assert request.resource == GroupVersionResource("apps", "v1", "deployments")
    assert (request.name, request.namespace, request.operation, request.sub_resource) == (
        "web",
        "production",
        "UPDATE",
        "",
    )
    assert (request.user_name, request.user_groups) == ("jane", ("developers", "system:authenticated"))
    assert request.object["spec"]["replicas"] == 5
    assert request.old_object["spec"]["replicas"] == 3
    assert request.dry_run is False
    assert request.options is not None
    assert request.options["fieldManager"] == "kubectl-edit"


def test_parses_the_scale_review() -> None:
    request = parse_admission_review(fixture("review-scale-validating.json"))
    assert (request.sub_resource, request.kind.kind, request.resource.resource) == (
        "scale",
        "Scale",
        "deployments",
    )


def _with(path: str, value: Any) -> dict[str, Any]:
    review = admission_review(old={}, new={})
    target = review
    *parents, last = path.split(".")
    for key in parents:
        target = target[key]
    if value is _DELETE:
        del target[last]
    else:
        target[last] = value
    return review


_DELETE = object()


@pytest.mark.parametrize(
    ("review", "reason"),
    [
        pytest.param([], "must be a JSON object", id="not-a-dict"),
        pytest.param(_with("apiVersion", "admission.k8s.io/v1beta1"), "apiVersion", id="v1beta1"),
        pytest.param(_with("kind", "Review"), "kind must be", id="wrong-kind"),
        pytest.param(_with("request", None), "no request", id="no-request"),
        pytest.param(_with("request.uid", _DELETE), "request.uid", id="no-uid"),
        pytest.param(_with("request.uid", ""), "request.uid", id="empty-uid"),
        pytest.param(_with("request.uid", 7), "request.uid must be a string", id="uid-not-string"),
        pytest.param(_with("request.operation", "PATCH"), "operation", id="bad-operation"),
        pytest.param(_with("request.operation", _DELETE), "operation", id="no-operation"),
        pytest.param(_with("request.userInfo", "jane"), "userInfo must be an object", id="user-not-object"),
        pytest.param(_with("request.userInfo.groups", "admins"), "groups", id="groups-not-list"),
        pytest.param(_with("request.userInfo.groups", [1]), "groups", id="groups-not-strings"),
        pytest.param(_with("request.kind", []), "kind must be an object", id="kind-not-object"),
        pytest.param(_with("request.kind.kind", 3), "request.kind.kind", id="kind-kind-not-string"),
        pytest.param(_with("request.dryRun", "yes"), "dryRun", id="dry-run-not-bool"),
        pytest.param(_with("request.options", 5), "options", id="options-not-object"),
        pytest.param(_with("request.namespace", 5), "namespace", id="namespace-not-string"),
    ],
)
def test_malformed_reviews_are_400(review: Any, reason: str) -> None:
    with pytest.raises(AdmissionRequestError) as info:
        parse_admission_review(review)
    assert reason in str(info.value)
    assert info.value.status == 400


def test_objects_are_kept_raw_for_the_decision() -> None:
    request = parse_admission_review(_with("request.object", [1, "x"]))
    assert request.object == [1, "x"]


def decision(**kwargs: Any) -> Decision:
    base: dict[str, Any] = {
        "allowed": True,
        "mode": "warn",
        "reason": "owned-fields-changed",
        "violation": True,
    }
    return Decision(**(base | kwargs))


def test_allowed_response_is_minimal() -> None:
    assert build_response("u1", decision(violation=False, reason="unmanaged")) == {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": "u1", "allowed": True},
    }


def test_denied_response_carries_a_403_status() -> None:
    response = build_response("u2", decision(allowed=False, mode="enforce", message="no\nway"))["response"]
    assert response["allowed"] is False
    assert response["status"] == {
        "code": 403,
        "reason": "Forbidden",
        "status": "Failure",
        "message": "no?way",
    }
    empty = build_response("u3", decision(allowed=False, mode="enforce"))["response"]
    assert empty["status"]["message"]


def test_warnings_are_short_clean_and_unique() -> None:
    long = "drift in " + "spec.x" * 50
    response = build_response("u", decision(warnings=(long, "a\tb\x00c", "a\tb\x00c", "", "\ud800")))[
        "response"
    ]
    assert response["warnings"][0].endswith("…") and len(response["warnings"][0]) == 119
    assert response["warnings"][1:] == ["a?b?c", "?"]
    many = build_response("u", decision(warnings=tuple(f"w{i}" for i in range(50))))["response"]
    assert len(many["warnings"]) == 20


def test_audit_annotation_keys_are_those_the_api_server_accepts() -> None:
    notes = {"decision": "warned", "fields": "x" * 5000, "bad key": "v", "-x": "v", "a/b": "v", "k" * 64: "v"}
    response = build_response("u", decision(audit_annotations=MappingProxyType(notes)))["response"]
    assert set(response["auditAnnotations"]) == {"decision", "fields"}
    assert len(response["auditAnnotations"]["fields"].encode()) <= 1000


@pytest.mark.parametrize(
    ("key", "valid"), [("decision", True), ("a", True), ("a.b-c_d", True), ("a-", False), ("", False)]
)
def test_valid_audit_key(key: str, valid: bool) -> None:
    assert valid_audit_key(key) is valid


def test_patch_is_base64_json_and_only_when_allowed() -> None:
    patch = [{"op": "add", "path": "/metadata/annotations/a~1b", "value": "v"}]
    response = build_response("u", decision(), patch=patch)["response"]
    assert response["patchType"] == "JSONPatch"
    assert json.loads(base64.b64decode(response["patch"])) == patch
    denied = build_response("u", decision(allowed=False, mode="enforce", message="m"), patch=patch)[
        "response"
    ]
    assert "patch" not in denied
    assert "patch" not in build_response("u", decision(), patch=[])["response"]


def test_clipping_helpers() -> None:
    assert clip("abcdef", max_chars=4) == "abc…"
    assert clip("abc", max_chars=4) == "abc"
    clipped = clip_bytes("é" * 600, max_bytes=1000)
    assert len(clipped.encode()) <= 1000 and clipped.endswith("…")
    assert join_limited(["a", "b", "c"], max_chars=100) == "a, b, c"
    assert join_limited(["aaaa", "bbbb", "cccc"], max_chars=18) == "aaaa and 2 more"
    assert join_limited(["a" * 50, "b"], max_chars=20) == "a" * 8 + "… and 1 more"
    assert join_limited([], max_chars=5) == ""
