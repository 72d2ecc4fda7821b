"""A real local Kubernetes control plane (etcd + kube-apiserver) for tests, the demo and `driftwarden up`."""

from driftwarden.controlplane.binaries import BinarySet, find_binaries
from driftwarden.controlplane.plane import ControlPlane, ControlPlaneSettings, UserCredentials

__all__ = ["BinarySet", "ControlPlane", "ControlPlaneSettings", "UserCredentials", "find_binaries"]
