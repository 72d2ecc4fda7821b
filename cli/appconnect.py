"""How ``driftwarden app`` reaches the cluster: its common flags, the kubeconfig, impersonation, tools.

Orchestration helpers for ``cli.app``: the environment comes in as a mapping (read once
by ``driftwarden.settings``), never from ``os.environ``. TLS verification is the kubeconfig's, always on.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from kubernetes_asyncio import client

from auditor.settings import AuditorSettings
from auditor.source.renderers import RenderTools
from driftwarden import contract
from driftwarden.errors import ConfigError
from driftwarden.kube.client import api_client
from driftwarden.settings import cache_root, helm_path, kubeconfig_path, kubectl_path

GITOPS_USER = contract.auditor_identity()


def common_flags() -> argparse.ArgumentParser:
    """--kubeconfig, --context, -n/--namespace and --as, shared by every ``app`` subcommand."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--kubeconfig", type=Path,
                        help="kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)")  # fmt: skip
    common.add_argument("--context", help="kubeconfig context to use (default: its current context)")
    common.add_argument(
        "-n", "--namespace", default=contract.DEFAULT_INSTALL_NAMESPACE,
        help="namespace of the Applications, driftwarden's install namespace, where repository "
        "credentials live too (default %(default)s)",
    )  # fmt: skip
    common.add_argument("--as", dest="as_user", metavar="USER",
                        help="act as USER (Impersonate-User); with the webhook in enforce mode, diff, sync "
                        f"and rollback must run as the GitOps identity, e.g. --as {GITOPS_USER}")  # fmt: skip
    return common


def kubeconfig_for(args: argparse.Namespace, env: Mapping[str, str]) -> Path | None:
    """The kubeconfig to load; None means the in-cluster service account (in a pod, with no file)."""
    if args.kubeconfig is not None:
        if not args.kubeconfig.is_file():
            raise ConfigError(f"kubeconfig {args.kubeconfig} does not exist or is not a file (--kubeconfig)")
        return Path(args.kubeconfig)
    path = kubeconfig_path(env)
    if path.is_file():
        return path
    if not env.get("KUBECONFIG") and env.get("KUBERNETES_SERVICE_HOST"):
        return None
    where = "$KUBECONFIG" if env.get("KUBECONFIG") else "the default location"
    raise ConfigError(f"kubeconfig {path} ({where}) does not exist; pass --kubeconfig or set KUBECONFIG")


@asynccontextmanager
async def connect(args: argparse.Namespace, env: Mapping[str, str]) -> AsyncIterator[client.ApiClient]:
    """A client as the kubeconfig's user, or as ``--as`` USER by impersonation; closed on exit."""
    api = await api_client(kubeconfig=kubeconfig_for(args, env), context=args.context)
    if args.as_user:
        api.set_default_header("Impersonate-User", args.as_user)
    try:
        yield api
    finally:
        await api.close()


def auditor_settings(env: Mapping[str, str], *, namespace: str) -> AuditorSettings:
    """The Reconciler's settings: a Git cache under the driftwarden cache, the pinned (or PATH) tools."""
    tools = RenderTools(
        kubectl=kubectl_path(env),
        helm=helm_path(env),
    )
    return AuditorSettings(git_cache=cache_root(env) / "git", tools=tools, install_namespace=namespace)
