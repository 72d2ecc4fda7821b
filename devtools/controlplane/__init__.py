"""A real local Kubernetes control plane (etcd + kube-apiserver) for tests, the demo and `driftwarden up`."""

from devtools.controlplane.binaries import BinarySet, find_binaries
from devtools.controlplane.plane import ControlPlane, ControlPlaneSettings
from driftwarden.kube.client import UserCredentials

__all__ = ["BinarySet", "ControlPlane", "ControlPlaneSettings", "UserCredentials", "find_binaries"]
