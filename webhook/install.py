"""Install or remove the webhook configurations in a cluster (Kubernetes adapter).

Server-side apply with its own field manager, so re-installing is idempotent and a changed caBundle
or URL replaces the old one. Raises ``KubeError`` with the API server's reason on failure.
"""

from __future__ import annotations

from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from driftwarden.errors import KubeError
from webhook.registration import MUTATING_NAME, VALIDATING_NAME

FIELD_MANAGER = "driftwarden-installer"
APPLY = "application/apply-patch+yaml"


async def install(api: client.ApiClient, *, validating: dict[str, Any], mutating: dict[str, Any]) -> None:
    """Apply both configurations; the API server starts calling the webhook shortly after."""
    admission = client.AdmissionregistrationV1Api(api)
    try:
        await admission.patch_validating_webhook_configuration(
            validating["metadata"]["name"], validating,
            field_manager=FIELD_MANAGER, force=True, _content_type=APPLY,  # type: ignore[call-arg]
        )  # fmt: skip
        await admission.patch_mutating_webhook_configuration(
            mutating["metadata"]["name"], mutating,
            field_manager=FIELD_MANAGER, force=True, _content_type=APPLY,  # type: ignore[call-arg]
        )  # fmt: skip
    except ApiException as exc:
        body = exc.body.decode(errors="replace") if isinstance(exc.body, bytes) else str(exc.body)
        raise KubeError(f"installing webhook configurations failed: {exc.reason}: {body}",
                        status=exc.status) from exc  # fmt: skip


async def uninstall(api: client.ApiClient) -> None:
    """Delete both configurations (always possible: webhooks are never called for these objects)."""
    admission = client.AdmissionregistrationV1Api(api)
    for delete, name in (
        (admission.delete_validating_webhook_configuration, VALIDATING_NAME),
        (admission.delete_mutating_webhook_configuration, MUTATING_NAME),
    ):
        try:
            await delete(name)
        except ApiException as exc:
            if exc.status != 404:
                raise KubeError(f"deleting {name} failed: {exc.reason}", status=exc.status) from exc
