"""How a command reaches the cluster: kubectl's credentials, one client, and failures a user can act on.

Run-time orchestration for every command that talks to the API server (``app``, ``webhook install`` and
``uninstall``, ``certs check`` and ``rotate``): the credentials come from ``driftwarden.settings.kube_access``
(``--kubeconfig``, ``$KUBECONFIG``, the pod's service account, ``~/.kube/config``) with the environment
snapshot the CLI read once; an API server that cannot be reached becomes a ``KubeUnavailableError`` that
says which server and which credentials, instead of a traceback.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import aiohttp
from kubernetes_asyncio import client

from driftwarden.errors import KubeUnavailableError
from driftwarden.kube.client import api_client
from driftwarden.settings import KubeAccess, kube_access


@asynccontextmanager
async def connect(
    args: argparse.Namespace, env: Mapping[str, str], *, as_user: str | None = None
) -> AsyncIterator[client.ApiClient]:
    """A client for the block, with the credentials ``--kubeconfig`` and ``--context`` (cli.flags.kube_flags)
    lead to, acting as their user or as ``as_user`` by impersonation; closed after."""
    chosen = kube_access(env, kubeconfig=args.kubeconfig, context=args.context)
    api = await api_client(chosen)
    if as_user:
        api.set_default_header("Impersonate-User", as_user)
    try:
        yield api
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise KubeUnavailableError(
            f"cannot reach the API server at {api.configuration.host}: {exc}; {_hint(chosen)}"
        ) from exc
    except KubeUnavailableError as exc:
        if exc.status is not None:  # it answered (5xx, 429): the credentials found it
            raise
        raise KubeUnavailableError(f"{exc}; {_hint(chosen)}", reason=exc.reason) from exc
    finally:
        await api.close()


def _hint(chosen: KubeAccess) -> str:
    return f"is it running, and does {chosen.describe()} name the cluster you mean?"
