"""Settings read from the environment, once, at an entry point (the CLI or a test fixture).

This is the only module that looks at ``os.environ``; everything else gets values passed in.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from driftwarden.errors import ConfigError


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


LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")
"""What ``driftwarden.logs`` writes: text lines, or one JSON object per line for a log collector."""


EVENT_LOOPS = ("uvloop", "asyncio")
"""The event loops a serving process can run on (driftwarden.eventloop); the first is the default."""


def event_loop(env: Mapping[str, str], *, explicit: str | None = None) -> str:
    """``--event-loop``, else ``$DRIFTWARDEN_EVENT_LOOP``, else ``uvloop``; a ConfigError for another name."""
    name = explicit or env.get("DRIFTWARDEN_EVENT_LOOP") or EVENT_LOOPS[0]
    if name not in EVENT_LOOPS:
        raise ConfigError(
            f"unknown event loop {name!r} ($DRIFTWARDEN_EVENT_LOOP): use one of {', '.join(EVENT_LOOPS)}"
        )
    return name


SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
"""Where Kubernetes mounts a pod's service-account token and the cluster's CA (``token``, ``ca.crt``)."""


@dataclass(frozen=True)
class ProxyEnvironment:
    """The proxy a command was started with: ``HTTPS_PROXY``, ``HTTP_PROXY`` and ``NO_PROXY`` (the lower-case
    spelling wins when both are set, as in Python's urllib and curl), read once by ``proxy_environment``.

    The Kubernetes clients use it (``driftwarden.kube.client``) instead of looking the variables and
    ``~/.netrc`` up again for every request, which aiohttp does when a session trusts the environment.
    """

    https: str = ""
    http: str = ""
    no_proxy: str = ""


def proxy_environment(env: Mapping[str, str]) -> ProxyEnvironment:
    """The proxy variables of ``env`` (empty strings for those not set)."""

    def read(name: str) -> str:
        lower = env.get(name.lower())
        return (lower if lower is not None else env.get(name.upper(), "")).strip()

    return ProxyEnvironment(read("HTTPS_PROXY"), read("HTTP_PROXY"), read("NO_PROXY"))


@dataclass(frozen=True)
class KubeAccess:
    """Where a command's Kubernetes credentials come from, resolved once by ``kube_access``.

    Either kubeconfig files (several are merged, as kubectl merges a ``KUBECONFIG`` list) or, when there are
    none, the pod's service account: its token and CA in ``service_account_dir``, the API server at
    ``service_host:service_port``.
    """

    source: str
    """What chose them: ``--kubeconfig``, ``$KUBECONFIG``, ``in-cluster`` or ``~/.kube/config``."""
    kubeconfigs: tuple[Path, ...] = ()
    context: str | None = None
    service_host: str = ""
    service_port: str = ""
    service_account_dir: Path = SERVICE_ACCOUNT_DIR
    proxies: ProxyEnvironment = ProxyEnvironment()

    @property
    def in_cluster(self) -> bool:
        return not self.kubeconfigs

    def describe(self) -> str:
        """``kubeconfig a.yaml ($KUBECONFIG)`` or ``the in-cluster service account (<dir>)``."""
        if self.in_cluster:
            return f"the in-cluster service account ({self.service_account_dir})"
        files = ", ".join(str(path) for path in self.kubeconfigs)
        return f"kubeconfig {files} ({self.source})"


def kube_access(
    env: Mapping[str, str], *, kubeconfig: Path | None = None, context: str | None = None
) -> KubeAccess:
    """kubectl's conventions, for every command: ``--kubeconfig``, else ``$KUBECONFIG``, else the service
    account when running in a pod, else ``~/.kube/config``; a ConfigError saying what to do when none is.

    "In a pod" means ``KUBERNETES_SERVICE_HOST`` is set and the token file exists (in
    ``$DRIFTWARDEN_SERVICE_ACCOUNT_DIR``, default ``SERVICE_ACCOUNT_DIR``). kubectl prefers
    ``~/.kube/config`` to the pod's account; driftwarden's processes run in pods, where a stray file should
    not outrank the identity the manifests bind.
    """
    proxies = proxy_environment(env)
    if kubeconfig is not None:
        if not kubeconfig.is_file():
            raise ConfigError(f"kubeconfig {kubeconfig} does not exist or is not a file (--kubeconfig)")
        return KubeAccess("--kubeconfig", (kubeconfig,), context, proxies=proxies)
    listed = [Path(entry).expanduser() for entry in env.get("KUBECONFIG", "").split(os.pathsep) if entry]
    if listed:
        present = tuple(path for path in listed if path.is_file())  # kubectl skips missing ones too
        if not present:
            names = os.pathsep.join(str(path) for path in listed)
            raise ConfigError(
                f"kubeconfig {names} ($KUBECONFIG) does not exist; fix KUBECONFIG or pass --kubeconfig"
            )
        return KubeAccess("$KUBECONFIG", present, context, proxies=proxies)
    account = Path(env.get("DRIFTWARDEN_SERVICE_ACCOUNT_DIR") or SERVICE_ACCOUNT_DIR)
    host = env.get("KUBERNETES_SERVICE_HOST", "")
    if host and (account / "token").is_file():
        if context is not None:
            raise ConfigError(
                f"--context {context} needs a kubeconfig; the in-cluster service account has no contexts "
                "(pass --kubeconfig too)"
            )
        port = env.get("KUBERNETES_SERVICE_PORT", "443")
        return KubeAccess("in-cluster", (), None, host, port, account, proxies)
    home = (Path(env["HOME"]) if env.get("HOME") else Path.home()) / ".kube" / "config"
    if home.is_file():
        return KubeAccess("~/.kube/config", (home,), context, proxies=proxies)
    pod = f"no service-account token in {account}" if host else "not in a pod (KUBERNETES_SERVICE_HOST unset)"
    raise ConfigError(
        f"no Kubernetes credentials: pass --kubeconfig FILE or set KUBECONFIG ({home} does not exist; {pod})"
    )


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
