"""OpenTelemetry Kubernetes semantic conventions that name an object by its kind (pure; no I/O).

The conventions define ``k8s.<kind>.name`` for the workload kinds (``k8s.deployment.name``,
``k8s.pod.name``, …). Both processes put it on their spans beside driftwarden's kind-neutral
``k8s.resource.name``, so a trace backend's usual Kubernetes queries find driftwarden's spans too. Kinds
the conventions do not name get no such attribute. It must not decide anything else about a span.
"""

from __future__ import annotations

_NAMED_KINDS: dict[tuple[str, str], tuple[str, str]] = {
    # (API group, Kind): (resource, attribute)
    ("", "Pod"): ("pods", "k8s.pod.name"),
    ("", "Node"): ("nodes", "k8s.node.name"),
    ("", "Namespace"): ("namespaces", "k8s.namespace.name"),
    ("apps", "Deployment"): ("deployments", "k8s.deployment.name"),
    ("apps", "StatefulSet"): ("statefulsets", "k8s.statefulset.name"),
    ("apps", "DaemonSet"): ("daemonsets", "k8s.daemonset.name"),
    ("apps", "ReplicaSet"): ("replicasets", "k8s.replicaset.name"),
    ("batch", "Job"): ("jobs", "k8s.job.name"),
    ("batch", "CronJob"): ("cronjobs", "k8s.cronjob.name"),
}
_BY_KIND = {key: attribute for key, (_resource, attribute) in _NAMED_KINDS.items()}
_BY_RESOURCE = {(group, resource): attribute for (group, _), (resource, attribute) in _NAMED_KINDS.items()}


def name_attribute(*, group: str, kind: str) -> str | None:
    """``k8s.deployment.name`` for ``apps/Deployment``; None for kinds the conventions do not name."""
    return _BY_KIND.get((group, kind))


def name_attribute_of_resource(*, group: str, resource: str) -> str | None:
    """The same, from the API resource (``apps``, ``deployments``), as admission requests name it."""
    return _BY_RESOURCE.get((group, resource))
