"""Where the webhook's certificates live in the cluster: two Secrets and the webhook configurations.

Kubernetes adapter of ``certs``: it reads everything the plan needs into one ``Snapshot`` and writes back
exactly what a step produced. Secrets are written with their resourceVersion (a concurrent rotator gets a
409 instead of overwriting), caBundles by server-side apply with the field manager ``driftwarden-certs``,
so re-applying the manifests (which carry no caBundle) never undoes them. Errors are ``KubeError``;
it decides nothing about when to renew.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field, replace
from typing import Any

from kubernetes_asyncio import client

from certs.pki import KeyPair
from certs.plan import PublishMark, Stored
from driftwarden import contract
from driftwarden.errors import KubeError
from driftwarden.kube.rest import APPLY_PATCH, request_json, resource_path

FIELD_MANAGER = "driftwarden-certs"
ANNOTATION_PUBLISHED = "certs.driftwarden.io/ca-published"
"""On the CA Secret: ``<fingerprint>@<time>`` — since when every caBundle has held the active CA."""
ADMISSION_GROUP, ADMISSION_VERSION = "admissionregistration.k8s.io", "v1"
LABELS = {"app.kubernetes.io/name": "driftwarden", "app.kubernetes.io/managed-by": FIELD_MANAGER}


@dataclass(frozen=True)
class Location:
    """The Secrets and webhook configurations one rotator owns."""

    namespace: str = contract.DEFAULT_INSTALL_NAMESPACE
    tls_secret: str = contract.WEBHOOK_TLS_SECRET
    ca_secret: str = contract.WEBHOOK_CA_SECRET
    validating: tuple[str, ...] = (contract.VALIDATING_WEBHOOK_CONFIGURATION,)
    mutating: tuple[str, ...] = (contract.MUTATING_WEBHOOK_CONFIGURATION,)

    def configurations(self) -> tuple[tuple[str, str], ...]:
        """(kind, name) of every webhook configuration whose caBundle is kept current."""
        return tuple(("ValidatingWebhookConfiguration", n) for n in self.validating) + tuple(
            ("MutatingWebhookConfiguration", n) for n in self.mutating
        )


@dataclass(frozen=True)
class WebhookConfiguration:
    kind: str
    name: str
    hooks: tuple[str, ...]
    bundles: tuple[bytes, ...]


@dataclass(frozen=True)
class Snapshot:
    """What was read, with the versions a write must match."""

    stored: Stored
    ca_version: str | None = None
    tls_version: str | None = None
    configurations: tuple[WebhookConfiguration, ...] = field(default=())


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any) -> bytes:
    if not isinstance(text, str):
        return b""
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        return b""


def _plural(kind: str) -> str:
    return kind.lower() + "s"


class CertStore:
    """Reads and writes one rotator's Secrets and caBundles through ``api``."""

    def __init__(self, api: client.ApiClient, location: Location) -> None:
        self.api = api
        self.location = location

    def _secret_path(self, name: str | None = None) -> str:
        return resource_path(group="", version="v1", plural="secrets",
                             namespace=self.location.namespace, name=name)  # fmt: skip

    async def _get(self, path: str) -> dict[str, Any] | None:
        try:
            return await request_json(self.api, "GET", path)
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    async def read(self) -> Snapshot:
        ca_secret = await self._get(self._secret_path(self.location.ca_secret))
        tls_secret = await self._get(self._secret_path(self.location.tls_secret))
        configurations = []
        for kind, name in self.location.configurations():
            path = resource_path(
                group=ADMISSION_GROUP, version=ADMISSION_VERSION, plural=_plural(kind), name=name
            )
            found = await self._get(path)
            if found is None:
                continue  # not installed (yet): nothing to keep current
            hooks = [h for h in found.get("webhooks") or [] if isinstance(h, dict)]
            configurations.append(WebhookConfiguration(
                kind, name, tuple(str(h.get("name")) for h in hooks),
                tuple(_unb64((h.get("clientConfig") or {}).get("caBundle")) for h in hooks),
            ))  # fmt: skip
        stored = Stored(webhook_bundles=tuple(b for c in configurations for b in c.bundles))
        ca_version = tls_version = None
        if ca_secret is not None:
            data = ca_secret.get("data") or {}
            annotations = (ca_secret.get("metadata") or {}).get("annotations") or {}
            cert, key = _unb64(data.get("ca.crt")), _unb64(data.get("ca.key"))
            stored = replace(
                stored,
                ca=KeyPair(cert, key) if cert and key else None,
                retired=_unb64(data.get("retired.crt")),
                mark=PublishMark.decode(annotations.get(ANNOTATION_PUBLISHED)),
            )
            ca_version = ca_secret["metadata"]["resourceVersion"]
        if tls_secret is not None:
            data = tls_secret.get("data") or {}
            cert, key = _unb64(data.get("tls.crt")), _unb64(data.get("tls.key"))
            if cert and key:  # a Secret without a pair gets one, with ca.crt, from the next issue
                stored = replace(
                    stored, serving=KeyPair(cert, key), serving_bundle=_unb64(data.get("ca.crt"))
                )
            tls_version = tls_secret["metadata"]["resourceVersion"]
        return Snapshot(stored, ca_version, tls_version, tuple(configurations))

    async def _write_secret(
        self,
        name: str,
        version: str | None,
        *,
        type_: str,
        data: dict[str, bytes],
        annotations: dict[str, str],
    ) -> None:
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": type_,
            "metadata": {"name": name, "namespace": self.location.namespace, "labels": LABELS,
                         "annotations": annotations},
            "data": {k: _b64(v) for k, v in data.items()},
        }  # fmt: skip
        if version is None:
            await request_json(self.api, "POST", self._secret_path(), body=body)  # 409 if someone was first
        else:
            body["metadata"]["resourceVersion"] = version  # 409 if it changed since it was read
            await request_json(self.api, "PUT", self._secret_path(name), body=body)

    async def write_ca(
        self, snapshot: Snapshot, *, ca: KeyPair, retired: bytes, mark: PublishMark | None
    ) -> None:
        """Store the active CA (certificate and key), the retired CAs, and the publish mark."""
        annotations = {ANNOTATION_PUBLISHED: mark.encode()} if mark else {}
        data = {"ca.crt": ca.cert_pem, "ca.key": ca.key_pem, "retired.crt": retired}
        await self._write_secret(self.location.ca_secret, snapshot.ca_version, type_="Opaque",
                                 data=data, annotations=annotations)  # fmt: skip

    async def write_serving(self, snapshot: Snapshot, *, serving: KeyPair, bundle: bytes) -> None:
        """Store the serving certificate, its key and the trust bundle in the kubernetes.io/tls Secret."""
        data = {"tls.crt": serving.cert_pem, "tls.key": serving.key_pem, "ca.crt": bundle}
        await self._write_secret(self.location.tls_secret, snapshot.tls_version, type_="kubernetes.io/tls",
                                 data=data, annotations={})  # fmt: skip

    async def inject(self, snapshot: Snapshot, *, bundle: bytes) -> tuple[str, ...]:
        """Set ``bundle`` as the caBundle of every webhook of every installed configuration that differs;
        returns the names of the configurations written."""
        written = []
        for config in snapshot.configurations:
            if all(b == bundle for b in config.bundles):
                continue
            body = {
                "apiVersion": f"{ADMISSION_GROUP}/{ADMISSION_VERSION}",
                "kind": config.kind,
                "metadata": {"name": config.name},
                "webhooks": [{"name": h, "clientConfig": {"caBundle": _b64(bundle)}} for h in config.hooks],
            }
            path = resource_path(group=ADMISSION_GROUP, version=ADMISSION_VERSION,
                                 plural=_plural(config.kind), name=config.name)  # fmt: skip
            query: dict[str, str | int | bool] = {"fieldManager": FIELD_MANAGER, "force": True}
            await request_json(self.api, "PATCH", path, query=query, body=body, content_type=APPLY_PATCH)
            written.append(config.name)
        return tuple(written)
