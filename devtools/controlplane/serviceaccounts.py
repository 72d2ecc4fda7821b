"""Real service-account identities on the local control plane, through the TokenRequest API.

Adapter: creates the Namespace and ServiceAccount when missing and asks the API server for a token it
signed itself, so a client acts as ``system:serviceaccount:<ns>:<name>`` exactly as a pod would.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from devtools.controlplane.kubeconfig import kubeconfig
from driftwarden.errors import KubeError
from driftwarden.kube.client import UserCredentials


async def _create_if_missing(what: str, create: Callable[[], Awaitable[Any]]) -> None:
    try:
        await create()
    except ApiException as exc:
        if exc.status != 409:  # 409 Conflict: it exists already, which is what we want
            raise KubeError(f"cannot create {what}: {exc.reason}", status=exc.status) from exc


async def service_account_credentials(
    admin: client.ApiClient,
    namespace: str,
    name: str,
    *,
    server: str,
    ca_file: Path,
    expiration_seconds: int = 3600,
) -> UserCredentials:
    """A bearer token for ServiceAccount ``namespace/name``, created (with its namespace) if needed."""
    core = client.CoreV1Api(admin)
    await _create_if_missing(
        f"namespace {namespace}",
        lambda: core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace))),
    )
    await _create_if_missing(
        f"serviceaccount {namespace}/{name}",
        lambda: core.create_namespaced_service_account(
            namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name))
        ),
    )
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=expiration_seconds)
    )
    try:
        token = await core.create_namespaced_service_account_token(name, namespace, request)
    except ApiException as exc:
        raise KubeError(
            f"token request for {namespace}/{name} failed: {exc.reason}", status=exc.status
        ) from exc
    user = f"system:serviceaccount:{namespace}:{name}"
    return UserCredentials(server, ca_file, user, token=token.status.token)


def write_token_kubeconfig(creds: UserCredentials, path: Path) -> Path:
    """``creds`` (a token from ``service_account_credentials``) as a kubeconfig file at ``path``, mode 0600,
    for a process that takes ``--kubeconfig``."""
    assert creds.token is not None
    config = kubeconfig(creds.server, ca_pem=creds.ca_file.read_bytes(), user=creds.user, token=creds.token)
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path
