"""Ignore rules that hold when applying, against the real API server and a real autoscaler-like writer.

There is no metrics API on the local cluster, so no real HorizontalPodAutoscaler can act; the test plays
the autoscaler itself: its own field manager (``autoscaler``), writing ``spec.replicas`` through the
``scale`` subresource, as the HPA controller does. Meanwhile Git changes other fields of the same
Deployment. With ``spec.replicas`` ignored (by JSON pointer, jq path or field manager), the auditor must
not heal replicas, must not call a fight, must record no drift, and must still sync Git's other changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client

from auditor.heal.healer import DRIFT_FIGHT
from devtools.controlplane import ControlPlane
from driftwarden import contract
from driftwarden.fieldsv1 import parse_fields_v1
from tests.support.auditor import (
    application,
    auditor_api,
    create_application,
    get_application,
    key,
    running_auditor,
    synced_and_watched,
)
from tests.support.clients import Clients
from tests.support.gitrepo import GitRepo
from tests.support.seed import SELF_HEALING, WEB_DEPLOYMENT
from tests.support.waiting import eventually

pytestmark = pytest.mark.cluster

AUTOSCALER = "autoscaler"
RULES: dict[str, dict[str, Any]] = {
    "jsonPointers": {"jsonPointers": ["/spec/replicas"]},
    "jqPathExpressions": {"jqPathExpressions": [".spec.replicas"]},
    "managedFieldsManagers": {"managedFieldsManagers": [AUTOSCALER]},
}


def _owns_replicas(deployment: client.V1Deployment) -> bool:
    for entry in deployment.metadata.managed_fields or []:
        if entry.manager == contract.FIELD_MANAGER and entry.operation == "Apply":
            return ("f:spec", "f:replicas") in parse_fields_v1(entry.fields_v1)
    return False


@pytest.mark.parametrize("rule", sorted(RULES))
async def test_an_autoscaler_keeps_replicas_while_git_changes_the_rest(
    rule: str,
    control_plane: ControlPlane,
    clients: Clients,
    tmp_path: Path,
    git_repo: Callable[..., GitRepo],
) -> None:
    api = await auditor_api(control_plane, clients)
    apps = client.AppsV1Api(clients.admin)
    repo = git_repo({"web/deployment.yaml": WEB_DEPLOYMENT})
    name, ns = f"hpa-{uuid.uuid4().hex[:6]}", f"hpa-{uuid.uuid4().hex[:6]}"
    ignore = [{"group": "apps", "kind": "Deployment", **RULES[rule]}]
    body = application(name, repo_url=repo.url, path="web", namespace=ns, syncPolicy=SELF_HEALING,
                       ignoreDifferences=ignore)  # fmt: skip
    async with running_auditor(control_plane, api, tmp_path / "git") as run:
        await create_application(clients.admin, body)
        await eventually(lambda: synced_and_watched(clients.admin, name, run.healer, ("apps", "Deployment")))
        assert (await apps.read_namespaced_deployment("web", ns)).spec.replicas == 2  # created from Git
        stop, scaled = asyncio.Event(), [2]

        async def autoscaler() -> None:  # the HPA's way: its own manager, through the scale subresource
            while not stop.is_set():
                scaled.append(3 + len(scaled) % 3)
                await apps.patch_namespaced_deployment_scale(
                    "web", ns, {"spec": {"replicas": scaled[-1]}}, field_manager=AUTOSCALER
                )
                await asyncio.sleep(0.2)

        task = asyncio.create_task(autoscaler())
        try:
            await asyncio.sleep(0.5)
            commit = repo.commit({"web/deployment.yaml": WEB_DEPLOYMENT.replace("nginx:1.27", "nginx:1.28")})
            assert run.loop.refresh(key(name))

            async def image_synced() -> bool:
                live = await apps.read_namespaced_deployment("web", ns)
                return bool(live.spec.template.spec.containers[0].image == "nginx:1.28")

            await eventually(image_synced, seconds=30)
            await asyncio.sleep(1.0)  # the autoscaler keeps scaling after the sync
        finally:
            stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await asyncio.sleep(1.0)  # every watch event of the last scale has arrived

        live = await apps.read_namespaced_deployment("web", ns)
        assert live.spec.replicas == scaled[-1]  # the autoscaler's value, not Git's 2
        assert not _owns_replicas(live)  # and Git does not claim it any more (the webhook lets HPA scale)
        assert run.healer.heals == 0  # no heal of replicas
        app = await get_application(clients.admin, name)
        status = app["status"]
        assert status["sync"] == {"status": "Synced", "revision": commit}
        assert not status.get("drift")  # no drift record
        assert DRIFT_FIGHT not in {c["type"] for c in status.get("conditions") or []}  # no fight


async def test_respect_ignore_differences_false_applies_git_whole(
    control_plane: ControlPlane, clients: Clients, tmp_path: Path, git_repo: Callable[..., GitRepo]
) -> None:
    """The opt-out: with RespectIgnoreDifferences=false a sync writes Git's replicas back (the diff still
    ignores them, as before this option existed)."""
    api = await auditor_api(control_plane, clients)
    apps = client.AppsV1Api(clients.admin)
    repo = git_repo({"web/deployment.yaml": WEB_DEPLOYMENT})
    name, ns = f"hpa-{uuid.uuid4().hex[:6]}", f"hpa-{uuid.uuid4().hex[:6]}"
    policy = {**SELF_HEALING, "syncOptions": [*SELF_HEALING["syncOptions"], "RespectIgnoreDifferences=false"]}
    ignore = [{"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]}]
    body = application(name, repo_url=repo.url, path="web", namespace=ns, syncPolicy=policy,
                       ignoreDifferences=ignore)  # fmt: skip
    async with running_auditor(control_plane, api, tmp_path / "git") as run:
        await create_application(clients.admin, body)
        await eventually(lambda: synced_and_watched(clients.admin, name, run.healer, ("apps", "Deployment")))
        await apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": 5}},
                                                     field_manager=AUTOSCALER)  # fmt: skip
        repo.commit({"web/deployment.yaml": WEB_DEPLOYMENT.replace("nginx:1.27", "nginx:1.28")})
        assert run.loop.refresh(key(name))

        async def git_whole() -> bool:
            live = await apps.read_namespaced_deployment("web", ns)
            image = live.spec.template.spec.containers[0].image
            return bool(image == "nginx:1.28" and live.spec.replicas == 2)

        await eventually(git_whole, seconds=30)
