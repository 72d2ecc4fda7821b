"""Properties of the decision: it never raises, stays within the API server's limits, and leaks no Secret."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from driftwarden.errors import AdmissionRequestError
from driftwarden.fieldsv1 import Path, canonical_json, parse_fields_v1, value_at
from tests.webhook.conftest import BREAKGLASS_GROUP, BREAKGLASS_USER
from tests.webhook.reviews import AUDITOR, DEPLOYMENT_TRACKING, deployment, request
from webhook.admission.decision import decide
from webhook.admission.patches import drift_patch
from webhook.admission.request import parse_admission_review
from webhook.admission.response import build_response
from webhook.admission.settings import DecisionSettings, make_settings

AT = datetime(2026, 11, 27, 21, 0, tzinfo=UTC)
TRACKING = "driftwarden.io/tracking-id"

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
json_values = st.recursive(
    scalars,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
    max_leaves=12,
)
FIELD_KEYS = ("f:metadata", "f:spec", "f:replicas", "f:labels", "f:data", "f:password", "f:template")
field_keys = st.sampled_from(
    [*FIELD_KEYS, "f:containers", "f:image", 'k:{"name":"web"}', 'v:"x"', "i:0", ".", "k:{bad", "garbage"]
)
fields_v1 = st.recursive(st.just({}), lambda c: st.dictionaries(field_keys, c, max_size=3), max_leaves=10)
entries = (
    st.fixed_dictionaries(
        {
            "manager": st.sampled_from(["driftwarden", "kubectl-edit", "argocd-controller", 5, None]),
            "operation": st.sampled_from(["Apply", "Update", "Bogus", None]),
            "subresource": st.sampled_from(["", "status", None]),
            "fieldsV1": fields_v1 | json_values,
        }
    )
    | json_values
)
string_maps = st.dictionaries(
    st.sampled_from([TRACKING, "driftwarden.io/guard", "driftwarden.io/drift", "driftwarden.io/app", "x"]),
    st.sampled_from(
        [DEPLOYMENT_TRACKING, "a/b:/Secret:production/web", "garbage", "enforce", "warn", "off", 3, None]
    ),
    max_size=4,
)
metadata = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["web", "", None, 3]),
        "namespace": st.sampled_from(["production", "", None]),
        "annotations": string_maps | json_values,
        "labels": string_maps | json_values,
        "managedFields": st.lists(entries, max_size=3) | json_values,
    },
    optional={"deletionTimestamp": st.just("2026-11-27T21:00:00Z"), "finalizers": json_values},
)
k8s_objects = st.fixed_dictionaries(
    {
        "apiVersion": st.sampled_from(["apps/v1", "v1", "autoscaling/v1", 3]),
        "kind": st.sampled_from(["Deployment", "Secret", "Scale", None]),
        "metadata": metadata | json_values,
    },
    optional={"spec": json_values, "data": json_values, "status": json_values},
)


def _locations(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value, as keys and indices from the root."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _locations(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _locations(child, (*prefix, index))
    return found


LOCATIONS = [loc for loc in _locations(deployment()) if loc]


def _replaced(edits: list[tuple[tuple[Any, ...], Any]]) -> dict[str, Any]:
    """The applied Deployment with each location in ``edits`` replaced (skipping ones an edit removed)."""
    obj = deployment()
    for location, value in edits:
        target: Any = obj
        for step in location[:-1]:
            target = target.get(step) if isinstance(target, dict) else None
            if target is None:
                break
        if isinstance(target, dict):
            target[location[-1]] = value
    return obj


# A real Deployment with a few places swapped for anything: realistic shapes with garbage in them.
mutated_deployments = st.builds(
    _replaced,
    st.lists(
        st.tuples(st.sampled_from([loc for loc in LOCATIONS if isinstance(loc[-1], str)]), json_values),
        max_size=3,
    ),
)
objects = st.one_of(st.just(None), json_values, k8s_objects, mutated_deployments, st.builds(deployment))
users = st.sampled_from(
    [AUDITOR, "jane", "jane", BREAKGLASS_USER, "system:serviceaccount:kube-system:generic-garbage-collector"]
)


@st.composite
def reviews(draw: st.DrawFn) -> dict[str, Any]:
    """AdmissionReview documents, mostly valid and mostly about the managed Deployment."""
    old = draw(st.one_of(mutated_deployments, mutated_deployments, objects))
    new = draw(st.one_of(mutated_deployments, st.builds(deployment), objects))
    request = {
        "uid": draw(st.sampled_from(["u-1"] * 9 + ["", None])),
        "operation": draw(
            st.sampled_from(["UPDATE"] * 5 + ["CREATE", "CREATE", "DELETE", "CONNECT", "PATCH"])
        ),
        "subResource": draw(st.sampled_from([""] * 6 + ["status", "scale", "scale", "resize", None])),
        "userInfo": {
            "username": draw(users),
            "groups": draw(st.lists(st.sampled_from([BREAKGLASS_GROUP, "dev"]), max_size=2)),
        },
        "kind": {"group": "apps", "version": "v1", "kind": draw(st.sampled_from(["Deployment", "Scale"]))},
        "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
        "name": draw(st.sampled_from(["web", "web", ""])),
        "namespace": draw(st.sampled_from(["production", "production", ""])),
        "object": new,
        "oldObject": old,
        "dryRun": draw(st.booleans()),
    }
    api_version = draw(st.sampled_from(["admission.k8s.io/v1"] * 9 + ["admission.k8s.io/v1beta1"]))
    return {"apiVersion": api_version, "kind": "AdmissionReview", "request": request}


decision_settings = st.builds(
    make_settings,
    profile=st.sampled_from(["driftwarden"] * 4 + ["argocd", "flux"]),
    default_mode=st.sampled_from(["enforce", "warn", "off"]),
    strict=st.booleans(),
    breakglass_users=st.just([BREAKGLASS_USER]),
    breakglass_groups=st.just([BREAKGLASS_GROUP]),
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(reviews(), decision_settings, st.one_of(st.none(), mutated_deployments, objects))
def test_decide_never_raises_and_keeps_the_limits(review: Any, chosen: DecisionSettings, parent: Any) -> None:
    try:
        req = parse_admission_review(review)
    except AdmissionRequestError:
        return
    decision = decide(req, chosen, parent=parent)
    event(decision.reason)
    assert decision.reason != "internal-error"
    assert decision.allowed or (decision.violation and decision.mode == "enforce" and decision.message)
    assert all(len(w) < 120 for w in decision.warnings)
    assert len(decision.message.encode()) <= 1000
    response = json.loads(json.dumps(build_response(req.uid, decision)))["response"]
    assert response["allowed"] is decision.allowed
    patch = drift_patch(req.object, decision, user=req.user_name, at=AT, traceparent="t")
    assert patch is None or json.dumps(patch)


SECRET = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=4, max_size=10).map(
    lambda s: f"S3CR3T{s}"
)
secret_data = st.dictionaries(
    st.sampled_from(["password", "token", "url"]), SECRET | st.lists(SECRET, max_size=2)
)
secret_fields = st.recursive(
    st.just({}),
    lambda c: st.dictionaries(
        st.sampled_from(["f:data", "f:stringData", "f:password", "f:token", "."])
        | SECRET.map(lambda s: f'v:"{s}"')
        | SECRET.map(lambda s: f'k:{{"name":"{s}"}}'),
        c,
        max_size=3,
    ),
    max_leaves=8,
)


def _secret(data: Any, fields: Any, mode: str) -> dict[str, Any]:
    tracking = "ds/app:/Secret:production/db"
    annotations = {TRACKING: tracking, "driftwarden.io/guard": mode}
    managed = [{"manager": "driftwarden", "operation": "Apply", "fieldsV1": fields}]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "db",
            "namespace": "production",
            "annotations": annotations,
            "managedFields": managed,
        },
        "data": data,
    }


@settings(max_examples=200)
@given(secret_data, secret_data, secret_fields, st.sampled_from(["enforce", "warn"]), st.booleans())
def test_secret_values_never_leave(
    old_data: Any, new_data: Any, fields: Any, mode: str, strict: bool
) -> None:
    old = _secret(old_data, fields, mode)
    new = copy.deepcopy(old)
    new["data"] = new_data
    new["stringData"] = new_data
    review = request(operation="UPDATE", old=old, new=new, name="db", kind=("", "v1", "Secret"))
    decision = decide(review, make_settings(strict=strict, breakglass_users=[BREAKGLASS_USER]))
    patch = drift_patch(new, decision, user="jane", at=AT)
    text = json.dumps([build_response("u", decision), patch]) + repr(decision)
    assert "S3CR3T" not in text


def _owned_scalar_leaves() -> list[Path]:
    applied = deployment()
    owned = parse_fields_v1(applied["metadata"]["managedFields"][0]["fieldsV1"])
    return sorted(
        p for p in owned if p[-1].startswith("f:") and isinstance(value_at(applied, p)[1], str | int)
    )


@settings(max_examples=150)
@given(st.sampled_from(_owned_scalar_leaves()), scalars, st.booleans())
def test_changing_any_git_owned_leaf_is_denied(path: Path, value: Any, dry_run: bool) -> None:
    old = deployment()
    new = copy.deepcopy(old)
    _, parent = value_at(new, path[:-1])
    parent[path[-1][2:]] = value
    decision = decide(request(operation="UPDATE", old=old, new=new, dry_run=dry_run), make_settings())
    if canonical_json(value) == canonical_json(value_at(old, path)[1]):
        assert decision.allowed and not decision.violation
    else:
        assert (decision.allowed, decision.reason) in {
            (False, "owned-fields-changed"),
            (False, "marker-removed"),
        }
        assert decision.fields and "Deployment production/web" in decision.message
