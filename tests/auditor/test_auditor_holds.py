"""Break-glass holds (auditor.holds): when one begins, what it records, and when it ends."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from auditor.holds import begin, ended, from_entry, git_digest, holds_of
from driftwarden import contract
from driftwarden.objectref import ObjectRef

T0 = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)
REF = ObjectRef("apps", "v1", "Deployment", "prod", "web")
POINTER = "/spec/template/spec/containers/0/image"
GIT: dict[str, Any] = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "prod"},
    "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}},
}  # fmt: skip


def live(*, marked: bool = True) -> dict[str, Any]:
    obj = copy.deepcopy(GIT)
    obj["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:hotfix"
    if marked:
        obj["metadata"]["annotations"] = {contract.ANNOTATION_HOLD: "{}"}
    return obj


def test_a_hold_lasts_its_time_and_survives_changes_to_other_fields() -> None:
    hold = begin(REF, user="sre", fields=[POINTER], manifest=GIT, now=T0, seconds=3600)
    assert hold.until == T0 + dt.timedelta(hours=1)
    assert ended(hold, now=T0 + dt.timedelta(minutes=59), live=live(), manifest=GIT) == ""
    other = copy.deepcopy(GIT)
    other["spec"]["replicas"] = 3
    assert ended(hold, now=T0, live=live(), manifest=other) == ""


def test_a_hold_ends_on_expiry_a_git_change_of_its_fields_or_release() -> None:
    hold = begin(REF, user="sre", fields=[POINTER], manifest=GIT, now=T0, seconds=900)
    assert ended(hold, now=T0 + dt.timedelta(minutes=15), live=live(), manifest=GIT) == "expired after 15m"
    newer = copy.deepcopy(GIT)
    newer["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.28"
    assert ended(hold, now=T0, live=live(), manifest=newer).startswith("Git changed /spec/template")
    assert ended(hold, now=T0, live=live(marked=False), manifest=GIT).startswith("released")
    assert ended(hold, now=T0, live=None, manifest=GIT) == "the object was deleted"


def test_a_second_break_glass_edit_widens_and_renews_the_hold() -> None:
    first = begin(REF, user="sre", fields=[POINTER], manifest=GIT, now=T0, seconds=60)
    later = T0 + dt.timedelta(seconds=30)
    second = begin(REF, user="sre", fields=["/spec/replicas"], manifest=GIT, now=later, seconds=60,
                   previous=first)  # fmt: skip
    assert second.fields == (POINTER, "/spec/replicas")
    assert second.until == T0 + dt.timedelta(seconds=90)
    assert second.git == git_digest(GIT, [POINTER, "/spec/replicas"])


def test_status_entries_round_trip_and_garbage_is_no_hold() -> None:
    hold = begin(REF, user="sre", fields=[POINTER], manifest=GIT, now=T0, seconds=60)
    assert from_entry(hold.entry()) == hold
    assert holds_of({"holds": [hold.entry(), {"name": "x"}, "junk"]}) == {REF.key: hold}
    assert hold.entry()["until"] == "2026-05-01T12:01:00Z" and hold.entry()["object"] == str(REF)
