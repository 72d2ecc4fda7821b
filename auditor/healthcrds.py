"""Health rules for custom resources: Argo Rollouts' ``Rollout`` and driftwarden's own ``Application``.

The Rollout rule follows Argo CD's ``resource_customizations/argoproj.io/Rollout/health.lua``; the
Application rule lets an app-of-apps parent reflect its children (a child Degraded makes the parent
Degraded, a child Progressing or Missing makes it Progressing). Pure: no I/O, no logging.
"""

from __future__ import annotations

from auditor.healthcore import (
    HEALTH_ORDER,
    HEALTHY,
    Health,
    HealthStatus,
    Obj,
    field,
    integer,
    progressing,
)


def _rollout_observed(obj: Obj) -> Health | None:
    """Argo CD's Rollout rule, first: the spec observed, then the phase Argo Rollouts v1.0+ records."""
    observed = field(obj, "status", "observedGeneration")
    if isinstance(observed, str) and observed.isdigit():  # Argo Rollouts before v0.10 wrote a hash here
        observed = int(observed)
    if field(obj, "status") is None or (
        isinstance(observed, int) and observed < integer(obj, "metadata", "generation")
    ):
        return progressing("Waiting for rollout spec update to be observed")
    phase = field(obj, "status", "phase")
    if phase:  # Argo Rollouts v1.0+ records its own verdict, which Argo CD surfaces as it is
        status = "Suspended" if phase == "Paused" else str(phase)
        if status in HEALTH_ORDER:
            return Health(status, str(field(obj, "status", "message") or ""))
    return None


def _rollout_conditions(obj: Obj) -> Health | None:
    for cond in field(obj, "status", "conditions") or []:
        aborted = cond.get("type") == "Progressing" and cond.get("reason") in _ROLLOUT_FAILED
        if cond.get("type") == "InvalidSpec" or aborted:
            return Health("Degraded", str(cond.get("message", "")))
    if field(obj, "status", "verifyingPreview") is True:
        return progressing("Rollout is verifying preview")
    if field(obj, "status", "pauseConditions") or field(obj, "spec", "paused") is True:
        return Health("Suspended", "Rollout is paused")
    if field(obj, "status", "currentPodHash") is None:
        return progressing("Waiting for rollout to finish: status has not been reconciled.")
    return None


_ROLLOUT_FAILED = frozenset({"RolloutAborted", "ProgressDeadlineExceeded"})


def _rollout_replicas(obj: Obj) -> Health | None:
    wanted = field(obj, "spec", "replicas")
    wanted = 1 if wanted is None else integer(obj, "spec", "replicas")
    total, updated = integer(obj, "status", "replicas"), integer(obj, "status", "updatedReplicas")
    if updated < wanted:
        return progressing("Waiting for roll out to finish: More replicas need to be updated")
    # Blue-green scales old replicas down after a delay and is healthy before that: canary only.
    if field(obj, "spec", "strategy", "canary") is not None and total > updated:
        return progressing("Waiting for roll out to finish: old replicas are pending termination")
    if integer(obj, "status", "availableReplicas") < updated:
        return progressing("Waiting for roll out to finish: updated replicas are still becoming available")
    return None


def _rollout_steps(obj: Obj) -> Health:
    current, stable = field(obj, "status", "currentPodHash"), field(obj, "status", "stableRS")
    if field(obj, "spec", "strategy", "blueGreen") is not None:
        if field(obj, "status", "blueGreen", "activeSelector") != current:
            return progressing("active service cutover pending")
        if stable is not None and stable != current:
            return progressing("waiting for analysis to complete")
    elif field(obj, "spec", "strategy", "canary") is not None and stable is not None and stable != current:
        return progressing("waiting for rollout to finish steps")
    return HEALTHY


def rollout(obj: Obj) -> Health:
    """Argo CD's health.lua for argoproj.io/Rollout."""
    return _rollout_observed(obj) or _rollout_conditions(obj) or _rollout_replicas(obj) or _rollout_steps(obj)


_CHILD_HEALTH: dict[str, HealthStatus] = {"Missing": "Progressing"}


def application(obj: Obj) -> Health:
    """A child Application (app of apps): its own health, Missing children counted as Progressing."""
    status = str(field(obj, "status", "health", "status") or "")
    if status not in HEALTH_ORDER:
        return progressing("Waiting for the Application's first health assessment")
    message = str(field(obj, "status", "health", "message") or "")
    return Health(_CHILD_HEALTH.get(status, status), message)
