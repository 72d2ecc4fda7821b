"""The warn-mode drift stamp (webhook.admission.patches)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from driftwarden.contract import rfc3339
from driftwarden.jsonpointer import escape
from tests.webhook.reviews import deployment
from webhook.admission.decision import Decision
from webhook.admission.patches import MAX_DRIFT_FIELDS, drift_patch, unstamped

AT = datetime(2026, 11, 27, 21, 30, 5, 123456, tzinfo=UTC)
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
FIELDS = ("spec.replicas", "spec.template.spec.containers[name=web].image")


def warned(**kwargs: Any) -> Decision:
    base: dict[str, Any] = {
        "allowed": True,
        "mode": "warn",
        "reason": "owned-fields-changed",
        "violation": True,
    }
    return Decision(**(base | {"fields": FIELDS} | kwargs))


def apply_patch(obj: dict[str, Any], patch: list[dict[str, Any]]) -> dict[str, Any]:
    """A minimal RFC 6902 ``add`` for the paths the stamp uses."""
    result = copy.deepcopy(obj)
    for op in patch:
        assert op["op"] == "add"
        *parents, last = [t.replace("~1", "/").replace("~0", "~") for t in op["path"].split("/")[1:]]
        target = result
        for token in parents:
            target = target[token]
        target[last] = op["value"]
    return result


def stamp(obj: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(obj["metadata"]["annotations"]["driftwarden.io/drift"]))


def test_stamps_the_drift_annotation() -> None:
    obj = deployment()
    patch = drift_patch(obj, warned(), user="jane", at=AT, traceparent=TRACEPARENT)
    assert patch is not None
    assert patch[0]["path"] == "/metadata/annotations/driftwarden.io~1drift"
    patched = apply_patch(obj, patch)
    assert stamp(patched) == {
        "user": "jane",
        "at": "2026-11-27T21:30:05Z",
        "fields": list(FIELDS),
        "traceparent": TRACEPARENT,
    }
    assert patched["metadata"]["annotations"]["driftwarden.io/tracking-id"]  # the others stay


def test_adds_the_whole_map_when_there_are_no_annotations() -> None:
    for present in (True, False):
        obj = deployment()
        if present:
            obj["metadata"]["annotations"] = None
        else:
            del obj["metadata"]["annotations"]
        patch = drift_patch(obj, warned(), user="jane", at=AT)
        assert patch is not None and patch[0]["path"] == "/metadata/annotations"
        assert stamp(apply_patch(obj, patch))["user"] == "jane"


def test_adds_metadata_when_missing() -> None:
    patch = drift_patch({"kind": "ConfigMap"}, warned(), user="jane", at=AT)
    assert patch is not None and patch[0]["path"] == "/metadata"
    assert stamp(apply_patch({"kind": "ConfigMap"}, patch))["fields"] == list(FIELDS)


def test_idempotent_under_reinvocation() -> None:
    obj = deployment()
    first = drift_patch(obj, warned(), user="jane", at=AT, traceparent=TRACEPARENT)
    assert first is not None
    later = AT + timedelta(seconds=1)
    assert drift_patch(apply_patch(obj, first), warned(), user="jane", at=later, traceparent="other") is None
    # Another user or other fields: a new stamp.
    assert drift_patch(apply_patch(obj, first), warned(), user="bob", at=later) is not None
    assert (
        drift_patch(apply_patch(obj, first), warned(fields=("spec.replicas",)), user="jane", at=later)
        is not None
    )


@pytest.mark.parametrize(
    ("obj", "decision"),
    [
        pytest.param(deployment(), warned(mode="enforce", allowed=False), id="enforce"),
        pytest.param(deployment(), warned(mode="off"), id="off"),
        pytest.param(deployment(), warned(violation=False, reason="no-owned-fields"), id="no-violation"),
        pytest.param(None, warned(), id="delete-has-no-object"),
        pytest.param({"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": {}}, warned(), id="scale"),
        pytest.param({"metadata": "garbage"}, warned(), id="garbage-metadata"),
    ],
)
def test_nothing_to_stamp(obj: Any, decision: Decision) -> None:
    assert drift_patch(obj, decision, user="jane", at=AT) is None


def test_fields_are_capped() -> None:
    many = tuple(f"metadata.labels.l{i}" for i in range(200))
    patch = drift_patch(deployment(), warned(fields=many), user="jane", at=AT)
    assert patch is not None
    fields = json.loads(patch[0]["value"])["fields"]
    assert len(fields) == MAX_DRIFT_FIELDS and fields[-1] == "and 151 more"


def test_time_is_rfc3339_utc() -> None:
    assert (
        rfc3339(datetime(2026, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2)))) == "2026-01-02T03:04:05Z"
    )
    with pytest.raises(ValueError, match="timezone-aware"):
        rfc3339(datetime(2026, 1, 2))  # naive: the point of the test


def test_escape_pointer() -> None:
    assert escape("a/b~c") == "a~1b~0c"


def test_unstamped_tells_a_warned_edit_that_reaches_validate_without_its_stamp() -> None:
    obj = deployment()
    assert unstamped(obj, warned(), user="jane")  # /mutate never ran on it
    patch = drift_patch(obj, warned(), user="jane", at=AT, traceparent=TRACEPARENT)
    assert patch is not None
    stamped = apply_patch(obj, patch)
    assert not unstamped(stamped, warned(), user="jane")  # /mutate ran: its stamp is there
    assert unstamped(stamped, warned(), user="bob")  # another user's stamp is not this edit's
    assert unstamped(stamped, warned(fields=("spec.replicas",)), user="jane")


@pytest.mark.parametrize(
    ("obj", "decision"),
    [
        pytest.param(deployment(), warned(mode="enforce", allowed=False), id="enforce"),
        pytest.param(deployment(), warned(mode="off"), id="off"),
        pytest.param(deployment(), warned(violation=False, reason="no-owned-fields"), id="no-violation"),
        pytest.param(deployment(), warned(reason="gitops-identity"), id="gitops-identity"),
        pytest.param(None, warned(), id="delete-has-no-object"),
        pytest.param({"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": {}}, warned(), id="scale"),
        pytest.param({"metadata": "garbage"}, warned(), id="garbage-metadata"),
    ],
)
def test_unstamped_is_quiet_where_mutate_stamps_nothing(obj: Any, decision: Decision) -> None:
    assert not unstamped(obj, decision, user="jane")
