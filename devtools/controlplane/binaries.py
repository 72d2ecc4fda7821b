"""Where the pinned control-plane binaries and kwok live, and what is missing.

The binaries are built from the Go module proxy by ``tools/build-control-plane.sh`` (etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, kubectl) and ``tools/build-kwok.sh`` (kwok and its Stage objects)
into a cache outside the checkout, keyed by the pinned versions; this module computes the same directories.
It only finds and checks files: building is the Makefile's job, and nothing here downloads anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from driftwarden.errors import ControlPlaneError
from driftwarden.settings import KWOK_VERSION
from driftwarden.settings import kubernetes_cache_dir as cache_dir

__all__ = [
    "BINARY_NAMES",
    "KWOK_VERSION",
    "BinarySet",
    "KwokFiles",
    "cache_dir",
    "find_binaries",
    "find_kwok",
]

BINARY_NAMES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
BARE_NAMES = ("etcd", "kube-apiserver", "kubectl")
"""What a bare plane (``--bare``: etcd + kube-apiserver only) needs."""


@dataclass(frozen=True)
class BinarySet:
    """Paths of the control-plane binaries (the controllers are None where a bare plane needs none)."""

    etcd: Path
    kube_apiserver: Path
    kubectl: Path
    kube_controller_manager: Path | None = None
    kube_scheduler: Path | None = None


@dataclass(frozen=True)
class KwokFiles:
    """The kwok binary and the Stage objects it runs with (one multi-document YAML file)."""

    kwok: Path
    stages: Path


def find_binaries(bin_dir: Path, *, bare: bool = False) -> BinarySet:
    """The binaries in ``bin_dir``; a ControlPlaneError names what is missing and how to build it."""
    names = BARE_NAMES if bare else BINARY_NAMES
    missing = [n for n in names if not os.access(bin_dir / n, os.X_OK)]
    if missing:
        raise ControlPlaneError(
            f"control plane binaries missing in {bin_dir}: {', '.join(missing)}. "
            "Build them from source with `make control-plane` (runs tools/build-control-plane.sh; "
            "needs Go 1.25+), or set DRIFTWARDEN_K8S_BIN_DIR to a directory that has them."
        )
    if bare:
        return BinarySet(bin_dir / "etcd", bin_dir / "kube-apiserver", bin_dir / "kubectl")
    return BinarySet(
        bin_dir / "etcd",
        bin_dir / "kube-apiserver",
        bin_dir / "kubectl",
        bin_dir / "kube-controller-manager",
        bin_dir / "kube-scheduler",
    )


def find_kwok(kwok_dir: Path) -> KwokFiles:
    """kwok and its stages in ``kwok_dir``; a ControlPlaneError says how to build them when missing."""
    files = KwokFiles(kwok_dir / "kwok", kwok_dir / "stages.yaml")
    if not os.access(files.kwok, os.X_OK) or not files.stages.is_file():
        raise ControlPlaneError(
            f"kwok {KWOK_VERSION} is missing in {kwok_dir}. Build it from source with `make kwok` "
            "(runs tools/build-kwok.sh; needs Go 1.26+), or run a bare plane (etcd + kube-apiserver only)."
        )
    return files
