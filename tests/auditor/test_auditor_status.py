"""Application status: resources, history (10), operation state and conditions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from auditor.appsource import Source
from auditor.diff.objectdiff import ObjectDiff
from auditor.health import Health
from auditor.status import (
    HISTORY_LIMIT,
    PRUNE_REFUSED,
    SHARED_RESOURCE,
    SYNC_FAILED,
    ResourceResult,
    append_history,
    build_status,
    changeset_conditions,
    clear_condition,
    operation_state,
    resource_entries,
    result_for,
    set_condition,
)
from auditor.sync.changeset import Action, ChangeSet, SharedResource
from driftwarden.contract import rfc3339
from driftwarden.objectref import ObjectRef

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
SOURCE = Source("https://git.example.com/infra.git", "main", "apps/web")
DEPLOY = ObjectRef("apps", "v1", "Deployment", "prod", "web")
CM = ObjectRef("", "v1", "ConfigMap", "prod", "cfg")
OLD = ObjectRef("", "v1", "Service", "prod", "old")


def test_timestamp_is_utc_rfc3339() -> None:
    assert rfc3339(T0) == "2024-05-01T12:00:00Z"
    plus_two = datetime(2024, 5, 1, 14, 0, 0, 999, tzinfo=timezone(timedelta(hours=2)))
    assert rfc3339(plus_two) == "2024-05-01T12:00:00Z"
    with pytest.raises(ValueError, match="timezone"):
        rfc3339(datetime(2024, 5, 1))


def test_resource_entries_are_sorted_with_sync_and_health() -> None:
    diffs = [ObjectDiff(DEPLOY, "update", ("/spec/replicas",)), ObjectDiff(CM, "unchanged")]
    entries = resource_entries(
        diffs, {DEPLOY.key: Health("Progressing", "rolling"), CM.key: Health("Healthy")}
    )
    assert entries == [
        {
            "group": "",
            "version": "v1",
            "kind": "ConfigMap",
            "namespace": "prod",
            "name": "cfg",
            "status": "Synced",
            "health": {"status": "Healthy", "message": ""},
        },
        {
            "group": "apps",
            "version": "v1",
            "kind": "Deployment",
            "namespace": "prod",
            "name": "web",
            "status": "OutOfSync",
            "health": {"status": "Progressing", "message": "rolling"},
        },
    ]
    assert "health" not in resource_entries([ObjectDiff(CM, "create")], {})[0]


def test_history_appends_and_keeps_the_last_ten() -> None:
    history: list[dict[str, object]] = []
    for i in range(12):
        history = append_history(history, revision=f"sha{i}", source=SOURCE, at=T0 + timedelta(minutes=i))
    assert len(history) == HISTORY_LIMIT
    assert [h["id"] for h in history] == list(range(2, 12))
    assert history[-1] == {
        "id": 11,
        "revision": "sha11",
        "deployedAt": "2024-05-01T12:11:00Z",
        "source": {"repoURL": SOURCE.repo_url, "targetRevision": "main", "path": "apps/web"},
    }
    assert append_history([], revision="x", source=SOURCE, at=T0, limit=1)[0]["id"] == 0
    with pytest.raises(ValueError, match="limit"):
        append_history([], revision="x", source=SOURCE, at=T0, limit=0)


def test_history_does_not_mutate_its_input() -> None:
    history = append_history([], revision="a", source=SOURCE, at=T0)
    snapshot = [dict(h) for h in history]
    append_history(history, revision="b", source=SOURCE, at=T0)
    assert history == snapshot


@pytest.mark.parametrize(
    ("action", "error", "expected"),
    [
        (Action(DEPLOY, "unchanged", 2), "", None),
        (Action(DEPLOY, "update", 2), "", ResourceResult(DEPLOY, "Synced", "Deployment updated")),
        (Action(CM, "create", 2), "", ResourceResult(CM, "Synced", "ConfigMap created")),
        (Action(CM, "create", 2), "forbidden", ResourceResult(CM, "SyncFailed", "forbidden")),
        (Action(OLD, "prune", 2, pruning=True), "", ResourceResult(OLD, "Pruned", "pruned")),
        (
            Action(OLD, "skip", 2, "prune skipped: Prune=false", pruning=True),
            "",
            ResourceResult(OLD, "PruneSkipped", "prune skipped: Prune=false"),
        ),
        (Action(CM, "skip", 2, "shared"), "", ResourceResult(CM, "SyncFailed", "shared")),
    ],
)
def test_result_for(action: Action, error: str, expected: ResourceResult | None) -> None:
    assert result_for(action, error=error) == expected


def test_operation_state() -> None:
    results = [ResourceResult(DEPLOY, "Synced", "Deployment updated")]
    running = operation_state(
        phase="Running", message="syncing", revision="abc", results=results, started_at=T0, finished_at=T0
    )
    assert "finishedAt" not in running
    assert running["syncResult"] == {
        "revision": "abc",
        "resources": [
            {
                "group": "apps",
                "version": "v1",
                "kind": "Deployment",
                "namespace": "prod",
                "name": "web",
                "status": "Synced",
                "message": "Deployment updated",
            }
        ],
    }
    done = operation_state(
        phase="Succeeded",
        message="ok",
        revision="abc",
        results=[],
        started_at=T0,
        finished_at=T0 + timedelta(seconds=3),
    )
    assert done["phase"] == "Succeeded"
    assert (done["startedAt"], done["finishedAt"]) == ("2024-05-01T12:00:00Z", "2024-05-01T12:00:03Z")


def test_operation_state_names_hooks_and_the_render_it_synced() -> None:
    job = ObjectRef("batch", "v1", "Job", "prod", "migrate-x7k2p")
    results = [
        ResourceResult(job, "SyncFailed", "BackoffLimitExceeded", hook_type="PreSync", hook_phase="Failed"),
        ResourceResult(DEPLOY, "Synced", "Deployment updated"),
    ]
    state = operation_state(phase="Failed", message="hook failed", revision="abc", results=results,
                            started_at=T0, finished_at=T0, manifests_digest="d1")  # fmt: skip
    hook, plain = state["syncResult"]["resources"]
    assert (hook["hookType"], hook["hookPhase"], hook["name"]) == ("PreSync", "Failed", "migrate-x7k2p")
    assert "hookType" not in plain and "hookPhase" not in plain
    assert state["syncResult"]["manifestsDigest"] == "d1"


def test_conditions_keep_transition_time_until_the_message_changes() -> None:
    first = set_condition([], type=SYNC_FAILED, message="boom", at=T0)
    assert first == [{"type": SYNC_FAILED, "message": "boom", "lastTransitionTime": "2024-05-01T12:00:00Z"}]
    again = set_condition(first, type=SYNC_FAILED, message="boom", at=T0 + timedelta(hours=1))
    assert again == first
    changed = set_condition(again, type=SYNC_FAILED, message="bang", at=T0 + timedelta(hours=2))
    assert changed == [{"type": SYNC_FAILED, "message": "bang", "lastTransitionTime": "2024-05-01T14:00:00Z"}]
    both = set_condition(changed, type=PRUNE_REFUSED, message="empty", at=T0)
    assert [c["type"] for c in both] == [PRUNE_REFUSED, SYNC_FAILED]
    assert clear_condition(both, SYNC_FAILED) == [both[0]]
    assert clear_condition([], SYNC_FAILED) == []


def test_changeset_conditions() -> None:
    refused = ChangeSet(prune_refused="empty render", shared=(SharedResource(CM, "dw/api"),))
    conditions = changeset_conditions([], refused, at=T0)
    assert {c["type"]: c["message"] for c in conditions} == {
        PRUNE_REFUSED: "empty render",
        SHARED_RESOURCE: "shared with other Applications: ConfigMap prod/cfg (owned by dw/api)",
    }
    assert changeset_conditions(conditions, ChangeSet(), at=T0) == []


def test_build_status_shape() -> None:
    history = append_history([], revision="abc", source=SOURCE, at=T0)
    conditions = set_condition([], type=SYNC_FAILED, message="x", at=T0)
    operation = operation_state(
        phase="Failed", message="x", revision="abc", results=[], started_at=T0, finished_at=T0
    )
    status = build_status(
        sync_status="OutOfSync",
        revision="abc",
        health=Health("Degraded", "1 of 1 resources Degraded"),
        resources=[{"kind": "ConfigMap"}],
        history=history,
        conditions=conditions,
        operation=operation,
    )
    assert status == {
        "sync": {"status": "OutOfSync", "revision": "abc"},
        "health": {"status": "Degraded", "message": "1 of 1 resources Degraded"},  # written (issue 16)
        "resources": [{"kind": "ConfigMap"}],
        "history": history,
        "conditions": conditions,
        "operationState": operation,
    }
    minimal = build_status(sync_status="Synced", revision="abc", health=Health("Healthy"), resources=[])
    assert "operationState" not in minimal and minimal["history"] == [] and minimal["conditions"] == []
