"""Plain-JSON requests to any Kubernetes API path, for kinds the typed client does not know.

Thin adapter over kubernetes-asyncio's ``ApiClient``: same authentication and TLS as the typed APIs,
dicts in and out, and failures turned into ``KubeError`` (``KubeUnavailableError`` when trying again
may help). It knows nothing about what the objects mean.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aiohttp
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from driftwarden.errors import KubeError, KubeUnavailableError

APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


def resource_path(
    *, group: str, version: str, plural: str, namespace: str | None = None, name: str | None = None
) -> str:
    """``/api/v1/namespaces/ns/configmaps/name`` or ``/apis/apps/v1/deployments``, for any resource."""
    base = f"/apis/{group}/{version}" if group else f"/api/{version}"
    if namespace:
        base += f"/namespaces/{namespace}"
    base += f"/{plural}"
    return f"{base}/{name}" if name else base


def _error(exc: ApiException, *, method: str, path: str) -> KubeError:
    body = exc.body.decode(errors="replace") if isinstance(exc.body, bytes) else str(exc.body or "")
    message, reason = body, str(exc.reason or "")
    try:
        status = json.loads(body)
        message, reason = status.get("message", body), status.get("reason", reason)
    except (ValueError, AttributeError):
        pass
    text = f"{method} {path}: {exc.status} {reason}: {message}"
    if exc.status in (429, 500, 502, 503, 504) or not exc.status:
        return KubeUnavailableError(text, status=exc.status, reason=reason)
    return KubeError(text, status=exc.status, reason=reason)


async def request_json(
    api: client.ApiClient,
    method: str,
    path: str,
    *,
    query: Mapping[str, str | int | bool] | None = None,
    body: Any = None,
    content_type: str = "application/json",
    request_timeout: float | None = None,
) -> dict[str, Any]:
    """Send one request and return the decoded JSON object the API server answered with."""
    headers = {"Accept": "application/json", "Content-Type": content_type}
    params = [(k, str(v).lower() if isinstance(v, bool) else v) for k, v in (query or {}).items()]
    try:
        result = await api.call_api(
            path, method,
            query_params=params, header_params=headers, body=body,
            response_types_map={200: "object", 201: "object", 202: "object"},
            auth_settings=["BearerToken"], _return_http_data_only=True,
            _request_timeout=request_timeout,
        )  # fmt: skip
    except ApiException as exc:
        raise _error(exc, method=method, path=path) from exc
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise KubeUnavailableError(f"{method} {path}: API server unreachable: {exc}") from exc
    if not isinstance(result, dict):
        raise KubeError(f"{method} {path}: expected a JSON object, got {type(result).__name__}")
    return result
