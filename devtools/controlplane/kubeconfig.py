"""Kubeconfig documents for the local control plane's users.

Pure: builds the kubeconfig as a dict (certificates embedded as base64 data) so it can be written
anywhere or handed to a client. It must not read or write files.
"""

from __future__ import annotations

import base64
from typing import Any

CLUSTER_NAME = "driftwarden-local"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def kubeconfig(
    server: str,
    *,
    ca_pem: bytes,
    user: str,
    cert_pem: bytes | None = None,
    key_pem: bytes | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    """A one-context kubeconfig for ``user`` at ``server``, by client certificate or bearer token."""
    credentials: dict[str, str] = {}
    if cert_pem is not None and key_pem is not None:
        credentials = {"client-certificate-data": _b64(cert_pem), "client-key-data": _b64(key_pem)}
    if token is not None:
        credentials["token"] = token
    context = f"{user}@{CLUSTER_NAME}"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": CLUSTER_NAME, "cluster": {"server": server, "certificate-authority-data": _b64(ca_pem)}}
        ],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": context, "context": {"cluster": CLUSTER_NAME, "user": user}}],
        "current-context": context,
    }
