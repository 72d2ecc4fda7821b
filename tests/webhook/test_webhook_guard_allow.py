"""The Application's ``spec.guard.allow``, stamped on its objects, reaches the webhook as break-glass."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from driftwarden import contract
from driftwarden.contract import DriftStamp, GuardAllow
from tests.webhook.reviews import changed, deployment, update
from webhook.admission.decision import decide
from webhook.admission.patches import drift_patch
from webhook.admission.settings import DecisionSettings, make_settings

AT = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


@pytest.fixture
def settings() -> DecisionSettings:
    return make_settings(gitops_identities=[contract.auditor_identity()])


def allowing(users: list[str] = (), groups: list[str] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    obj = deployment()
    obj["metadata"].setdefault("annotations", {})[contract.ANNOTATION_GUARD_ALLOW] = GuardAllow(
        tuple(users), tuple(groups)
    ).encode()
    return obj


def scale(obj: dict[str, Any]) -> None:
    obj["spec"]["replicas"] = 9


@pytest.mark.parametrize(
    ("old", "user", "groups", "reason"),
    [
        (allowing(users=["bob"]), "bob", [], "breakglass"),
        (allowing(groups=["oncall"]), "carol", ["oncall"], "breakglass"),
        (allowing(users=["bob"]), "alice", [], "owned-fields-changed"),
        (allowing(groups=["system:authenticated"]), "al", ["system:authenticated"], "owned-fields-changed"),
        (deployment(), "bob", [], "owned-fields-changed"),
    ],
)
def test_the_stored_allow_list_lets_its_people_through_as_break_glass(
    settings: DecisionSettings, old: dict[str, Any], user: str, groups: list[str], reason: str
) -> None:
    decision = decide(update(changed(old, scale), old=old, user=user, groups=groups), settings)
    assert decision.reason == reason
    assert decision.allowed == (reason == "breakglass")


def test_nobody_can_add_themselves_to_the_list(settings: DecisionSettings) -> None:
    old = allowing(users=["bob"])
    new = changed(old, lambda o: o["metadata"]["annotations"].update(
        {contract.ANNOTATION_GUARD_ALLOW: GuardAllow(("bob", "alice")).encode()}))  # fmt: skip
    decision = decide(update(new, old=old, user="alice"), settings)
    assert not decision.allowed and decision.reason == "marker-removed"
    assert any("guard-allow" in f for f in decision.fields)


def test_a_break_glass_edit_is_stamped_as_such_in_any_mode(settings: DecisionSettings) -> None:
    old = allowing(users=["bob"])
    new = changed(old, scale)
    decision = decide(update(new, old=old, user="bob"), settings)
    assert decision.mode == "enforce"
    patch = drift_patch(new, decision, user="bob", at=AT)
    assert patch is not None
    stamp = DriftStamp.decode(patch[0]["value"])
    assert stamp is not None and stamp.breakglass
    assert (stamp.user, stamp.fields) == ("bob", ("spec.replicas",))


def test_the_contract_round_trips_and_reads_garbage_as_empty() -> None:
    allow = GuardAllow(("bob",), ("oncall",))
    assert GuardAllow.decode(allow.encode()) == allow
    assert GuardAllow.decode('{"users": "bob", "groups": [1, "x"]}') == GuardAllow((), ("x",))
    assert GuardAllow.decode("nope") is None and GuardAllow.decode(None) is None
    stamp = DriftStamp("bob", "2026-01-02T03:04:05Z", ("spec.replicas",), breakglass=True)
    assert DriftStamp.decode(stamp.encode()) == stamp
    assert "breakglass" not in DriftStamp("a", "b", ()).encode()  # the warn-mode stamp is as before
