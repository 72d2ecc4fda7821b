"""Settings read from the environment, once, at an entry point (the CLI or a test fixture).

This is the only module that looks at ``os.environ``; everything else gets values passed in.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path


def environment() -> Mapping[str, str]:
    """A snapshot of the process environment, for the entry point to pass on."""
    return dict(os.environ)


def cache_root(env: Mapping[str, str]) -> Path:
    """``$DRIFTWARDEN_CACHE``, else ``$XDG_CACHE_HOME/driftwarden``, else ``~/.cache/driftwarden``."""
    if env.get("DRIFTWARDEN_CACHE"):
        return Path(env["DRIFTWARDEN_CACHE"])
    base = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "driftwarden"


KUBERNETES_VERSION = "v1.35.4"
ETCD_VERSION = "v3.6.5"
"""etcd as pinned by Kubernetes v1.35.4's own go.mod; keep both in step with tools/k8s/go.mod."""


def kubernetes_cache_dir(cache_root: Path) -> Path:
    """Where tools/build-control-plane.sh puts the Kubernetes binaries of the pinned versions."""
    return cache_root / f"k8s-{KUBERNETES_VERSION}-etcd-{ETCD_VERSION}"


def control_plane_bin_dir(env: Mapping[str, str]) -> Path:
    """``$DRIFTWARDEN_K8S_BIN_DIR``, else the cache directory of the pinned versions."""
    if env.get("DRIFTWARDEN_K8S_BIN_DIR"):
        return Path(env["DRIFTWARDEN_K8S_BIN_DIR"])
    return kubernetes_cache_dir(cache_root(env))


KWOK_VERSION = "v0.8.0"
"""The kwok tools/build-kwok.sh builds (pinned in tools/kwok/go.mod); keep the two in step."""


def kwok_bin_dir(env: Mapping[str, str]) -> Path:
    """``$DRIFTWARDEN_KWOK_BIN_DIR``, else the cache directory of the pinned kwok (its binary and stages)."""
    if env.get("DRIFTWARDEN_KWOK_BIN_DIR"):
        return Path(env["DRIFTWARDEN_KWOK_BIN_DIR"])
    return cache_root(env) / f"kwok-{KWOK_VERSION}"


HELM_VERSION = "v3.19.0"
"""The Helm CLI tools/build-helm.sh builds (pinned in tools/helm/go.mod); keep the two in step."""


def helm_bin_dir(env: Mapping[str, str]) -> Path:
    """``$DRIFTWARDEN_HELM_BIN_DIR``, else the cache directory of the pinned helm (``helm-<version>``)."""
    if env.get("DRIFTWARDEN_HELM_BIN_DIR"):
        return Path(env["DRIFTWARDEN_HELM_BIN_DIR"])
    return cache_root(env) / f"helm-{HELM_VERSION}"


def kubeconfig_path(env: Mapping[str, str]) -> Path:
    """``$KUBECONFIG``, else ``~/.kube/config``; of a ``KUBECONFIG`` list (kubectl merges them) the first."""
    entries = [entry for entry in env.get("KUBECONFIG", "").split(os.pathsep) if entry]
    if entries:
        return Path(entries[0]).expanduser()
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    return home / ".kube" / "config"


def webhook_secret(env: Mapping[str, str]) -> str | None:
    """``$DRIFTWARDEN_WEBHOOK_SECRET``: the Git push webhook's shared secret (never log it), or None."""
    return env.get("DRIFTWARDEN_WEBHOOK_SECRET") or None


def _tool(name: str, cached: Path, env: Mapping[str, str], explicit: Path | None) -> Path | None:
    if explicit is not None:
        return explicit
    if cached.is_file():
        return cached
    found = shutil.which(name, path=env.get("PATH"))
    return Path(found) if found else None


def kubectl_path(env: Mapping[str, str], *, explicit: Path | None = None) -> Path | None:
    """``explicit``, else the pinned kubectl of the build cache, else ``kubectl`` on ``$PATH``."""
    return _tool("kubectl", control_plane_bin_dir(env) / "kubectl", env, explicit)


def helm_path(env: Mapping[str, str], *, explicit: Path | None = None) -> Path | None:
    """``explicit``, else the pinned helm of the build cache, else ``helm`` on ``$PATH``."""
    return _tool("helm", helm_bin_dir(env) / "helm", env, explicit)
