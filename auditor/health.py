"""Health of live objects by kind, following Argo CD's gitops-engine rules, and the worst-first aggregate.

Order from healthiest to worst is gitops-engine's: Healthy, Suspended, Progressing, Missing, Degraded,
Unknown. Kinds without a rule are Healthy; an absent object is Missing; an object being deleted is
Progressing (saying since when and which finalizers hold it); a malformed status is Unknown. Beyond
Kubernetes' own kinds: Argo Rollouts' ``Rollout`` (Argo CD's health.lua) and driftwarden's own
``Application``, so an app-of-apps parent reflects its children. Pure: reads plain dicts, no I/O, no logging.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

HealthStatus = Literal["Healthy", "Suspended", "Progressing", "Missing", "Degraded", "Unknown"]
HEALTH_ORDER: tuple[HealthStatus, ...] = get_args(HealthStatus)
"""Healthiest first, as gitops-engine's healthOrder (the order of the Literal above)."""

Obj = Mapping[str, Any]


@dataclass(frozen=True)
class Health:
    status: HealthStatus
    message: str = ""


HEALTHY = Health("Healthy")


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


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        obj = obj.get(key) if isinstance(obj, Mapping) else None
    return obj


def _int(obj: Obj, *path: str) -> int:
    value = _get(obj, *path)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{'.'.join(path)} is not an integer")
    return value


def _condition(obj: Obj, kind: str) -> Mapping[str, Any]:
    for cond in _get(obj, "status", "conditions") or []:
        if isinstance(cond, Mapping) and cond.get("type") == kind:
            return cond
    return {}


def _generation_pending(obj: Obj) -> bool:
    return _int(obj, "metadata", "generation") > _int(obj, "status", "observedGeneration")


def _progressing(message: str) -> Health:
    return Health("Progressing", message)


def _deployment_gate(obj: Obj) -> Health | None:
    if _get(obj, "spec", "paused") is True:
        return Health("Suspended", "Deployment is paused")
    if _generation_pending(obj):
        return _progressing("Waiting for rollout to finish: observed generation is older than the spec")
    if _condition(obj, "Progressing").get("reason") == "ProgressDeadlineExceeded":
        name = _get(obj, "metadata", "name")
        return Health("Degraded", f"Deployment {name!r} exceeded its progress deadline")
    return None


def _deployment_replicas(obj: Obj) -> Health | None:
    updated, total = _int(obj, "status", "updatedReplicas"), _int(obj, "status", "replicas")
    available, wanted = _int(obj, "status", "availableReplicas"), _int(obj, "spec", "replicas")
    if _get(obj, "spec", "replicas") is not None and updated < wanted:
        return _progressing(f"Waiting for rollout to finish: {updated} of {wanted} new replicas updated")
    if total > updated:
        return _progressing(
            f"Waiting for rollout to finish: {total - updated} old replicas pending termination"
        )
    if available < updated:
        return _progressing(
            f"Waiting for rollout to finish: {available} of {updated} updated replicas available"
        )
    return None


def _deployment(obj: Obj) -> Health:
    return _deployment_gate(obj) or _deployment_replicas(obj) or HEALTHY


def _statefulset_gate(obj: Obj) -> Health | None:
    if _int(obj, "status", "observedGeneration") == 0 or _generation_pending(obj):
        return _progressing("Waiting for statefulset spec update to be observed")
    wanted, ready = _int(obj, "spec", "replicas"), _int(obj, "status", "readyReplicas")
    if _get(obj, "spec", "replicas") is not None and ready < wanted:
        return _progressing(f"Waiting for {wanted - ready} pods to be ready")
    return None


def _statefulset_rollout(obj: Obj) -> Health:
    strategy = _get(obj, "spec", "updateStrategy") or {}
    updated, wanted = _int(obj, "status", "updatedReplicas"), _int(obj, "spec", "replicas")
    if strategy.get("type", "RollingUpdate") == "RollingUpdate" and strategy.get("rollingUpdate") is not None:
        partition = _int(strategy, "rollingUpdate", "partition")
        if _get(obj, "spec", "replicas") is not None and updated < wanted - partition:
            return _progressing(
                f"Waiting for partitioned roll out: {updated} of {wanted - partition} updated"
            )
        return Health("Healthy", f"partitioned roll out complete: {updated} new pods updated")
    if strategy.get("type") == "OnDelete":
        return Health("Healthy", f"statefulset has {_int(obj, 'status', 'readyReplicas')} ready pods")
    revision = _get(obj, "status", "updateRevision")
    if revision != _get(obj, "status", "currentRevision"):
        return _progressing(f"Waiting for rolling update to complete: {updated} pods at revision {revision}")
    return Health("Healthy", f"rolling update complete at revision {revision}")


def _statefulset(obj: Obj) -> Health:
    return _statefulset_gate(obj) or _statefulset_rollout(obj)


def _daemonset(obj: Obj) -> Health:
    if _generation_pending(obj):
        return _progressing("Waiting for rollout to finish: observed generation is older than the spec")
    if _get(obj, "spec", "updateStrategy", "type") == "OnDelete":
        return HEALTHY
    wanted = _int(obj, "status", "desiredNumberScheduled")
    updated, available = _int(obj, "status", "updatedNumberScheduled"), _int(obj, "status", "numberAvailable")
    if updated < wanted:
        return _progressing(f"Waiting for daemon set rollout: {updated} of {wanted} new pods updated")
    if available < wanted:
        return _progressing(f"Waiting for daemon set rollout: {available} of {wanted} updated pods available")
    return HEALTHY


def _replicaset(obj: Obj) -> Health:
    if _generation_pending(obj):
        return _progressing("Waiting for rollout to finish: observed generation is older than the spec")
    failure = _condition(obj, "ReplicaFailure")
    if failure.get("status") == "True":
        return Health("Degraded", str(failure.get("message", "")))
    wanted, available = _int(obj, "spec", "replicas"), _int(obj, "status", "availableReplicas")
    if _get(obj, "spec", "replicas") is not None and available < wanted:
        return _progressing(f"Waiting for rollout to finish: {available} of {wanted} replicas available")
    return HEALTHY


def _job(obj: Obj) -> Health:
    failed, complete = _condition(obj, "Failed"), _condition(obj, "Complete")
    if failed.get("status") == "True":
        return Health("Degraded", str(failed.get("message", "")))
    if complete.get("status") == "True":
        return Health("Healthy", str(complete.get("message", "")))
    suspended = _condition(obj, "Suspended")
    if suspended.get("status") == "True" or _get(obj, "spec", "suspend") is True:
        return Health("Suspended", str(suspended.get("message", "Job is suspended")))
    return _progressing("")


def _waiting_errors(obj: Obj) -> list[str]:
    messages = []
    for status in _get(obj, "status", "containerStatuses") or []:
        waiting = _get(status, "state", "waiting") or {}
        reason = str(waiting.get("reason", ""))
        if reason.startswith("Err") or reason.endswith(("Error", "BackOff")):
            messages.append(str(waiting.get("message", reason)))
    return messages


def _failure_message(obj: Obj) -> str:
    statuses = (_get(obj, "status", "initContainerStatuses") or []) + (
        _get(obj, "status", "containerStatuses") or []
    )
    for status in statuses:
        done = _get(status, "state", "terminated") or {}
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
        return _progressing(message)
    if _condition(obj, "Ready").get("status") == "True":
        return Health("Healthy", message)
    restarted = any(
        _get(s, "lastState", "terminated") for s in _get(obj, "status", "containerStatuses") or []
    )
    return Health("Degraded" if restarted else "Progressing", message)


def _pod(obj: Obj) -> Health:
    always = (_get(obj, "spec", "restartPolicy") or "Always") == "Always"
    message = str(_get(obj, "status", "message") or "")
    errors = _waiting_errors(obj) if always else []
    phase = _get(obj, "status", "phase")
    if errors:
        return Health("Degraded", ", ".join(errors))
    if phase == "Running":
        return _pod_running(obj, always=always, message=message)
    if phase == "Failed":
        return Health("Degraded", message or _failure_message(obj))
    return Health(_POD_PHASES.get(str(phase), "Unknown"), message)


def _load_balanced(obj: Obj) -> Health:
    if _get(obj, "status", "loadBalancer", "ingress"):
        return HEALTHY
    return _progressing("Waiting for the load balancer to get an address")


def _service(obj: Obj) -> Health:
    return _load_balanced(obj) if _get(obj, "spec", "type") == "LoadBalancer" else HEALTHY


_CLAIM_PHASES: dict[str, HealthStatus] = {"Bound": "Healthy", "Pending": "Progressing", "Lost": "Degraded"}


def _pvc(obj: Obj) -> Health:
    phase = _get(obj, "status", "phase")
    status = _CLAIM_PHASES.get(str(phase))
    return Health(status) if status else Health("Unknown", f"unknown claim phase {phase!r}")


def _apiservice(obj: Obj) -> Health:
    cond = _condition(obj, "Available")
    if not cond:
        return _progressing("Waiting to be processed")
    text = f"{cond.get('reason', '')}: {cond.get('message', '')}"
    return Health("Healthy" if cond.get("status") == "True" else "Progressing", text)


def _crd(obj: Obj) -> Health:
    if not _get(obj, "status", "conditions"):
        return _progressing("Status conditions not found")
    if _condition(obj, "Terminating").get("status") == "True":
        return _progressing("CRD is being terminated")
    names = _condition(obj, "NamesAccepted")
    if names.get("status") == "False":
        return Health("Degraded", f"CRD names have not been accepted: {names.get('message', '')}")
    established = _condition(obj, "Established")
    if established.get("status") != "True":
        return Health("Degraded", f"CRD is not established: {established.get('message', '')}")
    if _condition(obj, "NonStructuralSchema").get("status") == "True":
        return Health("Degraded", "CRD schema is not structural")
    return Health("Healthy", "CRD is healthy")


def _rollout_observed(obj: Obj) -> Health | None:
    """Argo CD's Rollout rule, first: the spec observed, then the phase Argo Rollouts v1.0+ records."""
    observed = _get(obj, "status", "observedGeneration")
    if isinstance(observed, str) and observed.isdigit():  # Argo Rollouts before v0.10 wrote a hash here
        observed = int(observed)
    if _get(obj, "status") is None or (
        isinstance(observed, int) and observed < _int(obj, "metadata", "generation")
    ):
        return _progressing("Waiting for rollout spec update to be observed")
    phase = _get(obj, "status", "phase")
    if phase:  # Argo Rollouts v1.0+ records its own verdict, which Argo CD surfaces as it is
        status = "Suspended" if phase == "Paused" else str(phase)
        if status in HEALTH_ORDER:
            return Health(status, str(_get(obj, "status", "message") or ""))
    return None


def _rollout_conditions(obj: Obj) -> Health | None:
    for cond in _get(obj, "status", "conditions") or []:
        aborted = cond.get("type") == "Progressing" and cond.get("reason") in _ROLLOUT_FAILED
        if cond.get("type") == "InvalidSpec" or aborted:
            return Health("Degraded", str(cond.get("message", "")))
    if _get(obj, "status", "verifyingPreview") is True:
        return _progressing("Rollout is verifying preview")
    if _get(obj, "status", "pauseConditions") or _get(obj, "spec", "paused") is True:
        return Health("Suspended", "Rollout is paused")
    if _get(obj, "status", "currentPodHash") is None:
        return _progressing("Waiting for rollout to finish: status has not been reconciled.")
    return None


_ROLLOUT_FAILED = frozenset({"RolloutAborted", "ProgressDeadlineExceeded"})


def _rollout_replicas(obj: Obj) -> Health | None:
    wanted = _get(obj, "spec", "replicas")
    wanted = 1 if wanted is None else _int(obj, "spec", "replicas")
    total, updated = _int(obj, "status", "replicas"), _int(obj, "status", "updatedReplicas")
    if updated < wanted:
        return _progressing("Waiting for roll out to finish: More replicas need to be updated")
    # Blue-green scales old replicas down after a delay and is healthy before that: canary only.
    if _get(obj, "spec", "strategy", "canary") is not None and total > updated:
        return _progressing("Waiting for roll out to finish: old replicas are pending termination")
    if _int(obj, "status", "availableReplicas") < updated:
        return _progressing("Waiting for roll out to finish: updated replicas are still becoming available")
    return None


def _rollout_steps(obj: Obj) -> Health:
    current, stable = _get(obj, "status", "currentPodHash"), _get(obj, "status", "stableRS")
    if _get(obj, "spec", "strategy", "blueGreen") is not None:
        if _get(obj, "status", "blueGreen", "activeSelector") != current:
            return _progressing("active service cutover pending")
        if stable is not None and stable != current:
            return _progressing("waiting for analysis to complete")
    elif _get(obj, "spec", "strategy", "canary") is not None and stable is not None and stable != current:
        return _progressing("waiting for rollout to finish steps")
    return HEALTHY


def _rollout(obj: Obj) -> Health:
    """Argo CD's health.lua for argoproj.io/Rollout."""
    return _rollout_observed(obj) or _rollout_conditions(obj) or _rollout_replicas(obj) or _rollout_steps(obj)


_CHILD_HEALTH: dict[str, HealthStatus] = {"Missing": "Progressing"}


def _application(obj: Obj) -> Health:
    """A child Application (app of apps): its own health, Missing children counted as Progressing."""
    status = str(_get(obj, "status", "health", "status") or "")
    if status not in HEALTH_ORDER:
        return _progressing("Waiting for the Application's first health assessment")
    message = str(_get(obj, "status", "health", "message") or "")
    return Health(_CHILD_HEALTH.get(status, status), message)


def deletion_message(obj: Obj) -> str:
    """Why an object being deleted is still there: since when, and which finalizers it waits for."""
    since = _get(obj, "metadata", "deletionTimestamp")
    if not since:
        return ""
    finalizers = [str(f) for f in _get(obj, "metadata", "finalizers") or []]
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
    ("argoproj.io", "Rollout"): _rollout,
    ("driftwarden.io", "Application"): _application,
}


def resource_health(live: Obj | None) -> Health:
    """The health of one live object; Missing when it does not exist."""
    if live is None:
        return Health("Missing", "resource does not exist")
    if _get(live, "metadata", "deletionTimestamp"):
        return _progressing(deletion_message(live))
    group = str(live.get("apiVersion", "")).rpartition("/")[0]
    rule = RULES.get((group, str(live.get("kind", ""))))
    if rule is None:
        return HEALTHY
    try:
        return rule(live)
    except (TypeError, AttributeError) as exc:
        return Health("Unknown", f"cannot assess health: {exc}")
