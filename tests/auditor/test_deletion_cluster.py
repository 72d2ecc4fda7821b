"""Deleting an Application on the real API server: its objects go with the finalizer, or are released.

With ``resources-finalizer.driftwarden.io`` (foreground) or ``.../background`` the auditor deletes the
Application's objects and then lets the Application go; an object marked ``Delete=false`` is kept and
released. Without a finalizer the objects stay, released: no label, no tracking, guard or drift
annotation, so no webhook guards them and no heal touches them.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from auditor.finalize import BACKGROUND_FINALIZER, FINALIZER
from devtools.controlplane import ControlPlane
from driftwarden import contract
from driftwarden.kube.rest import request_json, resource_path
from tests.support.auditor import (
    AUDITOR_NS,
    RunningAuditor,
    application,
    auditor_api,
    create_application,
    running_auditor,
    synced_and_watched,
)
from tests.support.clients import Clients
from tests.support.gitrepo import GitRepo
from tests.support.seed import SELF_HEALING, WEB_DEPLOYMENT
from tests.support.waiting import eventually

pytestmark = pytest.mark.cluster

CONFIG = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\ndata: {color: blue}\n"
KEPT = (
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kept\n"
    "  annotations: {argocd.argoproj.io/sync-options: Delete=false}\n"
)


@pytest.fixture
async def auditor(
    control_plane: ControlPlane, clients: Clients, tmp_path: Path
) -> AsyncIterator[RunningAuditor]:
    api = await auditor_api(control_plane, clients)
    async with running_auditor(control_plane, api, tmp_path / "git") as run:
        yield run


async def _deploy(
    clients: Clients, run: RunningAuditor, repo: GitRepo, *, finalizers: list[str]
) -> tuple[str, str]:
    name, ns = f"del-{uuid.uuid4().hex[:6]}", f"del-{uuid.uuid4().hex[:6]}"
    body = application(name, repo_url=repo.url, path="web", namespace=ns, syncPolicy=SELF_HEALING)
    body["metadata"]["finalizers"] = finalizers
    await create_application(clients.admin, body)
    kinds = (("apps", "Deployment"), ("", "ConfigMap"))
    await eventually(lambda: synced_and_watched(clients.admin, name, run.healer, *kinds))
    return name, ns


async def _delete_app(clients: Clients, name: str) -> None:
    path = resource_path(group=contract.GROUP, version=contract.VERSION, plural=contract.APPLICATION_PLURAL,
                         namespace=AUDITOR_NS, name=name)  # fmt: skip
    await request_json(clients.admin, "DELETE", path)

    async def gone() -> bool:
        try:
            await request_json(clients.admin, "GET", path)
        except Exception as exc:
            return "404" in str(exc)
        return False

    await eventually(gone, seconds=60, every=0.2)


async def _get(clients: Clients, kind: str, ns: str, name: str) -> Any:
    try:
        if kind == "Deployment":
            return await client.AppsV1Api(clients.admin).read_namespaced_deployment(name, ns)
        return await client.CoreV1Api(clients.admin).read_namespaced_config_map(name, ns)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def _released(obj: Any) -> bool:
    labels, annotations = obj.metadata.labels or {}, obj.metadata.annotations or {}
    stamps = (contract.ANNOTATION_TRACKING_ID, contract.ANNOTATION_GUARD, contract.ANNOTATION_DRIFT)
    return contract.LABEL_APP not in labels and not any(k in annotations for k in stamps)


@pytest.mark.parametrize("finalizer", [FINALIZER, BACKGROUND_FINALIZER])
async def test_with_the_resources_finalizer_the_objects_are_deleted(
    finalizer: str, auditor: RunningAuditor, clients: Clients, git_repo: Callable[..., GitRepo]
) -> None:
    repo = git_repo({"web/deployment.yaml": WEB_DEPLOYMENT, "web/config.yaml": CONFIG, "web/kept.yaml": KEPT})
    name, ns = await _deploy(clients, auditor, repo, finalizers=[finalizer])
    await _delete_app(clients, name)  # returns once the API server has let the Application go
    assert await _get(clients, "Deployment", ns, "web") is None  # gone before the finalizer was removed
    assert await _get(clients, "ConfigMap", ns, "web") is None
    kept = await _get(clients, "ConfigMap", ns, "kept")  # Delete=false: kept, and released
    assert kept is not None and _released(kept)
    await asyncio.sleep(1.0)
    assert await _get(clients, "Deployment", ns, "web") is None  # and the heal did not bring it back


async def test_without_a_finalizer_the_objects_are_orphaned_and_released(
    auditor: RunningAuditor, clients: Clients, git_repo: Callable[..., GitRepo]
) -> None:
    repo = git_repo({"web/deployment.yaml": WEB_DEPLOYMENT, "web/config.yaml": CONFIG})
    name, ns = await _deploy(clients, auditor, repo, finalizers=[])
    await _delete_app(clients, name)

    async def released() -> bool:
        found = [await _get(clients, k, ns, "web") for k in ("Deployment", "ConfigMap")]
        return all(obj is not None and _released(obj) for obj in found)

    await eventually(released, seconds=20)
    # Nobody guards them now: an edit stays.
    await client.CoreV1Api(clients.admin).patch_namespaced_config_map("web", ns, {"data": {"color": "red"}})
    await asyncio.sleep(1.5)
    assert (await _get(clients, "ConfigMap", ns, "web")).data == {"color": "red"}
    assert auditor.healer.heals == 0
