"""Where the pinned etcd, kube-apiserver and kubectl binaries live, and how to build them.

The binaries are built from the Go module proxy by ``tools/build-control-plane.sh`` into a cache
outside the checkout, keyed by the pinned versions; this module computes the same directory. It only
finds and checks files: building is the Makefile's job, and nothing here downloads anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from driftwarden.errors import ControlPlaneError

KUBERNETES_VERSION = "v1.35.4"
ETCD_VERSION = "v3.6.5"
"""etcd as pinned by Kubernetes v1.35.4's own go.mod; keep in step with tools/k8s/go.mod."""

BINARY_NAMES = ("etcd", "kube-apiserver", "kubectl")


@dataclass(frozen=True)
class BinarySet:
    """Paths of the three control-plane binaries."""

    etcd: Path
    kube_apiserver: Path
    kubectl: Path


def cache_dir(cache_root: Path) -> Path:
    """The directory that holds the binaries of the pinned versions under ``cache_root``."""
    return cache_root / f"k8s-{KUBERNETES_VERSION}-etcd-{ETCD_VERSION}"


def find_binaries(bin_dir: Path) -> BinarySet:
    """The binaries in ``bin_dir``; a ControlPlaneError names what is missing and how to build it."""
    missing = [n for n in BINARY_NAMES if not os.access(bin_dir / n, os.X_OK)]
    if missing:
        raise ControlPlaneError(
            f"control plane binaries missing in {bin_dir}: {', '.join(missing)}. "
            "Build them from source with `make control-plane` (runs tools/build-control-plane.sh; "
            "needs Go 1.25+), or set DRIFTWARDEN_K8S_BIN_DIR to a directory that has them."
        )
    return BinarySet(bin_dir / "etcd", bin_dir / "kube-apiserver", bin_dir / "kubectl")
