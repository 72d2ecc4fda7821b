"""Pure formatting of ``driftwarden app``: kubectl-like ages, aligned tables, JSON/YAML, details, diffs."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from auditor.diff.failures import failed_diff
from auditor.diff.objectdiff import diff_object
from cli import appview

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (-5, "0s"), (0, "0s"), (45, "45s"), (119, "119s"), (120, "2m"), (423, "7m3s"), (599, "9m59s"),
        (600, "10m"), (95 * 60, "95m"), (3 * 3600, "3h"), (5 * 3600 + 12 * 60, "5h12m"), (30 * 3600, "30h"),
        (3 * 86400 + 4 * 3600, "3d4h"), (8 * 86400, "8d"), (400 * 86400, "400d"),
        (3 * 365 * 86400 + 86400, "3y1d"), (9 * 365 * 86400, "9y"),
    ],
)  # fmt: skip
def test_ages_are_shortened_like_kubectl(seconds: int, shown: str) -> None:
    created = (NOW - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert appview.human_age(created, now=NOW) == shown


def test_an_unreadable_creation_time_is_unknown() -> None:
    assert appview.human_age("yesterday", now=NOW) == "<unknown>"
    assert appview.human_age(None, now=NOW) == "<unknown>"


def test_tables_align_columns_three_spaces_apart_with_empty_cells() -> None:
    text = appview.table(["GROUP", "KIND", "NAME"], [["", "ConfigMap", "a"], ["apps", "Deployment", "web"]])
    assert text.splitlines() == [
        "GROUP   KIND         NAME",
        "        ConfigMap    a",
        "apps    Deployment   web",
    ]


def _app(**status: Any) -> dict[str, Any]:
    source = {"repoURL": "https://git.example/infra.git", "path": "apps/web", "targetRevision": "main"}
    return {
        "apiVersion": "driftwarden.io/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": "web",
            "namespace": "driftwarden-system",
            "creationTimestamp": "2026-03-01T11:00:00Z",
        },
        "spec": {
            "source": source,
            "destination": {"namespace": "prod"},
            "syncPolicy": {"automated": {"prune": True}},
        },
        "status": status,
    }


def test_list_view_short_revision_wide_columns_and_namespaces() -> None:
    app = _app(sync={"status": "OutOfSync", "revision": "0123456789abcdef"}, health={"status": "Degraded"})
    (header, row) = appview.list_view([app], now=NOW, wide=True, all_namespaces=True).splitlines()
    assert header.split() == [
        "NAMESPACE",
        "NAME",
        "SYNC",
        "HEALTH",
        "REVISION",
        "AGE",
        "REPO",
        "PATH",
        "TARGET",
    ]
    assert row.split() == ["driftwarden-system", "web", "OutOfSync", "Degraded", "0123456", "60m",
                           "https://git.example/infra.git", "apps/web", "main"]  # fmt: skip
    (_, bare) = appview.list_view([_app()], now=NOW).splitlines()
    assert bare.split() == ["web", "Unknown", "Unknown", "60m"]


def test_detail_view_names_policy_status_conditions_and_resources() -> None:
    condition = {
        "type": "SharedResource",
        "message": "shared with x",
        "lastTransitionTime": "2026-03-01T11:30:00Z",
    }
    resource = {"group": "apps", "kind": "Deployment", "namespace": "prod", "name": "web", "status": "Synced",
                "health": {"status": "Progressing", "message": "0 of 2 updated"}}  # fmt: skip
    app = _app(
        sync={"status": "Synced", "revision": "fedcba9876543210"},
        health={"status": "Healthy"},
        conditions=[condition],
        resources=[resource],
    )
    text = appview.detail_view(app, wide=True)
    fields = dict(line.split(":", 1) for line in text.split("\n\n")[0].splitlines())
    assert {k: v.strip() for k, v in fields.items()} == {
        "Name": "web", "Namespace": "driftwarden-system", "Repo": "https://git.example/infra.git",
        "Path": "apps/web", "Target": "main", "Destination": "prod", "Sync Policy": "Automated (Prune)",
        "Guard": "enforce", "Sync Status": "Synced to main (fedcba9)", "Health Status": "Healthy",
    }  # fmt: skip
    assert "SharedResource   shared with x   2026-03-01T11:30:00Z" in text
    last = text.rstrip().splitlines()[-1]
    assert last == "apps    Deployment   prod        web    Synced   Progressing   0 of 2 updated"


def test_detail_view_lists_the_last_syncs_hooks_and_results_name_them() -> None:
    """Hooks are in ``operationState`` only (never in ``resources``): ``app get`` shows them from there."""
    hook = {"group": "batch", "version": "v1", "kind": "Job", "namespace": "prod", "name": "migrate",
            "status": "SyncFailed", "message": "Job has reached the specified backoff limit",
            "hookType": "PreSync", "hookPhase": "Failed"}  # fmt: skip
    plain = {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "prod", "name": "web",
             "status": "Synced", "message": "Deployment created"}  # fmt: skip
    state = {
        "phase": "Failed",
        "message": "hook Job prod/migrate failed",
        "syncResult": {"resources": [hook, plain]},
    }
    text = appview.detail_view(_app(sync={"status": "OutOfSync"}, operationState=state))
    (header, row) = [line for line in text.splitlines() if line.startswith(("HOOK", "PreSync"))]
    assert header.split() == ["HOOK", "KIND", "NAMESPACE", "NAME", "PHASE", "MESSAGE"]
    assert row.split()[:5] == ["PreSync", "Job", "prod", "migrate", "Failed"]
    assert "Deployment" not in text.split("HOOK", 1)[1].split("No resources", 1)[0]
    results = appview.results_view([hook, plain]).splitlines()
    assert results[0].split()[-1] == "HOOK"
    assert results[1].split()[-1] == "PreSync/Failed"
    assert results[2].split()[-1] == "created"  # no hook column value for a resource


def test_json_and_yaml_round_trip_and_lists_look_like_kubectls() -> None:
    items = [_app(sync={"status": "Synced"})]
    assert json.loads(appview.dump(appview.as_list(items), "json"))["items"] == items
    assert yaml.safe_load(appview.dump(items[0], "yaml")) == items[0]
    assert appview.as_list(items)["kind"] == "List"
    with pytest.raises(ValueError, match="unknown output format"):
        appview.dump(items, "xml")


def test_diff_view_prints_only_what_differs_with_its_changed_paths() -> None:
    live = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "p"},
        "data": {"k": "a"},
    }
    want = {**live, "data": {"k": "b"}}
    gone = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "old", "namespace": "p"}}
    text = appview.diff_view([diff_object(want, live), diff_object(live, live), diff_object(None, gone)])
    assert text.count("=====") == 4  # two headers, one per differing object
    assert "===== ConfigMap p/c (update) =====\nchanged: /data/k\n" in text
    assert "===== Service p/old (prune: no longer in Git) =====" in text
    assert "-  k: a\n" in text and "+  k: b\n" in text


def test_detail_view_shows_the_health_message_and_each_objects_reason_when_wide() -> None:
    reason = "dry run failed: PATCH ...: 422 Invalid: field is immutable"
    resources = [
        {"group": "", "kind": "ConfigMap", "namespace": "prod", "name": "frozen", "status": "OutOfSync",
         "message": reason, "health": {"status": "Healthy", "message": ""}},
        {"group": "apps", "kind": "Deployment", "namespace": "prod", "name": "web", "status": "Synced",
         "health": {"status": "Progressing", "message": "Waiting for rollout to finish"}},
    ]  # fmt: skip
    health = {"status": "Progressing", "message": "1 of 2 resources Progressing"}
    app = _app(sync={"status": "OutOfSync"}, health=health, resources=resources)
    text = appview.detail_view(app, wide=True)
    assert re.search(r"^Health Status:\s+Progressing \(1 of 2 resources Progressing\)$", text, re.MULTILINE)
    assert re.search(r"frozen\s+OutOfSync\s+Healthy\s+" + re.escape(reason) + "$", text, re.MULTILINE)
    assert re.search(r"web\s+Synced\s+Progressing\s+Waiting for rollout to finish$", text, re.MULTILINE)
    assert re.search(r"^Health Status:\s+Healthy$", appview.detail_view(_app(health={"status": "Healthy"})),
                     re.MULTILINE)  # fmt: skip


def test_diff_view_says_why_an_object_could_not_be_compared() -> None:
    """A refused dry run (here the webhook's denial, as when a person diffs in enforce mode) has no diff:
    the API server's reason stands under the header instead of nothing."""
    live = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "p"}}
    reason = "dry run failed: PATCH ...: 403 Forbidden: admission webhook denied the request"
    refused = failed_diff(live, live)
    text = appview.diff_view([refused], {refused.ref.key: reason})
    assert text == f"===== Secret p/db (update) =====\n{reason}\n"
    assert appview.diff_view([refused]) == "===== Secret p/db (update) =====\n"  # no reason known: as before
