"""Guard integrity (issue 13): what Git owns comes from the GitOps entry alone; owners, finalizers, the
managedFields, a stringData Secret's data and the drift stamp cannot be used to slip an edit through."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from driftwarden.contract import DriftStamp
from tests.webhook.reviews import AUDITOR, changed, container, deployment, request, secret, update
from webhook.admission.decision import GARBAGE_COLLECTOR, Decision, decide
from webhook.admission.patches import drift_patch
from webhook.admission.settings import DecisionSettings, make_settings

AT = datetime(2026, 11, 27, 21, 0, tzinfo=UTC)
DRIFT = "driftwarden.io/drift"
IMAGE = "spec.template.spec.containers[name=web].image"


def plant(o: dict[str, Any], fields: dict[str, Any], manager: str = "evil") -> None:
    """An entry under another manager, as anyone who may edit the object may write one."""
    entry = {"manager": manager, "operation": "Update", "apiVersion": "apps/v1", "fieldsType": "FieldsV1"}
    o["metadata"]["managedFields"].append({**entry, "fieldsV1": fields})


CONTAINERS = {"f:spec": {"f:template": {"f:spec": {"f:containers": {}}}}}


def planted(key: str) -> dict[str, Any]:
    trie = json.loads(json.dumps(CONTAINERS))
    trie["f:spec"]["f:template"]["f:spec"]["f:containers"][key] = {}
    return trie


@pytest.mark.parametrize(
    "trie",
    [
        pytest.param(planted('k:{"image":"nginx:1.27"}'), id="planted-key-names"),
        pytest.param(planted('k:{"aaa":"x"}'), id="planted-unknown-key"),
        pytest.param(planted("i:0"), id="planted-index"),
    ],
)
def test_other_managers_entries_do_not_say_how_a_list_is_keyed(trie: dict[str, Any]) -> None:
    """The issue's bypass: plant an entry, then apply as manager driftwarden with another image."""
    old = changed(deployment(), lambda o: plant(o, trie))
    new = changed(old, lambda o: container(o).update(image="evil:1"))
    decision = decide(update(new, old=old, user="mallory"), make_settings())
    assert (decision.allowed, decision.reason) == (False, "owned-fields-changed")
    assert IMAGE in decision.fields


def test_other_managers_entries_do_not_make_an_atomic_field_granular() -> None:
    old = changed(
        deployment(), lambda o: plant(o, {"f:spec": {"f:selector": {"f:matchLabels": {"f:app": {}}}}})
    )
    new = changed(old, lambda o: o["spec"]["selector"]["matchLabels"].update(app="other"))
    decision = decide(update(new, old=old), make_settings())
    assert (decision.allowed, decision.reason) == (False, "owned-fields-changed")
    assert "spec.selector.matchLabels.app" in decision.fields


def test_new_entries_teach_the_diff_nothing_either() -> None:
    new = changed(
        deployment(),
        lambda o: (plant(o, planted('k:{"image":"nginx:1.27"}')), container(o).update(image="x")),
    )
    assert decide(update(new), make_settings()).reason == "owned-fields-changed"


@pytest.mark.parametrize(
    "reset",
    [
        pytest.param(lambda o: o["metadata"].pop("managedFields"), id="stripped"),
        pytest.param(lambda o: o["metadata"].update(managedFields=None), id="null"),
        pytest.param(lambda o: o["metadata"].update(managedFields=[]), id="empty"),
        pytest.param(lambda o: o["metadata"].update(managedFields=[{}]), id="one-empty-entry"),
        pytest.param(lambda o: o["metadata"]["managedFields"].pop(0), id="gitops-entry-removed"),
    ],
)
def test_a_managed_fields_reset_is_a_violation(reset: Any) -> None:
    decision = decide(update(changed(deployment(), reset)), make_settings())
    assert (decision.allowed, decision.reason) == (False, "manager-entry-removed")
    assert decide(update(changed(deployment(), reset), user=AUDITOR), make_settings()).allowed


def test_after_a_reset_nothing_outside_metadata_is_free() -> None:
    old = changed(deployment(), lambda o: o["metadata"].pop("managedFields"))
    decision = decide(
        update(changed(old, lambda o: container(o).update(image="x")), old=old), make_settings()
    )
    assert (decision.allowed, decision.reason) == (False, "ownership-unknown")


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda o: o["metadata"]["labels"].update(app="evil"), id="label-changed"),
        pytest.param(lambda o: o["metadata"]["labels"].pop("app"), id="label-removed"),
        pytest.param(
            lambda o: o["metadata"]["annotations"].update({"deployment.kubernetes.io/revision": "9"}),
            id="annotation-changed",
        ),
    ],
)
def test_after_a_reset_the_labels_and_annotations_it_has_are_not_free(edit: Any) -> None:
    """Issue 13, item 2: between a reset (warn mode) and the heal, a label Git wrote stays Git's."""
    old = changed(deployment(), lambda o: o["metadata"].update(managedFields=[{}]))
    decision = decide(update(changed(old, edit), old=old, user="alice"), make_settings())
    assert (decision.allowed, decision.reason) == (False, "ownership-unknown")
    assert decision.fields and decision.fields[0].startswith("metadata.")


def test_after_a_reset_new_metadata_and_the_controllers_bookkeeping_stay_free() -> None:
    old = changed(deployment(), lambda o: o["metadata"].update(managedFields=[{}]))
    added = changed(old, lambda o: o["metadata"]["labels"].update(note="mine"))
    assert decide(update(added, old=old, user="alice"), make_settings()).allowed
    bumped = changed(
        old, lambda o: o["metadata"]["annotations"].update({"deployment.kubernetes.io/revision": "2"})
    )
    controller = "system:serviceaccount:kube-system:deployment-controller"
    assert decide(update(bumped, old=old, user=controller), make_settings()).allowed


OWNER = {"apiVersion": "v1", "kind": "ConfigMap", "name": "bait", "uid": "1234"}


def with_owner(o: dict[str, Any], *, by_git: bool = False) -> None:
    o["metadata"]["ownerReferences"] = [dict(OWNER)]
    if by_git:
        fields = o["metadata"]["managedFields"][0]["fieldsV1"]["f:metadata"]
        fields["f:ownerReferences"] = {'k:{"uid":"1234"}': {}}


def test_an_owner_added_by_a_person_or_a_controller_is_a_violation() -> None:
    for user in ("jane", "system:serviceaccount:kube-system:replicaset-controller"):
        decision = decide(update(changed(deployment(), with_owner), user=user), make_settings())
        assert (decision.allowed, decision.reason) == (False, "owner-added")
        assert decision.fields == ("metadata.ownerReferences[uid=1234]",)


def test_an_owner_git_set_is_a_git_owned_field() -> None:
    with_git_owner = changed(deployment(), lambda o: with_owner(o, by_git=True))
    removed = changed(with_git_owner, lambda o: o["metadata"].pop("ownerReferences"))
    assert decide(update(with_git_owner, old=removed), make_settings()).reason == "owned-fields-changed"
    assert decide(update(removed, old=with_git_owner), make_settings()).reason == "owned-fields-changed"


def test_a_finalizer_added_by_a_person_is_a_violation_but_controllers_keep_theirs() -> None:
    new = changed(deployment(), lambda o: o["metadata"].update(finalizers=["example.com/hold"]))
    decision = decide(update(new), make_settings())
    assert (decision.allowed, decision.reason) == (False, "finalizer-added")
    assert decision.fields == ('metadata.finalizers[="example.com/hold"]',)
    controller = "system:serviceaccount:kube-system:service-controller"
    assert decide(update(new, user=controller), make_settings()).allowed


@pytest.mark.parametrize(
    ("owners", "exempt"),
    [
        pytest.param(None, True, id="no-owners"),
        pytest.param(lambda o: with_owner(o, by_git=True), True, id="owner-set-by-git"),
        pytest.param(with_owner, False, id="owner-set-by-someone-else"),
        pytest.param(
            lambda o: (with_owner(o, by_git=True), o["metadata"]["ownerReferences"].append({"uid": "9"})),
            False,
            id="one-owner-not-by-git",
        ),
    ],
)
def test_the_garbage_collector_deletes_only_what_git_gave_its_owners(owners: Any, exempt: bool) -> None:
    old = changed(deployment(), owners) if owners else deployment()
    decision = decide(request(operation="DELETE", old=old, user=GARBAGE_COLLECTOR), make_settings())
    assert (decision.allowed, decision.reason) == ((True, "exempt") if exempt else (False, "delete-managed"))


def string_data_secret() -> dict[str, Any]:
    """The Secret as the auditor applied it with stringData: stored as data, Git owns stringData."""

    def written_with_string_data(o: dict[str, Any]) -> None:
        o["metadata"]["managedFields"][0]["fieldsV1"] = {"f:stringData": {"f:password": {}}, "f:type": {}}

    return changed(secret({"password": "aHVudGVyMg=="}), written_with_string_data)


def secret_update(new: dict[str, Any], old: dict[str, Any], **kwargs: Any) -> Any:
    kinds = {"kind": ("", "v1", "Secret"), "resource": ("", "v1", "secrets"), "name": "db"}
    return request(operation="UPDATE", old=old, new=new, **kinds, **kwargs)


def test_string_data_ownership_guards_data() -> None:
    old = string_data_secret()
    edited = changed(old, lambda o: o["data"].update(password="b3RoZXI="))
    decision = decide(secret_update(edited, old), make_settings())
    assert (decision.allowed, decision.reason, decision.fields) == (
        False,
        "owned-fields-changed",
        ("data.password",),
    )
    assert "b3RoZXI=" not in decision.message
    removed = changed(old, lambda o: o["data"].pop("password"))
    assert decide(secret_update(removed, old), make_settings()).reason == "owned-fields-changed"
    other_key = changed(old, lambda o: o["data"].update(extra="eA=="))
    assert decide(secret_update(other_key, old), make_settings()).allowed


# --- the drift stamp ------------------------------------------------------------------------------------


def warn_mode(o: dict[str, Any]) -> None:
    o["metadata"]["annotations"]["driftwarden.io/guard"] = "warn"


def stamped(o: dict[str, Any], stamp: object) -> None:
    o["metadata"]["annotations"][DRIFT] = stamp if isinstance(stamp, str) else json.dumps(stamp)


FORGED = {"user": "bob", "at": "2026-11-27T20:00:00Z", "fields": ["spec.paused"], "traceparent": ""}


@pytest.mark.parametrize("operation", ["UPDATE", "CREATE"])
def test_a_forged_stamp_is_denied_in_enforce_mode(operation: str) -> None:
    new = changed(deployment(), lambda o: stamped(o, FORGED))
    if operation == "UPDATE":
        decision = decide(update(new), make_settings())
        assert (decision.allowed, decision.reason) == (False, "stamp-forged")
    else:
        decision = decide(request(operation="CREATE", new=new), make_settings())
        assert (decision.allowed, decision.reason) == (False, "spoofed-marker")
    assert 'metadata.annotations["driftwarden.io/drift"]' in decision.fields
    # /validate must see the forged stamp, so /mutate leaves the object as sent.
    assert drift_patch(new, dataclasses.replace(decision, allowed=True), user="jane", at=AT) is None


def mutate_then_validate(
    old: dict[str, Any], new: dict[str, Any], settings: DecisionSettings, user: str = "jane"
) -> tuple[Decision, dict[str, Any], Decision]:
    """Both admission phases as the API server runs them: /mutate's patch applied, then /validate."""
    first = decide(update(new, old=old, user=user), settings)
    patch = drift_patch(new, first, user=user, at=AT, traceparent="00-" + "1" * 32 + "-" + "2" * 16 + "-01")
    after = _apply(new, patch or [])
    return first, after, decide(update(after, old=old, user=user), settings)


def _apply(obj: dict[str, Any], patch: list[dict[str, Any]]) -> dict[str, Any]:
    result = json.loads(json.dumps(obj))
    for op in patch:
        *parents, last = [t.replace("~1", "/").replace("~0", "~") for t in op["path"].split("/")[1:]]
        target = result
        for token in parents:
            target = target[token]
        if op["op"] == "remove":
            del target[last]
        else:
            target[last] = op["value"]
    return result


def test_a_forged_stamp_is_replaced_by_the_real_user_in_warn_mode() -> None:
    old = changed(deployment(), warn_mode)
    first, after, second = mutate_then_validate(
        old, changed(old, lambda o: stamped(o, FORGED)), make_settings()
    )
    assert (first.allowed, first.reason) == (True, "stamp-forged")
    stamp = DriftStamp.decode(after["metadata"]["annotations"][DRIFT])
    assert stamp is not None and stamp.user == "jane"
    assert stamp.fields == ('metadata.annotations["driftwarden.io/drift"]',)
    assert (second.allowed, second.reason, second.fields) == (True, "stamp-forged", first.fields)
    assert second.warnings == first.warnings


def test_the_webhooks_own_stamp_is_no_drift() -> None:
    """What /validate sees after /mutate stamped a warned edit: the stamp adds nothing, even when strict."""
    old = changed(deployment(), warn_mode)
    edit = changed(old, lambda o: o["metadata"]["labels"].update(team="x"))
    first, after, second = mutate_then_validate(old, edit, make_settings(strict=True))
    assert DRIFT in after["metadata"]["annotations"]
    assert (
        (second.reason, second.fields)
        == ("strict", ("metadata.labels.team",))
        == (first.reason, first.fields)
    )
    # Reinvocation: the second /mutate call keeps the stamp as it is.
    assert drift_patch(after, second, user="jane", at=AT) is None


def test_a_stamp_naming_someone_else_is_forged_even_with_the_right_fields() -> None:
    old = changed(deployment(), warn_mode)
    edit = changed(old, lambda o: container(o).update(image="x"))
    forged = {"user": "bob", "at": "2026-11-27T20:00:00Z", "fields": [IMAGE], "traceparent": ""}
    decision = decide(update(changed(edit, lambda o: stamped(o, forged)), old=old), make_settings())
    assert decision.reason == "owned-fields-changed"
    assert 'metadata.annotations["driftwarden.io/drift"]' in decision.fields


@pytest.mark.parametrize("mode", ["warn", "off"])
def test_removing_a_pending_stamp_is_forging_it(mode: str) -> None:
    pending = {"user": "alice", "at": "2026-11-27T20:00:00Z", "fields": [IMAGE], "traceparent": ""}
    old = changed(
        deployment(),
        lambda o: (o["metadata"]["annotations"].update({"driftwarden.io/guard": mode}), stamped(o, pending)),
    )
    new = changed(old, lambda o: o["metadata"]["annotations"].pop(DRIFT))
    first, after, second = mutate_then_validate(old, new, make_settings())
    assert (first.allowed, first.reason) == (True, "stamp-forged")
    kept = DriftStamp.decode(after["metadata"]["annotations"][DRIFT])
    assert kept is not None
    if mode == "off":  # nothing is stamped in off mode: the stored stamp is put back
        assert kept.user == "alice" and second.reason == "no-owned-fields"
    else:  # warn: the webhook's own stamp, naming who removed it
        assert kept.user == "jane" and second.reason == "stamp-forged"


def test_a_stamp_on_an_unmanaged_object_is_taken_off() -> None:
    plain = changed(deployment(), lambda o: o["metadata"]["annotations"].pop("driftwarden.io/tracking-id"))
    new = changed(plain, lambda o: stamped(o, FORGED))
    decision = decide(update(new, old=plain), make_settings())
    assert (decision.reason, decision.stamp_sent) == ("unmanaged", True)
    assert drift_patch(new, decision, user="jane", at=AT) == [
        {"op": "remove", "path": "/metadata/annotations/driftwarden.io~1drift"}
    ]
    created = decide(request(operation="CREATE", new=new), make_settings())
    assert drift_patch(new, created, user="jane", at=AT) is not None


def test_the_gitops_identity_writes_and_removes_stamps_freely() -> None:
    old = changed(deployment(), lambda o: stamped(o, FORGED))
    healed = changed(old, lambda o: o["metadata"]["annotations"].pop(DRIFT))
    decision = decide(update(healed, old=old, user=AUDITOR), make_settings())
    assert decision.reason == "gitops-identity"
    assert drift_patch(healed, decision, user=AUDITOR, at=AT) is None


def test_a_pending_stamp_left_alone_stays() -> None:
    pending = {"user": "alice", "at": "2026-11-27T20:00:00Z", "fields": [IMAGE], "traceparent": ""}
    old = changed(deployment(), lambda o: stamped(o, pending))
    note = changed(old, lambda o: o["metadata"]["annotations"].update({"example.com/note": "hi"}))
    decision = decide(update(note, old=old), make_settings())
    assert (decision.allowed, decision.reason, decision.stamp_sent) == (True, "no-owned-fields", False)
    assert drift_patch(note, decision, user="jane", at=AT) is None
