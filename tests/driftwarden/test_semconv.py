"""driftwarden.telemetry.semconv: the OpenTelemetry Kubernetes convention's name attribute of each kind."""

from __future__ import annotations

import pytest

from driftwarden.telemetry.semconv import name_attribute, name_attribute_of_resource


@pytest.mark.parametrize(
    ("group", "kind", "resource", "attribute"),
    [
        ("apps", "Deployment", "deployments", "k8s.deployment.name"),
        ("apps", "StatefulSet", "statefulsets", "k8s.statefulset.name"),
        ("apps", "DaemonSet", "daemonsets", "k8s.daemonset.name"),
        ("apps", "ReplicaSet", "replicasets", "k8s.replicaset.name"),
        ("batch", "Job", "jobs", "k8s.job.name"),
        ("batch", "CronJob", "cronjobs", "k8s.cronjob.name"),
        ("", "Pod", "pods", "k8s.pod.name"),
        ("", "Node", "nodes", "k8s.node.name"),
        ("", "Namespace", "namespaces", "k8s.namespace.name"),
        ("", "ConfigMap", "configmaps", None),  # the conventions name no ConfigMap
        ("", "Secret", "secrets", None),
        ("extensions", "Deployment", "deployments", None),  # the group counts
        ("driftwarden.io", "Application", "applications", None),
    ],
)
def test_the_name_attribute_by_kind_and_by_resource(
    group: str, kind: str, resource: str, attribute: str | None
) -> None:
    assert name_attribute(group=group, kind=kind) == attribute
    assert name_attribute_of_resource(group=group, resource=resource) == attribute
