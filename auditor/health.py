"""Health of live objects by kind, following Argo CD's gitops-engine rules, and the worst-first aggregate.

Order from healthiest to worst is gitops-engine's: Healthy, Suspended, Progressing, Missing, Degraded,
Unknown. Kinds without a rule are Healthy; an absent object is Missing; an object being deleted is
Progressing (saying since when and which finalizers hold it); a malformed status is Unknown. Beyond
Kubernetes' own kinds: Argo Rollouts' ``Rollout`` (Argo CD's health.lua) and driftwarden's own
``Application``, so an app-of-apps parent reflects its children (auditor.healthcrds). Pure: reads plain
dicts, no I/O, no logging.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from auditor import healthcrds
from auditor.healthcore import (
    HEALTH_ORDER,
    HEALTHY,
    Health,
    HealthStatus,
    Obj,
    condition_of,
    field,
    generation_pending,
    integer,
    progressing,
)

__all__ = ["HEALTHY", "HEALTH_ORDER", "Health", "HealthStatus", "aggregate", "deletion_message", "is_worse",
           "resource_health"]  # fmt: skip


def is_worse(current: HealthStatus, new: HealthStatus) -> bool:
    """True when ``new`` is a worse health than ``current``."""
    return HEALTH_ORDER.index(new) > HEALTH_ORDER.index(current)


def aggregate(healths: Iterable[Health]) -> Health:
    """The worst status among ``healths`` (Healthy when there are none), with a count in the message."""
    items = list(healths)
    worst: HealthStatus = max((item.status for item in items), key=HEALTH_ORDER.index, default="Healthy")
    if worst == "Healthy":
        return HEALTHY
    count = sum(1 for item in items if item.status == worst)
    return Health(worst, f"{count} of {len(items)} resources {worst}")


def _deployment_gate(obj: Obj) -> Health | None:
    if field(obj, "spec", "paused") is True:
        return Health("Suspended", "Deployment is paused")
    if generation_pending(obj):
        return progressing("Waiting for rollout to finish: observed generation is older than the spec")
    if condition_of(obj, "Progressing").get("reason") == "ProgressDeadlineExceeded":
        name = field(obj, "metadata", "name")
        return Health("Degraded", f"Deployment {name!r} exceeded its progress deadline")
    return None


def _deployment_replicas(obj: Obj) -> Health | None:
    updated, total = integer(obj, "status", "updatedReplicas"), integer(obj, "status", "replicas")
    available, wanted = integer(obj, "status", "availableReplicas"), integer(obj, "spec", "replicas")
    if field(obj, "spec", "replicas") is not None and updated < wanted:
        return progressing(f"Waiting for rollout to finish: {updated} of {wanted} new replicas updated")
    if total > updated:
        return progressing(
            f"Waiting for rollout to finish: {total - updated} old replicas pending termination"
        )
    if available < updated:
        return progressing(
            f"Waiting for rollout to finish: {available} of {updated} updated replicas available"
        )
    return None


def _deployment(obj: Obj) -> Health:
    return _deployment_gate(obj) or _deployment_replicas(obj) or HEALTHY


def _statefulset_gate(obj: Obj) -> Health | None:
    if integer(obj, "status", "observedGeneration") == 0 or generation_pending(obj):
        return progressing("Waiting for statefulset spec update to be observed")
    wanted, ready = integer(obj, "spec", "replicas"), integer(obj, "status", "readyReplicas")
    if field(obj, "spec", "replicas") is not None and ready < wanted:
        return progressing(f"Waiting for {wanted - ready} pods to be ready")
    return None


def _statefulset_rollout(obj: Obj) -> Health:
    strategy = field(obj, "spec", "updateStrategy") or {}
    updated, wanted = integer(obj, "status", "updatedReplicas"), integer(obj, "spec", "replicas")
    if strategy.get("type", "RollingUpdate") == "RollingUpdate" and strategy.get("rollingUpdate") is not None:
        partition = integer(strategy, "rollingUpdate", "partition")
        if field(obj, "spec", "replicas") is not None and updated < wanted - partition:
            return progressing(f"Waiting for partitioned roll out: {updated} of {wanted - partition} updated")
        return Health("Healthy", f"partitioned roll out complete: {updated} new pods updated")
    if strategy.get("type") == "OnDelete":
        return Health("Healthy", f"statefulset has {integer(obj, 'status', 'readyReplicas')} ready pods")
    revision = field(obj, "status", "updateRevision")
    if revision != field(obj, "status", "currentRevision"):
        return progressing(f"Waiting for rolling update to complete: {updated} pods at revision {revision}")
    return Health("Healthy", f"rolling update complete at revision {revision}")


def _statefulset(obj: Obj) -> Health:
    return _statefulset_gate(obj) or _statefulset_rollout(obj)


def _daemonset(obj: Obj) -> Health:
    if generation_pending(obj):
        return progressing("Waiting for rollout to finish: observed generation is older than the spec")
    if field(obj, "spec", "updateStrategy", "type") == "OnDelete":
        return HEALTHY
    wanted = integer(obj, "status", "desiredNumberScheduled")
    updated, available = (
        integer(obj, "status", "updatedNumberScheduled"),
        integer(obj, "status", "numberAvailable"),
    )
    if updated < wanted:
        return progressing(f"Waiting for daemon set rollout: {updated} of {wanted} new pods updated")
    if available < wanted:
        return progressing(f"Waiting for daemon set rollout: {available} of {wanted} updated pods available")
    return HEALTHY


def _replicaset(obj: Obj) -> Health:
    if generation_pending(obj):
        return progressing("Waiting for rollout to finish: observed generation is older than the spec")
    failure = condition_of(obj, "ReplicaFailure")
    if failure.get("status") == "True":
        return Health("Degraded", str(failure.get("message", "")))
    wanted, available = integer(obj, "spec", "replicas"), integer(obj, "status", "availableReplicas")
    if field(obj, "spec", "replicas") is not None and available < wanted:
        return progressing(f"Waiting for rollout to finish: {available} of {wanted} replicas available")
    return HEALTHY


def _job(obj: Obj) -> Health:
    failed, complete = condition_of(obj, "Failed"), condition_of(obj, "Complete")
    if failed.get("status") == "True":
        return Health("Degraded", str(failed.get("message", "")))
    if complete.get("status") == "True":
        return Health("Healthy", str(complete.get("message", "")))
    suspended = condition_of(obj, "Suspended")
    if suspended.get("status") == "True" or field(obj, "spec", "suspend") is True:
        return Health("Suspended", str(suspended.get("message", "Job is suspended")))
    return progressing("")


def _waiting_errors(obj: Obj) -> list[str]:
    messages = []
    for status in field(obj, "status", "containerStatuses") or []:
        waiting = field(status, "state", "waiting") or {}
        reason = str(waiting.get("reason", ""))
        if reason.startswith("Err") or reason.endswith(("Error", "BackOff")):
            messages.append(str(waiting.get("message", reason)))
    return messages


def _failure_message(obj: Obj) -> str:
    statuses = (field(obj, "status", "initContainerStatuses") or []) + (
        field(obj, "status", "containerStatuses") or []
    )
    for status in statuses:
        done = field(status, "state", "terminated") or {}
        if done.get("message"):
            return str(done["message"])
        if done.get("reason") == "OOMKilled":
            return "OOMKilled"
        if done.get("exitCode", 0) != 0:
            return f"container {status.get('name')!r} failed with exit code {done.get('exitCode')}"
    return ""


_POD_PHASES: dict[str, HealthStatus] = {"Pending": "Progressing", "Succeeded": "Healthy"}


def _pod_running(obj: Obj, *, always: bool, message: str) -> Health:
    if not always:
        return progressing(message)
    if condition_of(obj, "Ready").get("status") == "True":
        return Health("Healthy", message)
    restarted = any(
        field(s, "lastState", "terminated") for s in field(obj, "status", "containerStatuses") or []
    )
    return Health("Degraded" if restarted else "Progressing", message)


def _pod(obj: Obj) -> Health:
    always = (field(obj, "spec", "restartPolicy") or "Always") == "Always"
    message = str(field(obj, "status", "message") or "")
    errors = _waiting_errors(obj) if always else []
    phase = field(obj, "status", "phase")
    if errors:
        return Health("Degraded", ", ".join(errors))
    if phase == "Running":
        return _pod_running(obj, always=always, message=message)
    if phase == "Failed":
        return Health("Degraded", message or _failure_message(obj))
    return Health(_POD_PHASES.get(str(phase), "Unknown"), message)


def _load_balanced(obj: Obj) -> Health:
    if field(obj, "status", "loadBalancer", "ingress"):
        return HEALTHY
    return progressing("Waiting for the load balancer to get an address")


def _service(obj: Obj) -> Health:
    return _load_balanced(obj) if field(obj, "spec", "type") == "LoadBalancer" else HEALTHY


_CLAIM_PHASES: dict[str, HealthStatus] = {"Bound": "Healthy", "Pending": "Progressing", "Lost": "Degraded"}


def _pvc(obj: Obj) -> Health:
    phase = field(obj, "status", "phase")
    status = _CLAIM_PHASES.get(str(phase))
    return Health(status) if status else Health("Unknown", f"unknown claim phase {phase!r}")


def _apiservice(obj: Obj) -> Health:
    cond = condition_of(obj, "Available")
    if not cond:
        return progressing("Waiting to be processed")
    text = f"{cond.get('reason', '')}: {cond.get('message', '')}"
    return Health("Healthy" if cond.get("status") == "True" else "Progressing", text)


def _crd(obj: Obj) -> Health:
    if not field(obj, "status", "conditions"):
        return progressing("Status conditions not found")
    if condition_of(obj, "Terminating").get("status") == "True":
        return progressing("CRD is being terminated")
    names = condition_of(obj, "NamesAccepted")
    if names.get("status") == "False":
        return Health("Degraded", f"CRD names have not been accepted: {names.get('message', '')}")
    established = condition_of(obj, "Established")
    if established.get("status") != "True":
        return Health("Degraded", f"CRD is not established: {established.get('message', '')}")
    if condition_of(obj, "NonStructuralSchema").get("status") == "True":
        return Health("Degraded", "CRD schema is not structural")
    return Health("Healthy", "CRD is healthy")


def deletion_message(obj: Obj) -> str:
    """Why an object being deleted is still there: since when, and which finalizers it waits for."""
    since = field(obj, "metadata", "deletionTimestamp")
    if not since:
        return ""
    finalizers = [str(f) for f in field(obj, "metadata", "finalizers") or []]
    if not finalizers:
        return f"Pending deletion since {since}"
    plural = "s" if len(finalizers) > 1 else ""
    return f"Pending deletion since {since}: waiting for finalizer{plural} {', '.join(finalizers)}"


RULES: dict[tuple[str, str], Callable[[Obj], Health]] = {
    ("apps", "Deployment"): _deployment,
    ("extensions", "Deployment"): _deployment,
    ("apps", "StatefulSet"): _statefulset,
    ("apps", "DaemonSet"): _daemonset,
    ("extensions", "DaemonSet"): _daemonset,
    ("apps", "ReplicaSet"): _replicaset,
    ("extensions", "ReplicaSet"): _replicaset,
    ("batch", "Job"): _job,
    ("", "Pod"): _pod,
    ("", "Service"): _service,
    ("", "PersistentVolumeClaim"): _pvc,
    ("networking.k8s.io", "Ingress"): _load_balanced,
    ("extensions", "Ingress"): _load_balanced,
    ("apiregistration.k8s.io", "APIService"): _apiservice,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _crd,
    ("argoproj.io", "Rollout"): healthcrds.rollout,
    ("driftwarden.io", "Application"): healthcrds.application,
}


def resource_health(live: Obj | None) -> Health:
    """The health of one live object; Missing when it does not exist."""
    if live is None:
        return Health("Missing", "resource does not exist")
    if field(live, "metadata", "deletionTimestamp"):
        return progressing(deletion_message(live))
    group = str(live.get("apiVersion", "")).rpartition("/")[0]
    rule = RULES.get((group, str(live.get("kind", ""))))
    if rule is None:
        return HEALTHY
    try:
        return rule(live)
    except (TypeError, AttributeError) as exc:
        return Health("Unknown", f"cannot assess health: {exc}")
