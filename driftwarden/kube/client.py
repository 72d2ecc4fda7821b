"""Kubernetes client setup shared by both processes: kubeconfig, in-cluster, or explicit credentials.

Thin adapter over kubernetes-asyncio: it builds ``ApiClient`` objects and nothing else. Which credentials
to load is decided before, once, by ``driftwarden.settings.kube_access`` (kubectl's order); this module only
loads them, and must not look at the environment. TLS is always verified against the cluster's CA; there is
no switch to turn verification off.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml
from kubernetes_asyncio import client, config
from kubernetes_asyncio.config.config_exception import ConfigException
from kubernetes_asyncio.config.incluster_config import (
    SERVICE_HOST_ENV_NAME,
    SERVICE_PORT_ENV_NAME,
    InClusterConfigLoader,
)
from opentelemetry import trace

from driftwarden.errors import ConfigError
from driftwarden.kube.trace import TracedApiClient
from driftwarden.settings import KubeAccess


@dataclass(frozen=True)
class UserCredentials:
    """What a client needs to reach the API server as one user."""

    server: str
    ca_file: Path
    user: str
    cert_file: Path | None = None
    key_file: Path | None = None
    token: str | None = None
    kubeconfig: Path | None = None


def configuration_for(creds: UserCredentials) -> client.Configuration:
    """A client configuration that authenticates as ``creds.user`` (client certificate or token)."""
    configuration = client.Configuration()
    configuration.host = creds.server
    configuration.ssl_ca_cert = str(creds.ca_file)
    configuration.verify_ssl = True
    if creds.cert_file is not None and creds.key_file is not None:
        configuration.cert_file = str(creds.cert_file)
        configuration.key_file = str(creds.key_file)
    if creds.token is not None:
        configuration.api_key = {"BearerToken": creds.token}
        configuration.api_key_prefix = {"BearerToken": "Bearer"}
    return configuration


def _client(configuration: client.Configuration, tracer: trace.Tracer | None) -> client.ApiClient:
    if tracer is None:
        return client.ApiClient(configuration)
    return TracedApiClient(configuration, tracer=tracer)


def api_client_for(creds: UserCredentials, *, tracer: trace.Tracer | None = None) -> client.ApiClient:
    """An API client acting as ``creds.user``; close it with ``await api.close()`` or ``async with``.

    With ``tracer``, every request it sends is a client span (driftwarden.kube.trace).
    """
    return _client(configuration_for(creds), tracer)


def _first_current_context(paths: tuple[Path, ...]) -> str | None:
    """The current-context of a merged list as kubectl picks it: the first file's that sets one.

    (kubernetes-asyncio's merger would take the last one's.)
    """
    if len(paths) < 2:
        return None
    for path in paths:
        document = yaml.safe_load(path.read_text())
        if isinstance(document, dict) and document.get("current-context"):
            return str(document["current-context"])
    return None


async def api_client(access: KubeAccess, *, tracer: trace.Tracer | None = None) -> client.ApiClient:
    """An API client with the credentials ``access`` names (``driftwarden.settings.kube_access`` resolves
    them in kubectl's order); ConfigError, saying what to check, when they do not load.

    With ``tracer``, every request it sends is a client span (driftwarden.kube.trace).
    """
    configuration = client.Configuration()
    try:
        if access.in_cluster:
            InClusterConfigLoader(
                token_filename=str(access.service_account_dir / "token"),
                cert_filename=str(access.service_account_dir / "ca.crt"),
                environ={
                    SERVICE_HOST_ENV_NAME: access.service_host,
                    SERVICE_PORT_ENV_NAME: access.service_port,
                },
            ).load_and_set(configuration)
        else:
            await config.load_kube_config(
                # kubernetes-asyncio merges a list joined as $KUBECONFIG joins it, as kubectl does
                config_file=os.pathsep.join(str(path) for path in access.kubeconfigs),
                context=access.context or _first_current_context(access.kubeconfigs),
                client_configuration=configuration,
            )  # fmt: skip
    except (ConfigException, OSError, yaml.YAMLError) as exc:
        hint = "" if access.in_cluster else " (check the file and --context: `kubectl config get-contexts`)"
        raise ConfigError(
            f"cannot load Kubernetes credentials from {access.describe()}: {exc}{hint}"
        ) from exc
    return _client(configuration, tracer)
