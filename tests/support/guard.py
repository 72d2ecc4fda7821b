"""driftwarden's webhook running for real in front of the test control plane.

The webhook serves in-process over HTTPS on 127.0.0.1 with a certificate from its own CA; the webhook
configurations name that URL and carry the CA as caBundle, so the API server verifies TLS for real.
Spans go to an in-memory exporter, which doubles as the count of reviews the API server sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from certs.pki import CertRequest, KeyPair, issue, new_ca
from driftwarden import contract
from driftwarden.kube.rest import APPLY_PATCH, request_json, resource_path
from webhook.admission.profiles import get_profile
from webhook.admission.settings import make_settings
from webhook.app import make_app
from webhook.install import install, uninstall
from webhook.registration import Endpoint, mutating_configuration, selection_for, validating_configuration
from webhook.server import ServerSettings, WebhookServer

AUDITOR_NS = contract.DEFAULT_INSTALL_NAMESPACE
AUDITOR_USER = contract.auditor_identity()
BREAKGLASS_GROUP = "sre-breakglass"


def serving_certificate(ca: KeyPair, *, now: dt.datetime) -> KeyPair:
    """A 127.0.0.1 serving certificate for a day, signed by ``ca``."""
    return issue(
        CertRequest(common_name="driftwarden-webhook", dns_names=("localhost",),
                    ip_addresses=("127.0.0.1",), server=True, validity=dt.timedelta(days=1)),
        ca=ca, now=now,
    )  # fmt: skip


def serving_pair(directory: Path) -> tuple[KeyPair, Path, Path]:
    """A CA and a 127.0.0.1 serving certificate signed by it; returns (ca, cert file, key file)."""
    now = dt.datetime.now(dt.UTC)
    ca = new_ca("driftwarden-test-webhook-ca", now=now, validity=dt.timedelta(days=2))
    leaf = serving_certificate(ca, now=now)
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "tls.crt", directory / "tls.key"
    cert.write_bytes(leaf.cert_pem)
    key.write_bytes(leaf.key_pem)
    return ca, cert, key


@dataclass
class Guard:
    """The running webhook: its server, its spans, and how to reach it."""

    server: WebhookServer
    spans: InMemorySpanExporter
    ca: KeyPair

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.port}"

    def reviews(self) -> list[ReadableSpan]:
        return [s for s in self.spans.get_finished_spans() if s.name == "admission.review"]


async def grant_cluster_admin(
    admin: client.ApiClient, *, users: Sequence[str] = (), sa: Sequence[str] = ()
) -> None:
    """Bind people and service accounts to cluster-admin so RBAC never hides what admission decides."""
    rbac = client.RbacAuthorizationV1Api(admin)
    subjects = [
        client.RbacV1Subject(kind="User", name=u, api_group="rbac.authorization.k8s.io") for u in users
    ]
    for ref in sa:
        ns, _, name = ref.partition("/")
        subjects.append(client.RbacV1Subject(kind="ServiceAccount", name=name, namespace=ns))
    binding = client.V1ClusterRoleBinding(
        metadata=client.V1ObjectMeta(name=f"test-admins-{uuid.uuid4().hex[:6]}"),
        role_ref=client.V1RoleRef(
            api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="cluster-admin"
        ),
        subjects=subjects,
    )
    await rbac.create_cluster_role_binding(binding)


@contextlib.asynccontextmanager
async def running_guard(
    admin: client.ApiClient,
    workdir: Path,
    *,
    profile: str = "driftwarden",
    default_mode: str = "enforce",
    strict: bool = False,
    provider: TracerProvider | None = None,
    installed_mode: str | None = None,
) -> AsyncIterator[Guard]:
    """Serve the webhook and install its configurations; uninstall and stop on exit.

    The configurations are built with ``default_mode`` as ``webhook install`` is given it, unless
    ``installed_mode`` says otherwise (a mismatch with the webhook's own, on purpose).

    Spans always go to an in-memory exporter (``Guard.reviews``), and also to ``provider``'s own
    exporters when one is given (a real OTLP backend).
    """
    ca, cert, key = serving_pair(workdir)
    exporter = InMemorySpanExporter()
    provider = provider or TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    chosen = get_profile(profile)
    identities = [AUDITOR_USER] if profile == "driftwarden" else sorted(chosen.default_identities)
    settings = make_settings(
        profile=chosen, gitops_identities=identities, breakglass_groups=[BREAKGLASS_GROUP],
        default_mode=default_mode, strict=strict,
    )  # fmt: skip
    app = make_app(settings, tracer=provider.get_tracer("test"))
    async with WebhookServer(app, ServerSettings(cert, key, host="127.0.0.1", port=0)) as server:
        guard = Guard(server, exporter, ca)
        selection = selection_for(
            chosen, skip_users=identities, timeout_seconds=5, default_mode=installed_mode or default_mode,
            breakglass_groups=[BREAKGLASS_GROUP],
        )  # fmt: skip
        endpoint = Endpoint(ca_bundle=ca.cert_pem, url=guard.url)
        await install(
            admin,
            validating=validating_configuration(endpoint=endpoint, selection=selection),
            mutating=mutating_configuration(endpoint=endpoint, selection=selection),
        )
        try:
            yield guard
        finally:
            await uninstall(admin)


@contextlib.asynccontextmanager
async def guard_for_people(
    admin: client.ApiClient, workdir: Path, *, people: Sequence[str]
) -> AsyncIterator[Guard]:
    """``running_guard`` in front of a cluster where ``people`` are cluster-admins (RBAC never hides
    what admission decides) and the auditor acts with its ClusterRole from manifests/, never admin."""
    from tests.support.auditor import install_crd_and_rbac  # the auditor's stack, only here

    await ensure_namespace(admin, AUDITOR_NS)
    await grant_cluster_admin(admin, users=people)
    await install_crd_and_rbac(admin)
    async with running_guard(admin, workdir) as running:
        yield running


async def ensure_namespace(admin: client.ApiClient, name: str) -> None:
    with contextlib.suppress(ApiException):
        await client.CoreV1Api(admin).create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=name))
        )


def managed(manifest: dict[str, Any], *, app: str = "web-app", guard: str | None = None) -> dict[str, Any]:
    """``manifest`` stamped the way the auditor stamps what it applies (label, tracking-id, guard)."""
    meta = manifest["metadata"]
    api_version = manifest["apiVersion"]
    group = api_version.split("/")[0] if "/" in api_version else ""
    tracking = f"{AUDITOR_NS}/{app}:{group}/{manifest['kind']}:{meta.get('namespace', '')}/{meta['name']}"
    meta.setdefault("labels", {})[contract.LABEL_APP] = app
    annotations = meta.setdefault("annotations", {})
    annotations[contract.ANNOTATION_TRACKING_ID] = tracking
    if guard:
        annotations[contract.ANNOTATION_GUARD] = guard
    return manifest


def deployment(name: str, namespace: str, *, image: str = "nginx:1.27", replicas: int = 2) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": image}]},
            },
        },
    }


async def apply(
    api: client.ApiClient,
    manifest: dict[str, Any],
    *,
    plural: str,
    manager: str = "driftwarden",
    dry_run: bool = False,
) -> dict[str, Any]:
    """Server-side apply ``manifest`` with field manager ``manager`` (the auditor's, by default)."""
    group, _, version = manifest["apiVersion"].rpartition("/")
    meta = manifest["metadata"]
    path = resource_path(
        group=group, version=version, plural=plural, namespace=meta.get("namespace"), name=meta["name"]
    )
    query: dict[str, str | bool] = {"fieldManager": manager, "force": True}
    if dry_run:
        query["dryRun"] = "All"
    return await request_json(api, "PATCH", path, query=query, body=manifest, content_type=APPLY_PATCH)


async def wait_for_guard(probe: Any, *, attempts: int = 100) -> None:
    """Retry ``probe`` (an edit the guard must deny) until the API server has started calling us."""
    for _ in range(attempts):
        try:
            await probe()
        except ApiException as exc:
            if exc.status == 403 and "driftwarden" in str(exc.body):
                return
            raise
        await asyncio.sleep(0.1)
    raise AssertionError("the API server never called the webhook")
