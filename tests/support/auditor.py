"""The auditor against the real control plane: CRD and RBAC installed, Applications created, a Reconciler.

Shared by the auditor's cluster tests and the end-to-end tests. The Reconciler acts as the auditor's real
service account, bound by manifests/rbac/auditor-clusterrole.yaml.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import yaml
from kubernetes_asyncio import client
from opentelemetry import trace

from auditor.application import Application, parse_application
from auditor.clients import AuditorClients
from auditor.heal.healer import Healer
from auditor.kube.cluster import Cluster
from auditor.ledger import Ledger
from auditor.loop import AuditorLoop
from auditor.notify import Notifier
from auditor.objects import AppKey
from auditor.process import auditor_loop
from auditor.reconcile import Reconciler
from auditor.settings import AuditorSettings
from auditor.source.renderers import RenderTools
from devtools.controlplane import ControlPlane
from driftwarden import contract
from driftwarden.kube.client import api_client_for
from driftwarden.kube.rest import request_json, resource_path
from driftwarden.settings import environment, helm_bin_dir
from driftwarden.telemetry.metrics import Instruments
from tests.support.clients import Clients

ROOT = Path(__file__).parents[2]
CRD_FILE = ROOT / "manifests/crd/applications.driftwarden.io.yaml"
RBAC_FILE = ROOT / "manifests/rbac/auditor-clusterrole.yaml"
AUDITOR_NS = contract.DEFAULT_INSTALL_NAMESPACE


async def install_crd_and_rbac(admin: client.ApiClient) -> None:
    """The Application CRD (waited on until Established) and the auditor's ClusterRole + binding."""
    cluster = Cluster(admin)
    for doc in [yaml.safe_load(CRD_FILE.read_text()), *yaml.safe_load_all(RBAC_FILE.read_text())]:
        await cluster.apply(doc, field_manager="driftwarden-installer")
    await cluster.wait_established(contract.APPLICATION_CRD_NAME, timeout=30)


async def wait_until_allowed(api: client.ApiClient, *, verb: str, group: str, resource: str) -> None:
    """Until the RBAC authorizer's cache has seen a new binding (it takes a moment)."""
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"verb": verb, "group": group, "resource": resource}},
    }
    for _ in range(100):
        answer = await request_json(api, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                                    body=review)  # fmt: skip
        if answer["status"].get("allowed"):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{verb} {group}/{resource} never became allowed")


def settings_for(plane: ControlPlane, cache: Path) -> AuditorSettings:
    env = environment()
    tools = RenderTools(kubectl=plane.binaries.kubectl, helm=helm_bin_dir(env) / "helm")
    return AuditorSettings(git_cache=cache, tools=tools)


def reconciler_for(
    api: client.ApiClient,
    settings: AuditorSettings,
    *,
    tracer: trace.Tracer | None = None,
    instruments: Instruments | None = None,
) -> Reconciler:
    """A Reconciler over ``api`` with a ledger of its own, for tests that run passes one by one."""
    clients = AuditorClients.build(api, settings=settings, tracer=tracer, instruments=instruments)
    return Reconciler(clients, Ledger())


async def service_reconciler(
    plane: ControlPlane, clients: Clients, cache: Path, *, group: str = "apps", resource: str = "deployments"
) -> Reconciler:
    """A Reconciler as the auditor's real service account, once RBAC lets it patch ``group/resource``."""
    api = await clients.service_account(AUDITOR_NS, contract.AUDITOR_SERVICE_ACCOUNT)
    await wait_until_allowed(api, verb="patch", group=group, resource=resource)
    return reconciler_for(api, settings_for(plane, cache))


def application(name: str, *, repo_url: str, path: str, namespace: str, **spec: Any) -> dict[str, Any]:
    """An Application in the install namespace, deploying ``path`` of ``repo_url`` into ``namespace``."""
    body: dict[str, Any] = {
        "apiVersion": contract.API_VERSION,
        "kind": contract.APPLICATION_KIND,
        "metadata": {"name": name, "namespace": AUDITOR_NS},
        "spec": {
            "source": {"repoURL": repo_url, "targetRevision": "main", "path": path},
            "destination": {"namespace": namespace},
            **spec,
        },
    }
    return body


def _apps_path(name: str | None = None) -> str:
    return resource_path(group=contract.GROUP, version=contract.VERSION, plural=contract.APPLICATION_PLURAL,
                         namespace=AUDITOR_NS, name=name)  # fmt: skip


async def create_application(api: client.ApiClient, body: dict[str, Any]) -> dict[str, Any]:
    return await request_json(api, "POST", _apps_path(), body=body)


async def get_application(api: client.ApiClient, name: str) -> dict[str, Any]:
    return await request_json(api, "GET", _apps_path(name))


def parsed_application(name: str) -> Application:
    """The Application model of ``name`` (path and destination namespace ``name``), for pure tests."""
    return parse_application(
        application(name, repo_url="https://git.example.com/infra.git", path=name, namespace=name)
    )


def key(name: str) -> AppKey:
    return AppKey(AUDITOR_NS, name)


@dataclasses.dataclass
class RunningAuditor:
    """The auditor loop with its healer, as its real service account."""

    reconciler: Reconciler
    healer: Healer
    loop: AuditorLoop


@contextlib.asynccontextmanager
async def running_auditor(
    plane: ControlPlane,
    api: client.ApiClient,
    git_cache: Path,
    *,
    poll_interval: float = 600.0,
    tracer: trace.Tracer | None = None,
    instruments: Instruments | None = None,
    notifier: Notifier | None = None,
) -> AsyncIterator[RunningAuditor]:
    """Run ``AuditorLoop`` (with a Healer) over ``api`` until the block ends; the long poll interval means
    what changes in the test was changed by a watch, not by a poll. Every watch ends with the block."""
    await wait_until_allowed(api, verb="watch", group="apps", resource="deployments")
    settings = dataclasses.replace(settings_for(plane, git_cache), poll_interval=poll_interval)
    clients = AuditorClients.build(
        api, settings=settings, tracer=tracer, instruments=instruments, notifier=notifier
    )
    loop = auditor_loop(clients, namespace=AUDITOR_NS)  # as `driftwarden auditor run` builds each term
    healer = loop.healer
    assert healer is not None
    task = asyncio.create_task(loop.run())
    try:
        yield RunningAuditor(loop.reconciler, healer, loop)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert healer._watches == {} and loop.workers == {}


async def synced_and_watched(
    admin: client.ApiClient, name: str, healer: Healer, *kinds: tuple[str, str]
) -> bool:
    """The Application ``name`` is Synced and the healer watches ``kinds`` (``(group, Kind)``)."""
    status = (await get_application(admin, name)).get("status") or {}
    synced = (status.get("sync") or {}).get("status") == "Synced"
    return synced and all(kind in healer._watches for kind in kinds)


async def auditor_api(
    plane: ControlPlane, clients: Clients, *, tracer: trace.Tracer | None = None
) -> client.ApiClient:
    """The auditor's real service account, with the CRD and its RBAC installed (closed by ``clients``).

    With ``tracer``, its API requests are client spans, as in ``driftwarden auditor run``.
    """
    assert plane.admin is not None
    admin = api_client_for(plane.admin)
    await install_crd_and_rbac(admin)
    await admin.close()
    return await clients.service_account(AUDITOR_NS, contract.AUDITOR_SERVICE_ACCOUNT, tracer=tracer)
