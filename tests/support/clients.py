"""Kubernetes clients that act as real users on the local control plane.

People are client certificates signed by the control plane's client CA (CN = user, O = groups);
service accounts get tokens from the TokenRequest API. Every client verifies the API server's TLS.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from kubernetes_asyncio import client
from opentelemetry import trace

from devtools.controlplane import ControlPlane, UserCredentials
from devtools.controlplane.serviceaccounts import service_account_credentials
from driftwarden.kube.client import api_client_for


@dataclass
class Clients:
    """Makes API clients for any identity and closes them all at teardown."""

    plane: ControlPlane
    _open: list[client.ApiClient] = field(default_factory=list)

    def _track(self, api: client.ApiClient) -> client.ApiClient:
        self._open.append(api)
        return api

    @property
    def admin(self) -> client.ApiClient:
        assert self.plane.admin is not None
        return self._track(api_client_for(self.plane.admin))

    async def user_credentials(self, name: str, *, groups: tuple[str, ...] = ()) -> UserCredentials:
        return await asyncio.to_thread(self.plane.user, name, groups=groups)

    async def user(self, name: str, *, groups: tuple[str, ...] = ()) -> client.ApiClient:
        """A client that authenticates as person ``name`` in ``groups`` by client certificate."""
        return self._track(api_client_for(await self.user_credentials(name, groups=groups)))

    async def service_account(
        self, namespace: str, name: str, *, tracer: trace.Tracer | None = None
    ) -> client.ApiClient:
        """A client that authenticates as ``system:serviceaccount:<namespace>:<name>`` by token.

        With ``tracer``, its requests are client spans (driftwarden.kube.trace), as in the auditor.
        """
        creds = await service_account_credentials(
            self.admin, namespace, name, server=self.plane.url, ca_file=self.plane.pki.serving_ca_file
        )
        return self._track(api_client_for(creds, tracer=tracer))

    async def close(self) -> None:
        for api in self._open:
            await api.close()
        self._open.clear()
