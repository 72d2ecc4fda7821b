"""The heal's pure decisions (auditor.heal.core): who drifted an object, and who may win a fight."""

from __future__ import annotations

import datetime as dt

import pytest

from auditor.heal.core import (
    FIGHT_HEALS,
    UNKNOWN_USER,
    HealBook,
    Writer,
    drift_record,
    last_writer,
    stray_owners,
)
from driftwarden.contract import DriftStamp

HPA = "system:serviceaccount:kube-system:horizontal-pod-autoscaler"


def stamp(user: str) -> DriftStamp:
    return DriftStamp(user=user, at="2026-11-27T21:00:00Z", fields=("spec.replicas",))


def live(*managers: tuple[str, str], subresource: str = "") -> dict[str, object]:
    entries = [
        {"manager": m, "operation": "Update", "time": t, "subresource": subresource} for m, t in managers
    ]
    return {"metadata": {"managedFields": entries}}


@pytest.mark.parametrize(
    ("writer", "identity"),
    [
        pytest.param(Writer(HPA, "kube-controller-manager"), HPA, id="service-account"),
        pytest.param(
            Writer("system:kube-controller-manager", "x"), "system:kube-controller-manager", id="component"
        ),
        pytest.param(
            Writer("alice", "kube-controller-manager"), "", id="a-person-naming-a-controller-manager"
        ),
        pytest.param(Writer("system:anonymous", "x"), "", id="anonymous"),
        pytest.param(
            Writer("", "kube-controller-manager"), "system:kube-controller-manager", id="known-manager"
        ),
        pytest.param(Writer("", "fake-hpa"), "", id="unknown-manager"),
        pytest.param(Writer("", "driftwarden-planted"), "", id="planted-manager"),
    ],
)
def test_a_controller_is_known_by_its_user_or_by_a_controller_manager_name(
    writer: Writer, identity: str
) -> None:
    assert writer.identity == identity


def fight_after(book: HealBook, writer: Writer, heals: int) -> bool:
    """Re-drift ``heals`` times, each within a second of the last heal; whether a fight was called."""
    now = 100.0
    for _ in range(heals):
        verdict = book.decide("o", writer=writer, fields=("/spec/replicas",), desired="d", now=now)
        if verdict.fight is not None:
            return True
        assert verdict.heal
        book.healed("o", now=now)
        now += 0.5
    return False


def test_a_controller_that_fights_back_ends_the_healing() -> None:
    assert fight_after(HealBook(), Writer(HPA, "fake-hpa"), FIGHT_HEALS + 1)
    assert fight_after(HealBook(), Writer("", "kube-controller-manager"), FIGHT_HEALS + 1)


@pytest.mark.parametrize(
    "writer",
    [Writer("alice", "fake-hpa"), Writer("alice", "kube-controller-manager"), Writer("", "fake-hpa")],
    ids=["person", "person-with-a-controllers-manager-name", "nobody-knows"],
)
def test_a_person_or_an_unknown_writer_is_healed_every_time(writer: Writer) -> None:
    book = HealBook()
    assert not fight_after(book, writer, 10 * FIGHT_HEALS)
    assert book.state("o").backoff > 0  # still backing off, never giving up


def test_a_fight_holds_until_git_changes() -> None:
    book = HealBook()
    assert fight_after(book, Writer(HPA, "fake-hpa"), FIGHT_HEALS + 1)
    writer = Writer(HPA, "fake-hpa")
    assert not book.decide("o", writer=writer, fields=(), desired="d", now=200).heal
    assert book.decide("o", writer=writer, fields=(), desired="new", now=300).heal


def test_the_last_writer_is_the_newest_entry_that_writes_the_object() -> None:
    assert last_writer(live(("a", "2026-01-01T00:00:01Z"), ("b", "2026-01-01T00:00:02Z"))) == "b"
    assert last_writer(live(("hpa", "2026-01-01T00:00:03Z"), subresource="scale")) == "hpa"
    assert last_writer(live(("kcm", "2026-01-01T00:00:03Z"), subresource="status")) == ""
    assert Writer.of(None, None).manager == "deleted"
    assert Writer.of(live(("kubectl-edit", "t")), stamp("alice")) == Writer("alice", "kubectl-edit")


def test_a_drift_record_names_the_stamps_user_or_says_it_is_unknown() -> None:
    at = dt.datetime(2026, 11, 27, 21, tzinfo=dt.UTC)
    known = drift_record(ref="r", fields=["f"], manager="evil", user="alice", at=at, action="healed")
    assert (known["user"], known["manager"]) == ("alice", "evil")
    unknown = drift_record(ref="r", fields=["f"], manager="evil", user="", at=at, action="healed")
    assert unknown["user"] == UNKNOWN_USER and "unknown" in unknown["user"]
    assert Writer("", "evil").describe() == "an unknown user (field manager 'evil')"


OWNER = {"apiVersion": "v1", "kind": "ConfigMap", "name": "bait", "uid": "1234"}
GIT_OWNER = {"apiVersion": "v1", "kind": "ConfigMap", "name": "parent", "uid": "42"}


def test_owners_git_does_not_declare_are_removed() -> None:
    obj = {"metadata": {"ownerReferences": [GIT_OWNER, OWNER]}}
    desired = {"metadata": {"ownerReferences": [GIT_OWNER]}}
    assert stray_owners(obj, desired) == [
        {"op": "test", "path": "/metadata/ownerReferences", "value": [GIT_OWNER, OWNER]},
        {"op": "replace", "path": "/metadata/ownerReferences", "value": [GIT_OWNER]},
    ]
    assert stray_owners({"metadata": {"ownerReferences": [GIT_OWNER]}}, desired) == []
    assert stray_owners({"metadata": {}}, desired) == []
    terminating = {"metadata": {"ownerReferences": [OWNER], "deletionTimestamp": "2026-11-27T21:00:00Z"}}
    assert stray_owners(terminating, {"metadata": {}}) == []
