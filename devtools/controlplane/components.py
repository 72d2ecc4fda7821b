"""The living parts of the local control plane: kube-controller-manager, kube-scheduler and kwok's nodes.

Pure: flag lists, the fake Node objects and the readiness rules over plain JSON, nothing started or read
here (``plane.py`` runs the processes). The flags follow what worked on this machine kind
(``shared/notes/control-plane.md``) and what kubeadm gives real clusters: each controller acts as its own
service account (``--use-service-account-credentials``), so the garbage collector and the namespace
controller reach admission webhooks under the identities a real cluster uses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONTROLLER_MANAGER_USER = "system:kube-controller-manager"
SCHEDULER_USER = "system:kube-scheduler"
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
KWOK_NODE_VALUE = "fake"
NODE_PREFIX = "kwok-node-"
NOT_READY_TAINT = "node.kubernetes.io/not-ready"

CONTROLLERS = "*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-route"
"""Every controller but those that need a cloud or node CIDRs. ``nodelifecycle`` stays on: it removes the
not-ready taint admission puts on each new Node, without which nothing schedules."""


@dataclass(frozen=True)
class ControllerFiles:
    """What the controllers are started with: their kubeconfigs and the cluster's trust material."""

    controller_manager_kubeconfig: Path
    scheduler_kubeconfig: Path
    kwok_kubeconfig: Path
    kwok_stages: Path
    service_account_key: Path
    serving_ca: Path


def _component(binary: Path, kubeconfig: Path) -> list[str]:
    """What every control-plane component here runs with: one identity for the API server and for checking
    its own callers, no leader election (one replica), no serving port of its own."""
    return [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--leader-elect=false",
        "--secure-port=0",
    ]


def controller_manager_argv(binary: Path, files: ControllerFiles) -> list[str]:
    return [
        *_component(binary, files.controller_manager_kubeconfig),
        f"--service-account-private-key-file={files.service_account_key}",
        f"--root-ca-file={files.serving_ca}",
        "--use-service-account-credentials=true",
        f"--controllers={CONTROLLERS}",
    ]


def scheduler_argv(binary: Path, files: ControllerFiles) -> list[str]:
    return _component(binary, files.scheduler_kubeconfig)


def kwok_argv(binary: Path, files: ControllerFiles) -> list[str]:
    return [
        str(binary),
        f"--kubeconfig={files.kwok_kubeconfig}",
        f"--config={files.kwok_stages}",
        "--manage-all-nodes=false",
        f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}={KWOK_NODE_VALUE}",
        "--node-ip=10.0.0.1",
        "--cidr=10.244.0.1/16",
        "--node-lease-duration-seconds=40",
        "--server-address=127.0.0.1:0",
    ]


def node_names(count: int) -> tuple[str, ...]:
    return tuple(f"{NODE_PREFIX}{i}" for i in range(count))


def node_manifest(name: str) -> dict[str, Any]:
    """A Node that kwok plays: a kubelet's labels and capacity, and the annotation kwok selects on."""
    capacity = {"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "100Gi"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {KWOK_NODE_ANNOTATION: KWOK_NODE_VALUE, "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "node-role.kubernetes.io/agent": "",
                "type": "kwok",
            },
        },
        "status": {"allocatable": capacity, "capacity": capacity},
    }


def _ready(node: Mapping[str, Any]) -> bool:
    conditions = node.get("status", {}).get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    taints = node.get("spec", {}).get("taints") or []
    return ready and not any(t.get("key") == NOT_READY_TAINT for t in taints)


def nodes_ready(node_list: Mapping[str, Any], names: Sequence[str]) -> bool:
    """Every named Node reports Ready and has lost the not-ready taint (so Pods can be scheduled)."""
    ready = {n.get("metadata", {}).get("name") for n in node_list.get("items") or [] if _ready(n)}
    return all(name in ready for name in names)


def roles_aggregated(role: Mapping[str, Any]) -> bool:
    """The aggregated ClusterRole (``edit``) has its rules: the clusterrole-aggregation controller runs."""
    return bool(role.get("rules"))


AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    verbs: [create, update, patch, delete, deletecollection]
  - level: None
"""
"""Every write, who made it and when (no bodies: Secrets stay out of the log); nothing else."""


def audit_argv(work_dir: Path, log: Path) -> list[str]:
    """kube-apiserver's flags for an audit log of every write (written synchronously, so a test that
    reads it after a request sees the request)."""
    policy = work_dir / "audit-policy.yaml"
    policy.write_text(AUDIT_POLICY)
    return [f"--audit-policy-file={policy}", f"--audit-log-path={log}", "--audit-log-mode=blocking"]
