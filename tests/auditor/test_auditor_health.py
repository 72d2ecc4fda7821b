"""Per-kind health (gitops-engine's rules) and the worst-first aggregate."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.health import HEALTH_ORDER, Health, HealthStatus, aggregate, is_worse, resource_health


def make(api_version: str, kind: str, spec: Any = None, status: Any = None, **meta: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x", **meta}}
    if spec is not None:
        obj["spec"] = spec
    if status is not None:
        obj["status"] = status
    return obj


def deploy(spec: dict[str, Any], status: dict[str, Any], generation: int = 2) -> dict[str, Any]:
    return make("apps/v1", "Deployment", {"replicas": 3, **spec}, status, generation=generation)


READY = {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}
DEADLINE = {"conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}
STS_READY = {"observedGeneration": 1, "readyReplicas": 2, "updatedReplicas": 2}
STS_REV = {**STS_READY, "currentRevision": "r1", "updateRevision": "r1"}
DS_READY = {
    "observedGeneration": 1,
    "desiredNumberScheduled": 3,
    "updatedNumberScheduled": 3,
    "numberAvailable": 3,
}


def condition(kind: str, status: str = "True", **extra: str) -> dict[str, Any]:
    return {"conditions": [{"type": kind, "status": status, **extra}]}


def pod(policy: str, phase: str, **status: Any) -> dict[str, Any]:
    return make("v1", "Pod", {"restartPolicy": policy}, {"phase": phase, **status})


def sts(status: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return make("apps/v1", "StatefulSet", {"replicas": 2, **spec}, status, generation=1)


def ds(status: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return make("apps/v1", "DaemonSet", spec, {**DS_READY, **status}, generation=1)


def rs(status: dict[str, Any]) -> dict[str, Any]:
    return make("apps/v1", "ReplicaSet", {"replicas": 2}, {"observedGeneration": 1, **status}, generation=1)


def lb(kind: str, api_version: str, status: dict[str, Any]) -> dict[str, Any]:
    return make(api_version, kind, {"type": "LoadBalancer"}, {"loadBalancer": status})


def crd(status: dict[str, Any]) -> dict[str, Any]:
    return make("apiextensions.k8s.io/v1", "CustomResourceDefinition", {}, status)


def api(status: dict[str, Any]) -> dict[str, Any]:
    return make("apiregistration.k8s.io/v1", "APIService", {}, status)


def waiting(reason: str) -> dict[str, Any]:
    return {"containerStatuses": [{"name": "c", "state": {"waiting": {"reason": reason, "message": reason}}}]}


PARTITIONED = {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}}
RESTARTED = {"containerStatuses": [{"name": "c", "lastState": {"terminated": {"exitCode": 1}}}]}
EXITED = {"containerStatuses": [{"name": "c", "state": {"terminated": {"exitCode": 2}}}]}
LB_READY = {"ingress": [{"ip": "1.2.3.4"}]}

CASES: list[tuple[str, dict[str, Any] | None, HealthStatus]] = [
    ("absent object", None, "Missing"),
    ("being deleted", make("v1", "ConfigMap", deletionTimestamp="2024-01-01T00:00:00Z"), "Progressing"),
    ("plain kind", make("v1", "ConfigMap"), "Healthy"),
    ("custom resource", make("example.com/v1", "Widget", status={"phase": "Broken"}), "Healthy"),
    ("deployment ready", deploy({}, READY), "Healthy"),
    ("deployment paused", deploy({"paused": True}, {}), "Suspended"),
    ("deployment generation not observed", deploy({}, {**READY, "observedGeneration": 1}), "Progressing"),
    ("deployment deadline exceeded", deploy({}, {**READY, **DEADLINE}), "Degraded"),
    ("deployment updating", deploy({}, {**READY, "updatedReplicas": 1}), "Progressing"),
    ("deployment old replicas", deploy({}, {**READY, "replicas": 4}), "Progressing"),
    ("deployment unavailable", deploy({}, {**READY, "availableReplicas": 2}), "Progressing"),
    ("deployment malformed", deploy({}, {**READY, "replicas": "three"}), "Unknown"),
    ("extensions deployment", {**deploy({}, READY), "apiVersion": "extensions/v1beta1"}, "Healthy"),
    ("statefulset partitioned done", sts(STS_READY, **PARTITIONED), "Healthy"),
    ("statefulset partition pending", sts({**STS_READY, "updatedReplicas": 1}, **PARTITIONED), "Progressing"),
    ("statefulset not observed", sts({}), "Progressing"),
    ("statefulset pods not ready", sts({**STS_REV, "readyReplicas": 1}), "Progressing"),
    ("statefulset revision rolling", sts({**STS_REV, "updateRevision": "r2"}), "Progressing"),
    ("statefulset revision done", sts(STS_REV), "Healthy"),
    (
        "statefulset on delete",
        sts({**STS_REV, "updateRevision": "r2"}, updateStrategy={"type": "OnDelete"}),
        "Healthy",
    ),
    ("daemonset ready", ds({}), "Healthy"),
    ("daemonset updating", ds({"updatedNumberScheduled": 2}), "Progressing"),
    ("daemonset unavailable", ds({"numberAvailable": 1}), "Progressing"),
    ("daemonset not observed", ds({"observedGeneration": 0}), "Progressing"),
    ("daemonset on delete", ds({"numberAvailable": 0}, updateStrategy={"type": "OnDelete"}), "Healthy"),
    ("replicaset ready", rs({"availableReplicas": 2}), "Healthy"),
    ("replicaset short", rs({"availableReplicas": 1}), "Progressing"),
    ("replicaset failure", rs(condition("ReplicaFailure", message="quota")), "Degraded"),
    ("service cluster ip", make("v1", "Service", {"type": "ClusterIP"}), "Healthy"),
    ("service lb pending", lb("Service", "v1", {}), "Progressing"),
    ("service lb ready", lb("Service", "v1", LB_READY), "Healthy"),
    ("ingress pending", lb("Ingress", "networking.k8s.io/v1", {}), "Progressing"),
    ("ingress ready", lb("Ingress", "networking.k8s.io/v1", LB_READY), "Healthy"),
    ("pvc bound", make("v1", "PersistentVolumeClaim", {}, {"phase": "Bound"}), "Healthy"),
    ("pvc pending", make("v1", "PersistentVolumeClaim", {}, {"phase": "Pending"}), "Progressing"),
    ("pvc lost", make("v1", "PersistentVolumeClaim", {}, {"phase": "Lost"}), "Degraded"),
    ("pvc odd", make("v1", "PersistentVolumeClaim", {}, {}), "Unknown"),
    ("job complete", make("batch/v1", "Job", {}, condition("Complete")), "Healthy"),
    (
        "job failed",
        make("batch/v1", "Job", {}, condition("Failed", message="BackoffLimitExceeded")),
        "Degraded",
    ),
    ("job running", make("batch/v1", "Job", {}, {"active": 1}), "Progressing"),
    ("job suspended", make("batch/v1", "Job", {"suspend": True}, condition("Suspended")), "Suspended"),
    ("job suspend requested", make("batch/v1", "Job", {"suspend": True}, {}), "Suspended"),
    ("pod always ready", pod("Always", "Running", **condition("Ready")), "Healthy"),
    ("pod always not ready", pod("Always", "Running", **condition("Ready", "False")), "Progressing"),
    ("pod always restarted", pod("Always", "Running", **RESTARTED), "Degraded"),
    ("pod crash loop", pod("Always", "Running", **waiting("CrashLoopBackOff")), "Degraded"),
    ("pod image pull", pod("Always", "Pending", **waiting("ErrImagePull")), "Degraded"),
    ("pod pending", pod("Always", "Pending"), "Progressing"),
    ("pod never running ready", pod("Never", "Running", **condition("Ready")), "Progressing"),
    ("pod onfailure running", pod("OnFailure", "Running"), "Progressing"),
    ("pod never succeeded", pod("Never", "Succeeded"), "Healthy"),
    ("pod never crash loop ignored", pod("Never", "Running", **waiting("CrashLoopBackOff")), "Progressing"),
    ("pod failed", pod("Never", "Failed", **EXITED), "Degraded"),
    ("pod unknown phase", pod("Always", "Unknown"), "Unknown"),
    ("apiservice available", api(condition("Available")), "Healthy"),
    ("apiservice unavailable", api(condition("Available", "False")), "Progressing"),
    ("apiservice unprocessed", api({}), "Progressing"),
    ("crd established", crd(condition("Established")), "Healthy"),
    ("crd not established", crd(condition("Established", "False")), "Degraded"),
    ("crd names rejected", crd(condition("NamesAccepted", "False")), "Degraded"),
    ("crd no conditions", crd({}), "Progressing"),
]


@pytest.mark.parametrize(("case", "live", "expected"), CASES, ids=[c[0] for c in CASES])
def test_resource_health(case: str, live: dict[str, Any] | None, expected: HealthStatus) -> None:
    assert resource_health(live).status == expected


def test_messages_explain_the_state() -> None:
    assert (
        resource_health(deploy({}, {**READY, **DEADLINE})).message
        == "Deployment 'x' exceeded its progress deadline"
    )
    failed = make("batch/v1", "Job", {}, condition("Failed", message="BackoffLimitExceeded"))
    assert resource_health(failed).message == "BackoffLimitExceeded"
    exit_code = pod(
        "Never", "Failed", containerStatuses=[{"name": "c", "state": {"terminated": {"exitCode": 2}}}]
    )
    assert resource_health(exit_code).message == "container 'c' failed with exit code 2"
    assert resource_health(None) == Health("Missing", "resource does not exist")


def test_order_matches_gitops_engine() -> None:
    assert HEALTH_ORDER == ("Healthy", "Suspended", "Progressing", "Missing", "Degraded", "Unknown")
    assert is_worse("Healthy", "Missing")
    assert is_worse("Missing", "Degraded")
    assert not is_worse("Degraded", "Progressing")
    assert not is_worse("Healthy", "Healthy")


def test_aggregate_picks_the_worst() -> None:
    assert aggregate([]) == Health("Healthy")
    assert aggregate([Health("Healthy"), Health("Healthy")]) == Health("Healthy")
    assert aggregate([Health("Healthy"), Health("Missing"), Health("Progressing")]).status == "Missing"
    mixed = aggregate([Health("Degraded"), Health("Suspended"), Health("Degraded"), Health("Healthy")])
    assert mixed == Health("Degraded", "2 of 4 resources Degraded")


@settings(max_examples=200)
@given(st.lists(st.sampled_from(HEALTH_ORDER)))
def test_aggregate_is_never_better_than_any_part(statuses: list[HealthStatus]) -> None:
    result = aggregate(Health(s) for s in statuses)
    assert all(not is_worse(result.status, s) for s in statuses)
    assert result.status in [*statuses, "Healthy"]


# Argo Rollouts, as Argo CD's health.lua judges them (its testdata: healthy, paused, aborted, progressing).
ROLLOUT_STATUS = {
    "observedGeneration": "1", "currentPodHash": "abc", "stableRS": "abc", "replicas": 3,
    "updatedReplicas": 3, "availableReplicas": 3, "readyReplicas": 3,
}  # fmt: skip


def rollout(spec: dict[str, Any], status: dict[str, Any] | None, generation: int = 1) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "web", "generation": generation}, "spec": {"replicas": 3, **spec},
    }  # fmt: skip
    if status is not None:
        obj["status"] = status
    return obj


ABORTED = "RolloutAborted: Rollout aborted update to revision 2"
CANARY = {"strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}}}
BLUE_GREEN = {"strategy": {"blueGreen": {"activeService": "web", "previewService": "web-preview"}}}


@pytest.mark.parametrize(
    ("case", "live", "expected", "message"),
    [
        ("canary healthy", rollout(CANARY, ROLLOUT_STATUS), "Healthy", ""),
        (
            "blue-green healthy",
            rollout(BLUE_GREEN, {**ROLLOUT_STATUS, "blueGreen": {"activeSelector": "abc"}}),
            "Healthy",
            "",
        ),
        ("v1.0 phase Healthy", rollout(CANARY, {**ROLLOUT_STATUS, "phase": "Healthy"}), "Healthy", ""),
        (
            "v1.0 phase Paused",
            rollout(CANARY, {**ROLLOUT_STATUS, "phase": "Paused", "message": "CanaryPauseStep"}),
            "Suspended",
            "CanaryPauseStep",
        ),
        (
            "v1.0 phase Degraded",
            rollout(CANARY, {**ROLLOUT_STATUS, "phase": "Degraded", "message": ABORTED}),
            "Degraded",
            ABORTED,
        ),
        (
            "paused by a step",
            rollout(CANARY, {**ROLLOUT_STATUS, "pauseConditions": [{"reason": "CanaryPauseStep"}]}),
            "Suspended",
            "Rollout is paused",
        ),
        (
            "paused by spec",
            rollout({**CANARY, "paused": True}, ROLLOUT_STATUS),
            "Suspended",
            "Rollout is paused",
        ),
        (
            "aborted",
            rollout(
                CANARY,
                {
                    **ROLLOUT_STATUS,
                    "conditions": [
                        {"type": "Progressing", "reason": "RolloutAborted", "message": "Rollout is aborted"}
                    ],
                },
            ),
            "Degraded",
            "Rollout is aborted",
        ),
        (
            "invalid spec",
            rollout(
                CANARY,
                {
                    **ROLLOUT_STATUS,
                    "conditions": [{"type": "InvalidSpec", "message": "The Rollout is invalid"}],
                },
            ),
            "Degraded",
            "The Rollout is invalid",
        ),
        (
            "generation not observed",
            rollout(CANARY, ROLLOUT_STATUS, generation=2),
            "Progressing",
            "Waiting for rollout spec update to be observed",
        ),
        ("no status", rollout(CANARY, None), "Progressing", "Waiting for rollout spec update to be observed"),
        (
            "not reconciled",
            rollout(CANARY, {"observedGeneration": "1"}),
            "Progressing",
            "Waiting for rollout to finish: status has not been reconciled.",
        ),
        (
            "replicas to update",
            rollout(CANARY, {**ROLLOUT_STATUS, "updatedReplicas": 1}),
            "Progressing",
            "Waiting for roll out to finish: More replicas need to be updated",
        ),
        (
            "canary old replicas",
            rollout(CANARY, {**ROLLOUT_STATUS, "replicas": 4}),
            "Progressing",
            "Waiting for roll out to finish: old replicas are pending termination",
        ),
        (
            "blue-green old replicas (scale-down delay)",
            rollout(BLUE_GREEN, {**ROLLOUT_STATUS, "replicas": 6, "blueGreen": {"activeSelector": "abc"}}),
            "Healthy",
            "",
        ),
        (
            "unavailable",
            rollout(CANARY, {**ROLLOUT_STATUS, "availableReplicas": 2}),
            "Progressing",
            "Waiting for roll out to finish: updated replicas are still becoming available",
        ),
        (
            "canary steps",
            rollout(CANARY, {**ROLLOUT_STATUS, "stableRS": "old"}),
            "Progressing",
            "waiting for rollout to finish steps",
        ),
        (
            "blue-green cutover",
            rollout(BLUE_GREEN, {**ROLLOUT_STATUS, "blueGreen": {"activeSelector": "old"}}),
            "Progressing",
            "active service cutover pending",
        ),
        (
            "blue-green analysis",
            rollout(
                BLUE_GREEN, {**ROLLOUT_STATUS, "stableRS": "old", "blueGreen": {"activeSelector": "abc"}}
            ),
            "Progressing",
            "waiting for analysis to complete",
        ),
    ],
)
def test_rollout_health(case: str, live: dict[str, Any], expected: HealthStatus, message: str) -> None:
    assert resource_health(live) == Health(expected, message), case


def child(health: dict[str, Any] | None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "driftwarden.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "c"},
    }
    if health is not None:
        obj["status"] = {"health": health}
    return obj


@pytest.mark.parametrize(
    ("health", "expected"),
    [
        ({"status": "Healthy"}, Health("Healthy")),
        (
            {"status": "Degraded", "message": "1 of 2 resources Degraded"},
            Health("Degraded", "1 of 2 resources Degraded"),
        ),
        (
            {"status": "Progressing", "message": "1 of 2 resources Progressing"},
            Health("Progressing", "1 of 2 resources Progressing"),
        ),
        (
            {"status": "Missing", "message": "1 of 1 resources Missing"},
            Health("Progressing", "1 of 1 resources Missing"),
        ),
        ({"status": "Suspended"}, Health("Suspended")),
        (None, Health("Progressing", "Waiting for the Application's first health assessment")),
    ],
)
def test_a_child_application_reflects_its_own_health(health: dict[str, Any] | None, expected: Health) -> None:
    assert resource_health(child(health)) == expected


def test_an_object_stuck_on_a_finalizer_says_which_and_since_when() -> None:
    meta = {
        "name": "c",
        "deletionTimestamp": "2026-12-03T10:00:00Z",
        "finalizers": ["example.com/hold", "b/c"],
    }
    stuck = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}
    assert resource_health(stuck) == Health(
        "Progressing",
        "Pending deletion since 2026-12-03T10:00:00Z: waiting for finalizers example.com/hold, b/c",
    )
