"""Read Application objects and write their status (and, for rollback, their spec) in the cluster.

Kubernetes adapter over ``driftwarden.kube.rest``: plain dicts in and out, a timeout on every request,
``driftwarden.errors`` on failure. Parsing (``auditor.application``) and building the status
(``auditor.status``) happen in the pure core; this module must not interpret either.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubernetes_asyncio import client

from auditor.kube.discovery import DEFAULT_REQUEST_TIMEOUT
from auditor.leadership.fence import Fence, check_write
from auditor.objects import AppKey
from driftwarden.contract import API_VERSION, APPLICATION_KIND, APPLICATION_PLURAL, GROUP, VERSION
from driftwarden.errors import KubeError
from driftwarden.kube.rest import MERGE_PATCH, request_json, resource_path


def _path(namespace: str | None = None, name: str | None = None, *, status: bool = False) -> str:
    path = resource_path(
        group=GROUP, version=VERSION, plural=APPLICATION_PLURAL, namespace=namespace, name=name
    )
    return f"{path}/status" if status else path


class ApplicationStore:
    """Applications (``driftwarden.io/v1alpha1``) as the identity of ``api``."""

    def __init__(
        self,
        api: client.ApiClient,
        *,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        fence: Fence | None = None,
    ) -> None:
        self._api = api
        self._timeout = request_timeout
        self._fence = fence
        """Checked before every write: a replica that lost the Lease writes no status."""

    async def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        check_write(self._fence, method, path, kwargs.get("query"))
        return await request_json(self._api, method, path, request_timeout=self._timeout, **kwargs)

    async def get_application(self, app: AppKey) -> dict[str, Any] | None:
        """The Application ``app`` names, or None when it does not exist."""
        try:
            return await self._request("GET", _path(app.namespace, app.name))
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    async def list_applications(self, namespace: str | None = None) -> list[dict[str, Any]]:
        """Every Application in ``namespace`` (all namespaces when None), sorted by namespace and name."""
        listing = await self._request("GET", _path(namespace))
        found = listing.get("items") or ()
        items = [{**item, "apiVersion": API_VERSION, "kind": APPLICATION_KIND} for item in found]
        return sorted(items, key=lambda i: (i["metadata"]["namespace"], i["metadata"]["name"]))

    async def patch_application_status(
        self, app: AppKey, status: Mapping[str, Any], *, resource_version: str | None = None
    ) -> dict[str, Any]:
        """Merge-patch ``status`` into the Application's status subresource; returns the stored object.

        JSON merge patch (RFC 7386): lists are replaced whole, mappings merged key by key, and a key
        set to None is removed, so pass ``{"operationState": None}`` to drop one. With
        ``resource_version`` the write fails with a 409 ``KubeError`` if the object changed since.
        """
        body: dict[str, Any] = {"status": dict(status)}
        if resource_version is not None:
            body["metadata"] = {"resourceVersion": resource_version}
        path = _path(app.namespace, app.name, status=True)
        return await self._request("PATCH", path, body=body, content_type=MERGE_PATCH)

    async def patch_application_spec(
        self, app: AppKey, spec: Mapping[str, Any], *, resource_version: str | None = None
    ) -> dict[str, Any]:
        """Merge-patch ``spec`` into the Application (e.g. ``{"syncPolicy": {"automated": None}}``).

        Used by rollback to turn automated sync off; the status subresource is left as it is.
        """
        body: dict[str, Any] = {"spec": dict(spec)}
        if resource_version is not None:
            body["metadata"] = {"resourceVersion": resource_version}
        path = _path(app.namespace, app.name)
        return await self._request("PATCH", path, body=body, content_type=MERGE_PATCH)

    async def set_finalizers(self, app: AppKey, finalizers: list[str], *, resource_version: str) -> None:
        """Replace the Application's ``metadata.finalizers`` (409 ``KubeError`` if it changed since)."""
        body = {"metadata": {"finalizers": finalizers, "resourceVersion": resource_version}}
        await self._request("PATCH", _path(app.namespace, app.name), body=body, content_type=MERGE_PATCH)
