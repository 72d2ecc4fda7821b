"""Kubernetes client setup shared by both processes: kubeconfig, in-cluster, or explicit credentials.

Thin adapter over kubernetes-asyncio: it builds ``ApiClient`` objects and nothing else. Which credentials
to load is decided before, once, by ``driftwarden.settings.kube_access`` (kubectl's order); this module only
loads them, and must not look at the environment. TLS is always verified against the cluster's CA; there is
no switch to turn verification off.

Proxies: a kubeconfig's ``proxy-url`` first (as kubectl), else the ``HTTPS_PROXY``/``HTTP_PROXY`` and
``NO_PROXY`` the command started with (``driftwarden.settings.ProxyEnvironment``), decided once per client.
The HTTP session never trusts the environment itself: aiohttp would look the proxy variables and
``~/.netrc`` up again for every request, each in a worker thread (about half of a request's cost on the
client side in a profile of the full audit).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
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
from driftwarden.settings import KubeAccess, ProxyEnvironment

READ_BUFFER = 2**21
"""kubernetes-asyncio's read buffer (a watch event of a large object exceeds aiohttp's default)."""


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


def bypassed(host: str, no_proxy: str) -> bool:
    """True when ``NO_PROXY`` names ``host``: ``*``, the host itself, or a domain it is in (a leading dot
    is optional), as Python's urllib (and so aiohttp) reads it."""
    if no_proxy.strip() == "*":
        return True
    host = host.lower()
    for entry in no_proxy.split(","):
        name = entry.strip().lstrip(".").lower()
        if name and (host == name or host.endswith(f".{name}")):
            return True
    return False


def proxy_for(url: str, proxies: ProxyEnvironment) -> str | None:
    """The proxy a request to ``url`` goes through: ``HTTPS_PROXY`` (``HTTP_PROXY`` for ``http://``) unless
    ``NO_PROXY`` names its host; None for a direct connection."""
    split = urlsplit(url)
    proxy = proxies.https if split.scheme == "https" else proxies.http if split.scheme == "http" else ""
    if not proxy or not split.hostname or bypassed(split.hostname, proxies.no_proxy):
        return None
    return proxy


def _client(
    configuration: client.Configuration, tracer: trace.Tracer | None, proxies: ProxyEnvironment
) -> client.ApiClient:
    if not configuration.proxy:  # a kubeconfig's proxy-url comes first, as in kubectl
        configuration.proxy = proxy_for(configuration.host or "", proxies)
    api = client.ApiClient(configuration) if tracer is None else TracedApiClient(configuration, tracer=tracer)
    # kubernetes-asyncio's session trusts the environment (proxy variables and ~/.netrc, looked up in a
    # thread for every request); the proxy is decided above, once, so the session need not.
    rest = api.rest_client
    trusting = rest.pool_manager
    rest.pool_manager = aiohttp.ClientSession(
        connector=trusting.connector, trust_env=False, read_bufsize=READ_BUFFER
    )
    trusting.detach()  # the connector (its TLS context and pool) now belongs to the new session
    return api


def api_client_for(
    creds: UserCredentials,
    *,
    tracer: trace.Tracer | None = None,
    proxies: ProxyEnvironment | None = None,
) -> client.ApiClient:
    """An API client acting as ``creds.user``; close it with ``await api.close()`` or ``async with``.

    With ``tracer``, every request it sends is a client span (driftwarden.kube.trace); without
    ``proxies``, it connects directly.
    """
    return _client(configuration_for(creds), tracer, proxies or ProxyEnvironment())


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
    return _client(configuration, tracer, access.proxies)
