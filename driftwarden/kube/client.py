"""Kubernetes client setup shared by both processes: kubeconfig, in-cluster, or explicit credentials.

Thin adapter over kubernetes-asyncio: it builds ``ApiClient`` objects and nothing else. TLS is always
verified against the cluster's CA; there is no switch to turn verification off.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kubernetes_asyncio import client, config
from kubernetes_asyncio.config.config_exception import ConfigException
from opentelemetry import trace

from driftwarden.errors import ConfigError
from driftwarden.kube.trace import TracedApiClient


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


async def api_client(
    *, kubeconfig: Path | None = None, context: str | None = None, tracer: trace.Tracer | None = None
) -> client.ApiClient:
    """An API client from a kubeconfig file, or from the in-cluster service account when none is given.

    With ``tracer``, every request it sends is a client span (driftwarden.kube.trace).
    """
    configuration = client.Configuration()
    try:
        if kubeconfig is None:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            await config.load_kube_config(
                config_file=str(kubeconfig), context=context, client_configuration=configuration
            )
    except (ConfigException, OSError) as exc:
        where = f"kubeconfig {kubeconfig}" if kubeconfig else "the in-cluster service account"
        raise ConfigError(f"cannot load Kubernetes credentials from {where}: {exc}") from exc
    return _client(configuration, tracer)
